"""Errors in the page's own terms: the jobs are `lnsynth` commands, whose fixes name command-line flags.

A person at the page sets a control, not a flag: each flag a job's fix can name is replaced by the
control of the page that sets it (and its section). Flags only an admin sets (`lnsynth serve
--max-upload-mb`) and commands to run on the server are left as they are.
"""

from __future__ import annotations

import re

# (pattern, the page's words); the first that matches a place wins, longer phrases first.
PAGE_TERMS: tuple[tuple[str, str], ...] = (
    (r"(?:export|train|sample|run)\s+(?:again\s+)?with\s+`?--no-qc`?",
     "untick “Quality control” (section 5) and export again"),
    (r"`?--anatomy-source coarse`?", "Method “coarse” (section 2)"),
    (r"`?--anatomy-source totalseg`?", "Method “totalseg” (section 2)"),
    (r"`?--no-qc`?", "“Quality control” unticked (section 5)"),
    (r"`?--qc`?(?![a-z-])", "“Quality control” (section 5)"),
    (r"(?:train\s+)?with\s+fold\s+`all`", "click Train nnU-Net (section 6: with one painted CT it trains on every case)"),
    (r"`?--fold`?(?:\s+`?all`?)?", "one source case (the page trains on every case)"),
    (r"`?--epochs(?:\s+(?P<n>\d+))?`?", "Epochs{n} (section 6)"),
    (r"`?--iterations(?:\s+(?P<n>\d+))?`?", "Iterations{n} (section 6)"),
    (r"`?--device(?:\s+(?:cpu|cuda|auto))?`?", "Device (top bar)"),
    (r"`?--checkpoint`?", "Checkpoint (section 5)"),
    (r"`?--samples-per-case`?", "Samples (section 5)"),
    (r"`?--steps(?:\s+(?P<n>\d+))?`?", "Steps{n} (section 5)"),
    (r"`?--sampler`?", "Sampler (section 5)"),
    (r"`?--config`?", "Config (section 4)"),
    (r"`?--set train\.iterations(?:=\S+)?`?", "Iterations (section 4)"),
    (r"`?--weights-dir`?", "TotalSegmentator weights folder (section 2)"),
    (r"`?--no-transforms`?", "“Transform the nodes” unticked (section 5)"),
    (r"`?--paste`?(?![a-z-])", "“Export the synthetic nodes pasted into their CT” (section 6)"),
)
_COMPILED = tuple((re.compile(pattern), words) for pattern, words in PAGE_TERMS)
_ADMIN = re.compile(r"lnsynth serve[^`\n]*")


def page_terms(text: str) -> str:
    """`text` with each flag of a job's command replaced by the page control that sets it."""
    if not text:
        return text
    kept: list[str] = []

    def keep(match: re.Match) -> str:   # the admin's `lnsynth serve --...` stays as written
        kept.append(match.group(0))
        return f"\0{len(kept) - 1}\0"

    out = _ADMIN.sub(keep, text)
    for pattern, words in _COMPILED:
        out = pattern.sub(lambda m, w=words: w.replace("{n}", f" {m.groupdict().get('n')}"
                                                       if m.groupdict().get("n") else ""), out)
    return re.sub(r"\0(\d+)\0", lambda m: kept[int(m.group(1))], out)
