"""Click → synthetic volume in the scene: the panel's Synthesize through the scene logic on a slicer-core scene.

Each click is the whole chain the button starts (prepare the painted case, sample, place the nodes into the CT
or paste the patch) and ends when the result is loaded into the scene. Measured side by side in one run:
one process per step (every click imports torch and MONAI and loads the checkpoint) against the session's warm
worker (first click: the worker starts and imports; later clicks: only the work). A tiny checkpoint is trained
here on the given CT unless `--checkpoint` names one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from LNSynthLib.bench.results import markdown_table, write_results

DESCRIPTION = "click → synthetic volume in the scene: one process per step vs the session's warm worker"
MODULE_DIR = Path(__file__).resolve().parents[1] / "LNSynth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ct", required=True, help="a real CT (e.g. TotalSegmentator's example_ct.nii.gz)")
    parser.add_argument("--totalseg", required=True, help="its TotalSegmentator 'total' labels")
    parser.add_argument("--checkpoint", help="LN-DDPM checkpoint (default: a tiny one trained here, 2 iterations)")
    parser.add_argument("--clicks", type=int, default=3, help="clicks per way (default 3)")
    parser.add_argument("--mode", choices=("in-ct", "patch"), default="in-ct")
    parser.add_argument("--steps", type=int, default=4, help="DPM-Solver++ steps (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the jobs (OMP_NUM_THREADS)")
    parser.add_argument("--note", default="", help="a line about the machine's load, shown with the result")


def _module_path() -> None:
    """`LNSynthModuleLib` imports as in Slicer: its folder on sys.path."""
    if str(MODULE_DIR) not in sys.path:
        sys.path.insert(0, str(MODULE_DIR))


def _scene(ct: str, totalseg: str, work: Path):  # noqa: ANN202 - slicer-core objects
    _module_path()
    from LNSynthModuleLib.selftest import fat_center

    from LNSynthLib.anatomy.groups import LABEL_NAMES
    from LNSynthScene import mrml_bridge as mb
    from LNSynthScene.logic import SceneLogic

    core = mb.create_core_scene()
    logic = SceneLogic(core.scene, work)
    ct_node = mb.load_volume_file(core.scene, ct, "CT")
    anatomy_node = logic.anatomy_from_totalseg_file(ct_node, totalseg)
    volume = mb.node_to_volume(ct_node)
    anatomy = mb.segmentation_to_labels(anatomy_node, dict(enumerate(LABEL_NAMES)), volume).array
    center = fat_center(anatomy, volume.array)
    ln_node, _ = logic.lymph_node_segmentation(ct_node)
    logic.add_sphere(ln_node, ct_node, tuple(volume.geometry.index_to_physical(center[::-1].astype(float))), 6.0)
    return core, logic, ct_node, anatomy_node, ln_node


def _tiny_checkpoint(ct: str, totalseg: str, root: Path) -> Path:
    """2 training iterations on the CT with one node: the cost of the model, not its quality, is measured."""
    import numpy as np
    from scipy import ndimage

    from LNSynthLib.anatomy.groups import totalseg_to_anatomy
    from LNSynthLib.volumes.geometry import Volume
    from LNSynthLib.volumes.io import read_volume, write_volume

    volume = read_volume(ct)
    anatomy = totalseg_to_anatomy(read_volume(totalseg).array.astype(np.int32), volume.array)
    depth = ndimage.distance_transform_edt(anatomy == 1)
    center = np.argwhere((depth >= 4) & (volume.array > -150) & (volume.array < -50))[0]
    zz, yy, xx = np.indices(volume.shape)
    ln = ((zz - center[0]) ** 2 + (yy - center[1]) ** 2 + (xx - center[2]) ** 2 <= 4).astype(np.uint8)
    write_volume(Volume(anatomy, volume.geometry), root / "anatomy.nii.gz")
    write_volume(Volume(ln, volume.geometry), root / "ln.nii.gz")
    env = {**os.environ, "LNSYNTH_PROGRESS": "quiet"}
    for args in (["prepare", "--ct", ct, "--ln", root / "ln.nii.gz", "--anatomy", root / "anatomy.nii.gz",
                  "--anatomy-source", "anatomy14", "--out", root / "cases", "--case-id", "train0", "--margin-mm", 50],
                 ["train", "--config", "tiny", "--cases", root / "cases", "--run-dir", root / "run", "--set",
                  "train.iterations=2", "--set", "train.batch_size=1", "--device", "cpu"]):
        subprocess.run([sys.executable, "-m", "LNSynthLib", *map(str, args)], check=True, env=env,
                       capture_output=True, timeout=1200)
    return root / "run" / "checkpoint.pt"


def _click(logic: Any, nodes: tuple, settings: Any, warm: bool) -> dict[str, Any]:
    """Seconds from the click to the result in the scene, and per step; the nodes it added are removed after."""
    from LNSynthScene import mrml_bridge as mb

    logic.use_warm_worker = warm   # off: one process per step, as long jobs run
    with mb.temporary_nodes(logic.scene):
        started = time.perf_counter()
        chain = logic.start_synthesis(*nodes, settings)
        state = chain.wait(timeout_s=1800, interval_s=0.02)
        seconds = time.perf_counter() - started
    if not state.succeeded:
        raise RuntimeError(f"synthesis failed: {state.error}")
    steps = {label: round(s, 2) for label, s in chain.step_seconds}
    return {"total_s": seconds, "steps_s": steps, "load_results_s": round(seconds - sum(steps.values()), 2)}


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    _module_path()
    from LNSynthScene.logic import SynthesisSettings

    with tempfile.TemporaryDirectory(prefix="lnsynth_interactive_") as tmp:
        root = Path(tmp)
        checkpoint = Path(args.checkpoint) if args.checkpoint else _tiny_checkpoint(args.ct, args.totalseg, root)
        core, logic, *nodes = _scene(args.ct, args.totalseg, root / "work")
        settings = SynthesisSettings(checkpoint, n_samples=1, steps=args.steps, sampler="dpmpp", device="cpu",
                                     mode=args.mode, transforms=False)
        load_before = os.getloadavg()[0]
        cold_clicks = [_click(logic, tuple(nodes), settings, warm=False) for _ in range(args.clicks)]
        warm_clicks = [_click(logic, tuple(nodes), settings, warm=True) for _ in range(args.clicks)]
        logic.stop_warm_worker()
        load_after = os.getloadavg()[0]
    cold, warm = [c["total_s"] for c in cold_clicks], [c["total_s"] for c in warm_clicks]
    second = statistics.median(warm[1:]) if len(warm) > 1 else float("nan")
    results = {"cold_clicks": cold_clicks, "warm_clicks": warm_clicks, "mode": args.mode, "steps": args.steps, "threads": args.threads, "cold_s": cold, "warm_s": warm,
               "warm_first_s": warm[0], "warm_later_median_s": second, "cold_median_s": statistics.median(cold),
               "load_before": load_before, "load_after": load_after, "note": args.note}
    rows = [["one process per step (every click)", f"{statistics.median(cold):.2f}", ", ".join(f"{t:.2f}" for t in cold)],
            ["warm worker, first click (starts it)", f"{warm[0]:.2f}", f"{warm[0]:.2f}"],
            ["warm worker, later clicks", f"{second:.2f}", ", ".join(f"{t:.2f}" for t in warm[1:])]]
    body = (f"{DESCRIPTION}. Mode {args.mode}, 1 sample, DPM-Solver++ {args.steps} steps, {args.threads} torch "
            f"thread(s), CPU; click → result loaded into a slicer-core scene (the panel's `start_synthesis`).\n\n"
            + markdown_table(["way", "median (s)", "each click (s)"], rows)
            + "\n\nWhere a click's time goes (seconds; the last of each way):\n\n"
            + markdown_table(["way", *cold_clicks[-1]["steps_s"], "loading into the scene"],
                             [[name, *click["steps_s"].values(), click["load_results_s"]]
                              for name, click in (("one process per step", cold_clicks[-1]),
                                                  ("warm worker", warm_clicks[-1]))])
            + f"\n\nLater clicks: {statistics.median(cold) / second:.1f}× faster than one process per step. "
              f"Load average {load_before:.1f} before, {load_after:.1f} after. {args.note}\n")
    return write_results("interactive", results, body, args.results_dir)
