"""Same-run, interleaved comparison of `prepare_case` between two source trees (before vs after a change).

    python -m experiments.prepare_before_after --before /tmp/base --inputs DIR [--repeats 3]

`DIR` holds ct.nii.gz, ts.nii.gz (TotalSegmentator labels) and ln.nii.gz (e.g. the phantom inputs that
`lnsynth bench prepare` writes). Each run is a fresh `python` whose PYTHONPATH is one tree, running the whole
`prepare_case` (read -> checks -> grouping -> crop -> resample -> write); runs alternate before/after so both
see the same machine load, which is recorded with the reference operation of `prepare_bench`.
Writes `prepare_before_after.{json,md}` in the results folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from experiments import RESULTS_DIR
from LNSynthLib.bench.prepare_bench import reference_op_s
from LNSynthLib.bench.results import markdown_table, write_results

_CHILD = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from LNSynthLib.prepare import prepare_case
d, out = Path(sys.argv[1]), sys.argv[2]
rss = [l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmRSS')][0]
t1 = time.perf_counter()
prepare_case(d / 'ct.nii.gz', d / 'ln.nii.gz', out, 'case', anatomy_path=d / 'ts.nii.gz', labels_kind='totalseg')
t2 = time.perf_counter()
hwm = [l for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')][0]
import LNSynthLib
print(json.dumps({'tree': str(Path(LNSynthLib.__file__).parents[1]), 'prepare_s': t2 - t1, 'rss_before_mib': int(rss.split()[1]) / 1024,
                  'peak_mib': int(hwm.split()[1]) / 1024}))
"""


def _run(tree: Path, inputs: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lnsynth_ab_") as out:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        # cwd: `python -c` puts the working folder first on sys.path, before PYTHONPATH
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(inputs), out], env=env, capture_output=True,
                              text=True, check=False, cwd=out)
    if proc.returncode != 0:
        raise RuntimeError(f"prepare_case in {tree} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if Path(result.pop("tree")).resolve() != tree.resolve():
        raise RuntimeError(f"the run meant for {tree} imported LNSynthLib from elsewhere")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree of the baseline")
    parser.add_argument("--before-name", help="what the baseline is (e.g. its commit), for the result text")
    parser.add_argument("--after", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results-dir", default=RESULTS_DIR)
    args = parser.parse_args(argv)
    load_before, ref_before = os.getloadavg()[0], reference_op_s()
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for name, tree in (("before", args.before), ("after", args.after)):
            runs[name].append(_run(tree, args.inputs))
    load_after, ref_after = os.getloadavg()[0], reference_op_s()
    ct_mib = _ct_float32_mib(args.inputs / "ct.nii.gz")
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in runs.items()}
    rows = [["prepare_case (s), median", round(med["before"]["prepare_s"], 2), round(med["after"]["prepare_s"], 2),
             round(med["after"]["prepare_s"] / med["before"]["prepare_s"], 2)],
            ["all runs (s)", ", ".join(f"{r['prepare_s']:.2f}" for r in runs["before"]),
             ", ".join(f"{r['prepare_s']:.2f}" for r in runs["after"]), ""]]
    growth = {n: (med[n]["peak_mib"] - med[n]["rss_before_mib"]) / ct_mib for n in med}
    rows.append(["(peak - before) / CT float32 size", round(growth["before"], 2), round(growth["after"], 2), ""])
    body = (f"`prepare_case` on `{args.inputs}` (CT float32 size {ct_mib:.0f} MiB), runs interleaved "
            f"before/after, {args.repeats} each; before = {args.before_name or args.before}, after = this tree.\n\n"
            f"{markdown_table(['', 'before', 'after', 'after / before'], rows)}\n\n"
            f"Load average before/after: {load_before:.2f} / {load_after:.2f}; reference operation (sort 10 M "
            f"float32) before/after: {ref_before:.3f} / {ref_after:.3f} s.\n")
    results = {"runs": runs, "median": med, "ct_float32_mib": ct_mib, "loadavg": [load_before, load_after],
               "reference_op_s": [ref_before, ref_after], "before_tree": str(args.before),
               "before_name": args.before_name}
    for path in write_results("prepare_before_after", results, body, args.results_dir):
        print(path)


def _ct_float32_mib(path: Path) -> float:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size = reader.GetSize()
    return size[0] * size[1] * size[2] * 4 / 2**20


if __name__ == "__main__":
    main()
