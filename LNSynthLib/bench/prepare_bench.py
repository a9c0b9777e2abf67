"""`lnsynth bench prepare`: time and peak memory of case preparation on a real CT and a full-size phantom.

Stages follow `prepare_case`: read (CT, labels, LN mask), checks, LN-region crop, anatomy grouping
of the crop (TotalSegmentator labels -> 14 labels), resampling to 1 mm, writing the case.
Each workload runs in its own forked process so its peak resident memory is its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from LNSynthLib.bench.results import markdown_table, write_results

DESCRIPTION = "time + peak memory of preparation (read, checks, grouping, crop, resample, write)"
STAGES = ["read", "checks", "crop", "grouping", "resample", "write"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=3, help="runs of the real-CT workload (median reported)")
    parser.add_argument("--phantom-shape", type=int, nargs=3, default=(300, 512, 512), metavar=("Z", "Y", "X"))
    parser.add_argument("--phantom-spacing", type=float, nargs=3, default=(0.8, 0.8, 1.5), metavar=("X", "Y", "Z"),
                        help="phantom spacing in mm (a typical clinical grid, so resampling to 1 mm does work)")
    parser.add_argument("--phantom-ct-dtype", choices=("int16", "float32"), default="int16",
                        help="how the phantom's input CT file stores HU: int16 as scanners and DICOM converters "
                             "write a CT, or float32 (then reading also checks every value for NaN/inf)")
    parser.add_argument("--phantom-repeats", type=int, default=1, help="runs of the phantom workload (median)")
    parser.add_argument("--skip-phantom", action="store_true", help="only the real example CT")
    parser.add_argument("--real-ct", help="a real CT to time too (e.g. TotalSegmentator's example_ct.nii.gz)")
    parser.add_argument("--real-labels", help="its TotalSegmentator 'total' labels (example_seg_total.nii.gz)")


def reference_op_s(repeats: int = 3) -> float:
    """Seconds (median) of a fixed CPU operation, sorting 10 M float32 values: recorded with every run, so
    a figure taken on a loaded machine shows itself (the reference slows down with it)."""
    import numpy as np

    values = np.random.default_rng(0).standard_normal(10_000_000).astype(np.float32)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.sort(values)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rss_mib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _pipeline_child(paths: tuple[Path, Path, Path], out_root: Path, queue: mp.Queue) -> None:
    """One timed pipeline in a fresh forked process: its VmHWM starts at the RSS it inherits (the
    baseline), so the peak is the pipeline's own and not the input generation's."""
    try:
        baseline = _rss_mib("VmRSS")
        t, info = _pipeline(*paths, out_root)
        queue.put({"t": t, "info": info, "baseline": baseline, "peak": _rss_mib("VmHWM")})
    except Exception as exc:  # noqa: BLE001 - reported in the parent
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def _timed_pipeline(paths: tuple[Path, Path, Path], out_root: Path) -> dict[str, Any]:
    import LNSynthLib.anatomy.build
    import LNSynthLib.cases
    import LNSynthLib.volumes.checks
    import LNSynthLib.volumes.preprocess  # noqa: F401 - imported before the fork: module memory is baseline

    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_pipeline_child, args=(paths, out_root, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def _pipeline(ct_path: Path, labels_path: Path, ln_path: Path, out_root: Path) -> tuple[dict[str, float], dict]:
    from LNSynthLib.anatomy.build import anatomy_from_labels
    from LNSynthLib.cases import PREPARED_CT_DTYPE, Case, save_case
    from LNSynthLib.volumes.checks import check_ct, check_ln_mask, check_same_geometry
    from LNSynthLib.volumes.io import read_volume
    from LNSynthLib.volumes.preprocess import PreprocessSettings, crop, ln_region_box, resample

    settings = PreprocessSettings.train()
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    ct, labels, ln = read_volume(ct_path), read_volume(labels_path), read_volume(ln_path)
    t["read"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    check_ct(ct, ct_path)
    check_same_geometry(ln, ct, ln_path, ct_path)
    t["checks"] = time.perf_counter() - t0
    ct_full = ct
    info = {"input_shape_zyx": list(ct.shape), "input_ct_dtype": str(ct.array.dtype),
            "input_spacing_xyz": list(ct.geometry.spacing), "input_voxels": int(ct.array.size)}
    t0 = time.perf_counter()   # as in prepare_case: the LN box first, grouping and checks on the crop only
    box = ln_region_box(ln, settings.margin_mm)
    ct, ln = crop(ct, box), crop(ln, box)
    t["crop"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    anatomy = anatomy_from_labels(labels, ct_full, "totalseg", path=labels_path, ct_path=ct_path, box=box)
    t["grouping"] = time.perf_counter() - t0
    del labels, ct_full   # as in prepare_case, where the label map lives only inside build_anatomy
    t0 = time.perf_counter()
    check_ln_mask(ln, anatomy, ln_path)
    t["checks"] += time.perf_counter() - t0
    cropped = [ct, anatomy, ln]
    del ct, anatomy, ln
    t0 = time.perf_counter()
    iso = (settings.spacing,) * 3
    ct_p = resample(cropped[0], iso, "linear")
    anatomy_p = resample(cropped[1], iso, "nearest", default_value=0)
    ln_p = resample(cropped[2], iso, "nearest", default_value=0)
    info["crop_shape_zyx"] = list(cropped[0].shape)
    cropped.clear()
    t["resample"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    save_case(Case("bench", ct_p, anatomy_p, ln_p, {"benchmark": True}), out_root, overwrite=True,
              ct_dtype=PREPARED_CT_DTYPE)
    t["write"] = time.perf_counter() - t0
    info["output_shape_zyx"] = list(ct_p.shape)
    return t, info


def _real_inputs(args: argparse.Namespace, folder: Path) -> tuple[Path, Path, Path, dict[str, float]]:
    from LNSynthLib.anatomy.build import anatomy_from_labels
    from LNSynthLib.phantom.painted import paint_nodes_near_vessels
    from LNSynthLib.volumes.io import read_volume, write_volume

    ct = read_volume(args.real_ct)
    anatomy = anatomy_from_labels(read_volume(args.real_labels), ct, "totalseg")
    ct_nodes, ln = paint_nodes_near_vessels(ct, anatomy, n_nodes=3, radius_mm=7.0, seed=0)
    return (write_volume(ct_nodes, folder / "ct.nii.gz"), Path(args.real_labels),
            write_volume(ln, folder / "ln.nii.gz"), {})


def _phantom_inputs(args: argparse.Namespace, folder: Path) -> tuple[Path, Path, Path, dict[str, float]]:
    from LNSynthLib.phantom import generate_phantom
    from LNSynthLib.volumes.io import write_volume

    t0 = time.perf_counter()
    p = generate_phantom(seed=0, shape_zyx=tuple(args.phantom_shape), spacing_xyz=tuple(args.phantom_spacing))
    extra = {"phantom_generation": time.perf_counter() - t0}
    t0 = time.perf_counter()
    from LNSynthLib.cases import ct_for_disk
    from LNSynthLib.volumes.geometry import Volume

    ct = Volume(ct_for_disk(p.ct.array, args.phantom_ct_dtype), p.ct.geometry)
    paths = (write_volume(ct, folder / "ct.nii.gz"), write_volume(p.totalseg, folder / "ts.nii.gz"),
             write_volume(p.ln, folder / "ln.nii.gz"))
    extra["write_inputs"] = time.perf_counter() - t0
    return (*paths, extra)


def _worker(kind: str, args: argparse.Namespace, repeats: int, queue: mp.Queue) -> None:
    try:
        with tempfile.TemporaryDirectory(prefix="lnsynth_bench_") as tmp:
            folder = Path(tmp)
            make = _real_inputs if kind == "real" else _phantom_inputs
            ct_path, labels_path, ln_path, extra = make(args, folder)
            runs = [_timed_pipeline((ct_path, labels_path, ln_path), folder / "out") for _ in range(repeats)]
            info = runs[-1]["info"]
            baseline = max(r["baseline"] or 0.0 for r in runs)
            peak = max(r["peak"] or 0.0 for r in runs)
            runs = [r["t"] for r in runs]
            stages = {s: statistics.median(r[s] for r in runs) for s in STAGES}
            coarse_t0 = time.perf_counter()
            from LNSynthLib.anatomy.fallback import coarse_anatomy
            from LNSynthLib.volumes.io import read_volume

            coarse_anatomy(read_volume(ct_path))
            extra["coarse_fallback_incl_read"] = time.perf_counter() - coarse_t0
            queue.put({"kind": kind, "stages_s": stages, "total_s": sum(stages.values()), "repeats": repeats,
                       "extra_s": extra, "rss_baseline_mib": baseline, "rss_peak_pipeline_mib": peak,
                       "ct_float32_mib": round(info["input_voxels"] * 4 / 2**20, 1), **info})
    except Exception as exc:  # noqa: BLE001 - reported in the parent
        queue.put({"kind": kind, "error": f"{type(exc).__name__}: {exc}"})


def _run_workload(kind: str, args: argparse.Namespace, repeats: int) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(kind, args, repeats, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        raise RuntimeError(f"benchmark workload {kind!r} failed: {result['error']}")
    return result


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    load_before, reference_before = os.getloadavg(), reference_op_s()
    workloads: dict[str, dict[str, Any]] = {}
    if args.real_ct and args.real_labels:
        from LNSynthLib.input_paths import check_input_path

        check_input_path(args.real_ct, folder_ok=False)
        check_input_path(args.real_labels, folder_ok=False)
        workloads["real example CT"] = _run_workload("real", args, args.repeats)
    if not args.skip_phantom:
        workloads["phantom"] = _run_workload("phantom", args, args.phantom_repeats)
    if not workloads:
        from LNSynthLib.errors import InputDataError

        raise InputDataError("no workload to run: no real CT given and --skip-phantom",
                             fix="give --real-ct FILE --real-labels FILE, or drop --skip-phantom")
    load_after, reference_after = os.getloadavg(), reference_op_s()
    names = list(workloads)
    rows = [[stage] + [round(workloads[n]["stages_s"][stage], 3) for n in names] for stage in STAGES]
    rows.append(["**total pipeline**"] + [round(workloads[n]["total_s"], 3) for n in names])
    rows.append(["peak RSS of pipeline (MiB)"] + [workloads[n]["rss_peak_pipeline_mib"] for n in names])
    rows.append(["RSS before pipeline (MiB)"] + [workloads[n]["rss_baseline_mib"] for n in names])
    rows.append(["(peak - before) / CT float32 size"]
                + [round((workloads[n]["rss_peak_pipeline_mib"] - workloads[n]["rss_baseline_mib"])
                         / workloads[n]["ct_float32_mib"], 2) for n in names])
    for key in ("phantom_generation", "write_inputs", "coarse_fallback_incl_read"):
        rows.append([key.replace("_", " ") + " (s)"] + [round(workloads[n]["extra_s"][key], 3)
                                                        if key in workloads[n]["extra_s"] else "-" for n in names])
    shapes = "\n".join(f"- {n}: input {w['input_shape_zyx']} (z,y,x) at {w['input_spacing_xyz']} mm, "
                       f"stored as {w['input_ct_dtype']}, "
                       f"LN crop {w['crop_shape_zyx']}, prepared 1 mm grid {w['output_shape_zyx']}, "
                       f"median of {w['repeats']} run(s)" for n, w in workloads.items())
    body = (f"Times in seconds per stage (read = CT + labels + LN mask; grouping = TotalSegmentator labels to "
            f"the 14-label map of the LN crop incl. body/air thresholding; crop margin 100 mm, taken before grouping; "
            f"write = gzip level 1 NIfTI case, CT as int16 HU).\n\n"
            f"{markdown_table(['stage'] + names, rows)}\n\n{shapes}\n\n"
            f"Load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
            f"(values well above the core count mean the CPU was shared with other jobs).\n"
            f"Reference operation (sort 10 M float32, median of 3) before/after: {reference_before:.3f} / "
            f"{reference_after:.3f} s (compare runs by it: it slows down with the machine).\n")
    results = {"workloads": workloads, "loadavg_before": load_before, "loadavg_after": load_after,
               "reference_op_s_before": reference_before, "reference_op_s_after": reference_after}
    return write_results("prepare", results, body, args.results_dir)
