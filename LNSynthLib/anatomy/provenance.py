"""Where each prepared case's anatomy came from, said in every report and checked before a paper run.

`prepare` records `anatomy_source` in case.json (`totalseg`, `anatomy14`, `coarse`, or the phantom's
`phantom-totalseg`), with the label filter and TotalSegmentator model. The weights-free `coarse`
map fills 4 of the 14 labels; a paper-config run must not train on it without the user saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from LNSynthLib.cases import list_cases, read_meta
from LNSynthLib.errors import InputDataError

COARSE = "coarse"
UNKNOWN = "not recorded"
ALLOW_COARSE_FLAG = "--allow-coarse-anatomy"
ALLOW_OTHER_FLAG = "--allow-other-anatomy"
FULL_RESOLUTION_MODEL = "full resolution 1.5 mm"   # case.json `totalseg_model` of `prepare --full-resolution`


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


def case_label_filter(meta: dict, real_root: str | Path | None = None) -> str:
    """The label filter that grouped a case's anatomy map (`none` where no filter applied or none is known).

    A synthetic case keeps its source's condition, so its filter is the one in its source case's
    case.json under `real_root`.
    """
    if meta.get("anatomy_label_filter"):
        return str(meta["anatomy_label_filter"])
    source = meta.get("source_case")
    if real_root is not None and source and (Path(real_root) / str(source) / "case.json").is_file():
        return case_label_filter(read_meta(Path(real_root) / str(source)))
    return "none"


def anatomy_mismatches(root: str | Path, label_filter: str, full_resolution: bool) -> dict[str, str]:
    """case id -> why its anatomy is not the one a run with these TotalSegmentator settings makes.

    Checked from case.json: an unrecorded source; TotalSegmentator anatomy grouped with another label
    filter; TotalSegmentator run here with the fast model where `full_resolution` is asked. Given
    14-label maps and the phantom's labels are the user's own grouping and pass; coarse maps are
    `refuse_coarse_anatomy`'s.
    """
    problems = {}
    for case, info in anatomy_sources(root).items():
        if info["source"] == UNKNOWN:
            problems[case] = "anatomy source not recorded"
        elif info["source"] == "totalseg" and info["label_filter"] != label_filter:
            problems[case] = f"label filter {info['label_filter']}, not {label_filter}"
        elif (info["source"] == "totalseg" and full_resolution and info["totalseg_model"] not in ("-", FULL_RESOLUTION_MODEL)):
            problems[case] = f"TotalSegmentator {info['totalseg_model']}, not {FULL_RESOLUTION_MODEL}"
    return problems


def check_training_anatomy(root: str | Path, settings: Any) -> None:
    """The anatomy guard of a paper run, the same in `lnsynth run`, `train` and `bench ablation`.

    `settings` is a `PipelineSettings` (read: `ddpm_config`, `allow_coarse_anatomy`,
    `allow_other_anatomy`, `label_filter`, `totalseg_full_resolution`). Training cases must hold
    TotalSegmentator anatomy made as the run itself would make it from raw cases (paper 000: the
    abdominal filter; the full-resolution model), unless the user opts out with a flag.
    """
    if not settings.allow_coarse_anatomy:
        refuse_coarse_anatomy(root, settings.ddpm_config)
    if settings.allow_other_anatomy:
        return
    problems = anatomy_mismatches(root, settings.label_filter, settings.totalseg_full_resolution)
    if problems:
        shown = "; ".join(f"{case}: {why}" for case, why in list(problems.items())[:8])
        more = f" and {len(problems) - 8} more" if len(problems) > 8 else ""
        model = " --full-resolution" if settings.totalseg_full_resolution else ""
        raise InputDataError(
            f"{len(problems)} training case(s) hold anatomy a --config {settings.ddpm_config} run does not make "
            f"({shown}{more})", path=root,
            fix=f"prepare them again with `lnsynth prepare --label-filter {settings.label_filter}{model}` (or give "
                f"--raw-cases to `lnsynth run`), or pass {ALLOW_OTHER_FLAG} to train on them knowingly")


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
