"""Where each prepared case's anatomy came from, said in every report and checked before a paper run.

`prepare` records `anatomy_source` in case.json (`totalseg`, `anatomy14`, `coarse`, or the phantom's
`phantom-totalseg`), with the label filter and TotalSegmentator model. The weights-free `coarse`
map fills 4 of the 14 labels; a paper-config run must not train on it without the user saying so.
"""

from __future__ import annotations

from pathlib import Path

from LNSynthLib.cases import list_cases, read_meta
from LNSynthLib.errors import InputDataError

COARSE = "coarse"
UNKNOWN = "not recorded"
ALLOW_COARSE_FLAG = "--allow-coarse-anatomy"


def anatomy_sources(root: str | Path) -> dict[str, dict[str, str]]:
    """case id -> {source, label_filter, totalseg_model} of the prepared cases under `root`."""
    sources = {}
    for folder in list_cases(root):
        meta = read_meta(folder)
        sources[folder.name] = {"source": str(meta.get("anatomy_source") or UNKNOWN),
                                "label_filter": str(meta.get("anatomy_label_filter") or "-"),
                                "totalseg_model": str(meta.get("totalseg_model") or "-")}
    return sources


def refuse_coarse_anatomy(root: str | Path, config_name: str) -> None:
    """Stop a `config_name` run whose training cases hold coarse anatomy (the user may opt in)."""
    coarse = [case for case, info in anatomy_sources(root).items() if info["source"] == COARSE]
    if coarse:
        shown = ", ".join(coarse[:8]) + (f" and {len(coarse) - 8} more" if len(coarse) > 8 else "")
        raise InputDataError(
            f"{len(coarse)} training case(s) have the weights-free coarse anatomy (4 of 14 labels), not "
            f"TotalSegmentator's: {shown}; a --config {config_name} run does not train on it silently",
            path=root, fix=f"prepare them with TotalSegmentator weights (--weights-dir) or a label file, or pass "
                           f"{ALLOW_COARSE_FLAG} to train on the coarse anatomy knowingly")


def anatomy_section(roots: dict[str, Path | None]) -> list[str]:
    """Markdown lines of a report: every case's anatomy source, per case set (`{"Training": root}`)."""
    lines = ["## Anatomy of the cases", "",
             "Where each case's 14-label anatomy map came from (case.json): totalseg = TotalSegmentator, "
             "anatomy14 = a given 14-label map, coarse = the weights-free threshold map (4 of 14 labels), "
             "phantom-totalseg = the procedural phantom's own labels.", ""]
    for name, root in roots.items():
        if root is None or not Path(root).is_dir():
            continue
        sources = anatomy_sources(root)
        coarse = sum(info["source"] == COARSE for info in sources.values())
        lines += [f"{name} cases: {len(sources)}, coarse anatomy: {coarse}.", "",
                  "| case | anatomy source | label filter | TotalSegmentator model |", "|---|---|---|---|"]
        lines += [f"| {case} | {info['source']} | {info['label_filter']} | {info['totalseg_model']} |"
                  for case, info in sources.items()]
        lines.append("")
    return lines
