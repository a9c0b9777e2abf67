"""`python -m experiments samplers`: few-step samplers against DDPM-300 on the same conditions, one table.

Two `tiny` checkpoints trained with the same iterations on the same phantom cases (or given with
`--ddpm-checkpoint` / `--rflow-checkpoint`): the DDPM process (the config's v-prediction) sampled
with DDPM-300, DDIM-20, DPM-Solver++ at 10/6/5/4 steps, and rectified flow (`diffusion.process:
rflow`) sampled with 4, 8 and 50 Euler steps (50 is near the flow's own limit: a gap to DDPM-300
that remains there comes from training, not from the step count). Each sampler generates one
patch per condition (anatomy + LN of a prepared case, the window sampling uses) from the same
seed; quality is the condition fidelity of `diffusion.sample.condition_fidelity` against the real
CT of that window. A row passes when its Pearson r is within 0.01 and its LN−fat contrast within
10 HU of DDPM-300 on the DDPM checkpoint (issue 12's rule). Times are ratios to DDPM-300 in the
same run; the load average and a reference matmul before and after show how busy the machine was.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from LNSynthLib.bench.results import markdown_table, write_results
from LNSynthLib.cases import is_synthetic, list_cases
from LNSynthLib.devices import autocast_dtype, torch_device
from LNSynthLib.diffusion.process.processes import process_from_config
from LNSynthLib.diffusion.process.samplers import eta_used, steps_used
from LNSynthLib.diffusion.sample.condition_fidelity import condition_fidelity
from LNSynthLib.diffusion.sample.sampling import load_model, sample_patch
from LNSynthLib.diffusion.sample.windows import patch_window
from LNSynthLib.diffusion.train.data import case_arrays, crop_case
from LNSynthLib.errors import InputDataError
from LNSynthLib.volumes.preprocess import unit_to_hu

DESCRIPTION = "few-step samplers (DDIM, DPM-Solver++, rectified flow) vs DDPM-300: evaluations, time, fidelity"
Run = tuple[str, int | None, float]        # (sampler, steps, eta); DDPM always runs all T steps
DDPM_RUNS: list[Run] = [("ddpm", None, 1.0), ("ddim", 20, 1.0), ("dpmpp", 10, 0.0), ("dpmpp", 6, 0.0),
                        ("dpmpp", 5, 0.0), ("dpmpp", 4, 0.0)]
RFLOW_RUNS: list[Run] = [("rflow", 4, 0.0), ("rflow", 8, 0.0), ("rflow", 50, 0.0)]   # 50: the model's own limit
QUICK_DDPM_RUNS: list[Run] = [("ddpm", None, 1.0), ("dpmpp", 4, 0.0)]
QUICK_RFLOW_RUNS: list[Run] = [("rflow", 4, 0.0)]
RFLOW_OVERRIDES = {"diffusion.process": "rflow", "sample.sampler": "rflow", "sample.steps": 4}
MAX_R_DIFFERENCE = 0.01       # issue 12: "r within 0.01 ..."
PHANTOM_SHAPE = (64, 80, 80)   # every phantom seed 0..7 holds lymph nodes at this size (48×64×64: not seed 3)
MAX_CONTRAST_DIFFERENCE_HU = 10.0   # "... and LN−fat contrast within 10 HU of DDPM-300"


def compare_samplers(checkpoint: str | Path, cases_root: str | Path, n_cases: int = 4, seed: int = 0,
                     samplers: list[Run] | None = None) -> dict[str, Any]:
    """One row per (sampler, steps, eta): wall time for all conditions at once and condition fidelity."""
    device = torch_device("auto")
    model, config, info = load_model(checkpoint, device)
    process = process_from_config(config)
    amp = autocast_dtype(config.train.amp, device)
    patch = tuple(int(s) for s in config.train.patch_size)
    folders = [f for f in list_cases(cases_root) if not is_synthetic(f)][:n_cases]
    if not folders:
        raise InputDataError("no prepared cases found", path=cases_root, fix="run `lnsynth phantom` or `lnsynth prepare`")
    targets = []
    for folder in folders:
        case = case_arrays(folder, config.network.anatomy_labels)
        ct, anatomy, ln = crop_case(case, patch_window(case, patch), patch)
        targets.append((np.asarray(unit_to_hu(ct), dtype=np.float32), anatomy, ln))
    anatomy = torch.as_tensor(np.stack([t[1] for t in targets])[:, None].astype(np.int64))
    ln = torch.as_tensor(np.stack([t[2] for t in targets])[:, None].astype(np.float32))
    default_runs = RFLOW_RUNS if config.diffusion.process == "rflow" else DDPM_RUNS
    rows = []
    for sampler, steps, eta in samplers or default_runs:
        generator = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        unit = sample_patch(model, process, anatomy, ln, sampler, steps or process.timesteps, eta, generator,
                            amp_dtype=amp)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - t0
        generated = [np.asarray(unit_to_hu(u[0].float().cpu().numpy()), dtype=np.float32) for u in unit]
        rows.append({"process": config.diffusion.process, "sampler": sampler,
                     "steps": steps_used(sampler, steps or process.timesteps, process.timesteps),
                     "eta": eta_used(sampler, eta), "wall_s": wall, "s_per_sample": wall / len(targets),
                     **condition_fidelity(targets, generated)})
    return {"status": "run", "checkpoint": str(checkpoint), "checkpoint_step": info["checkpoint_step"],
            "config": config.name, "process": config.diffusion.process, "prediction": process.prediction,
            "patch_size": list(patch), "device": str(device), "n_samples": len(targets), "samplers": rows}


def judge(rows: list[dict[str, Any]], reference: dict[str, Any]) -> None:
    """Add the time ratio to `reference` (DDPM-300) and the issue's pass/fail to every row."""
    for row in rows:
        row["time_ratio"] = row["wall_s"] / reference["wall_s"]
        row["nfe_reduction"] = reference["steps"] / row["steps"]
        dr = abs(row["pearson_r"] - reference["pearson_r"])
        dc = (abs(row["ln_fat_contrast_hu"] - reference["ln_fat_contrast_hu"])
              if row["ln_fat_contrast_hu"] is not None and reference["ln_fat_contrast_hu"] is not None else None)
        row["r_difference"], row["contrast_difference_hu"] = dr, dc
        row["passes"] = dr <= MAX_R_DIFFERENCE and dc is not None and dc <= MAX_CONTRAST_DIFFERENCE_HU


# -- the benchmark -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ddpm-checkpoint", default=None, help="trained DDPM-process checkpoint (default: train one)")
    parser.add_argument("--rflow-checkpoint", default=None, help="trained rflow checkpoint (default: train one)")
    parser.add_argument("--cases", default=None,
                        help="prepared cases: training data and conditions (default: phantom cases written here)")
    parser.add_argument("--sample-cases", type=int, default=4, help="conditions per sampler (default 4)")
    parser.add_argument("--iterations", type=int, default=300, help="training steps of each tiny checkpoint")
    parser.add_argument("--patch", type=int, default=32, help="cubic patch size of the trained checkpoints")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--note", default="", help="free text stored with the results (e.g. machine load)")
    parser.add_argument("--quick", action="store_true",
                        help="16³, 20 iterations, T = 50, one condition, fewer samplers (for tests)")


def _train_checkpoints(args: argparse.Namespace, cases_root: Path, work: Path) -> dict[str, Any]:
    """The DDPM and rflow tiny checkpoints not given on the command line, same iterations and data."""
    from LNSynthLib.diffusion.config import load_config
    from LNSynthLib.diffusion.train.training import train

    patch = 16 if args.quick else args.patch
    base = {"train.iterations": 20 if args.quick else args.iterations, "train.patch_size": [patch] * 3,
            "train.checkpoint_every": 10**6, **({"diffusion.timesteps": 50} if args.quick else {})}
    trained: dict[str, Any] = {}
    for process, given, extra in (("ddpm", args.ddpm_checkpoint, {}), ("rflow", args.rflow_checkpoint, RFLOW_OVERRIDES)):
        if given:
            trained[process] = {"checkpoint": given, "trained_here": False}
            continue
        config = load_config("tiny", {**base, **extra})
        t0 = time.perf_counter()
        checkpoint = train(config, cases_root, work / f"run_{process}", device="auto", progress=False)
        trained[process] = {"checkpoint": str(checkpoint), "trained_here": True, "config": "tiny",
                            "overrides": {**base, **extra}, "train_s": time.perf_counter() - t0}
    return trained


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    from LNSynthLib.bench.diffusion_bench import measure_matmul
    from LNSynthLib.phantom import write_phantom_cases

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device("auto")
    load_before, matmul_before = os.getloadavg(), measure_matmul(device, 1024)
    n_cases = 1 if args.quick else args.sample_cases
    with tempfile.TemporaryDirectory(prefix="lnsynth_bench_samplers_") as tmp:
        cases_root = Path(args.cases) if args.cases else \
            write_phantom_cases(Path(tmp) / "cases", max(3, n_cases), seed=0, shape_zyx=PHANTOM_SHAPE)[0].parent
        checkpoints = _train_checkpoints(args, cases_root, Path(tmp))
        ddpm = compare_samplers(checkpoints["ddpm"]["checkpoint"], cases_root, n_cases,
                                samplers=QUICK_DDPM_RUNS if args.quick else DDPM_RUNS)
        rflow = compare_samplers(checkpoints["rflow"]["checkpoint"], cases_root, n_cases,
                                 samplers=QUICK_RFLOW_RUNS if args.quick else RFLOW_RUNS)
    rows = ddpm["samplers"] + rflow["samplers"]
    judge(rows, ddpm["samplers"][0])
    results = {"rule": {"reference": "ddpm-300 on the DDPM checkpoint", "max_r_difference": MAX_R_DIFFERENCE,
                        "max_contrast_difference_hu": MAX_CONTRAST_DIFFERENCE_HU},
               "checkpoints": checkpoints, "ddpm": {k: v for k, v in ddpm.items() if k != "samplers"},
               "rflow": {k: v for k, v in rflow.items() if k != "samplers"}, "samplers": rows,
               "device": str(device), "conditions": n_cases,
               "load_average_before_after": [load_before, os.getloadavg()],
               "reference_matmul_gflops_before_after": [matmul_before, measure_matmul(device, 1024)],
               "note": args.note}
    return write_results("samplers", results, _markdown(results), args.results_dir)


def _markdown(res: dict[str, Any]) -> str:
    rows = [[f"{r['process']}: {r['sampler']}-{r['steps']}", r["steps"], f"{r['nfe_reduction']:.0f}×",
             r["wall_s"], r["time_ratio"], r["pearson_r"], r["ln_fat_contrast_hu"], r["texture_std_ratio"],
             "pass" if r["passes"] else "fail"] for r in res["samplers"]]
    lines = ["Same conditions, same seed; reference = DDPM-300 on the DDPM checkpoint. Pass = Pearson r within "
             f"{res['rule']['max_r_difference']} and LN−fat contrast within {res['rule']['max_contrast_difference_hu']:g}"
             " HU of the reference (issue 12). Texture = generated / real within-region HU std (median; not part "
             "of the rule).", "",
             markdown_table(["process: sampler", "network evaluations", "fewer than reference", "wall s",
                             "time / reference", "pearson r", "LN−fat HU", "texture", "fidelity rule"], rows), ""]
    target = res["samplers"][0]["target_ln_fat_contrast_hu"]
    lines.append(f"Real LN−fat contrast of these windows: {target:.1f} HU; {res['conditions']} conditions per "
                 f"sampler on {res['device']}.")
    for process, ck in res["checkpoints"].items():
        made = (f"trained in this run: `tiny` with {ck['overrides']}, {ck['train_s']:.0f} s" if ck["trained_here"]
                else "given on the command line")
        info = res[process]
        lines.append(f"- {process} checkpoint ({info['prediction']} prediction, step {info['checkpoint_step']}, "
                     f"{info['patch_size'][0]}³): {made}.")
    load, mm = res["load_average_before_after"], res["reference_matmul_gflops_before_after"]
    lines += ["", f"Load average before/after: {load[0][0]:.1f} / {load[1][0]:.1f}; reference fp32 matmul "
              f"before/after: {mm[0]:.1f} / {mm[1]:.1f} GFLOP/s." + (f" {res['note']}" if res["note"] else "")]
    return "\n".join(lines)
