"""`lnsynth bench gpu`: what the `paper` LN-DDPM costs on one CUDA GPU at 128³, measured, not estimated.

Training steps (forward + L1 loss + backward + Adam step, the code path of `lnsynth train`) for
fp32, bf16, bf16 + gradient checkpointing, bf16 + channels_last and bf16 + torch.compile: median
time per step and peak memory (`torch.cuda.max_memory_allocated`), and whether it fits the 24 GB of
the paper's GPU. Then sampling time of one 128³ patch with DDPM-300, DDIM-20, DPM++-10 and the
4-step options (DPM++-4, rflow-4) in bf16. Every variant is built from config switches (train.amp,
network.gradient_checkpointing, network.channels_last, train.compile); each item is measured in
its own try/except, so a failure (out of memory, a compile error) is recorded, not fatal, and
items past the time budget are recorded as skipped. Written to gpu.{json,md} with the device name.

Without CUDA it refuses (exit 2); `--cpu-smoke` runs every item on the CPU with the `tiny` config
at 8³ and T = 10 in seconds (results in gpu_cpu_smoke.{json,md}, never in gpu.*): a check that the
script works before GPU time is spent on it.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from LNSynthLib.bench.results import markdown_table, write_results
from LNSynthLib.devices import DeviceError, autocast_dtype, torch_device

DESCRIPTION = "CUDA GPU: paper config at 128³ - step time and memory for fp32/bf16/checkpointing/compile/" \
              "channels_last, sampling time"
PAPER_GPU_BYTES = 24e9    # the paper's 24 GB GPU
# (label, config overrides) of the training-step items; bf16 = train.amp=bf16.
TRAIN_ITEMS: list[tuple[str, dict[str, Any]]] = [
    ("fp32", {"train.amp": "off"}),
    ("bf16", {"train.amp": "bf16"}),
    ("bf16 + gradient checkpointing", {"train.amp": "bf16", "network.gradient_checkpointing": True}),
    ("bf16 + channels_last", {"train.amp": "bf16", "network.channels_last": True}),
    ("bf16 + torch.compile", {"train.amp": "bf16", "train.compile": True}),
]
COMPILE_RESERVE_S = 240.0   # torch.compile of the paper network takes minutes: start it only with this much left
SAMPLE_ITEMS: list[tuple[str, int]] = [("ddpm", 300), ("ddim", 20), ("dpmpp", 10), ("dpmpp", 4), ("rflow", 4)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="paper", help="config to measure (default: paper)")
    parser.add_argument("--size", type=int, default=None, help="cubic patch size (default 128; --cpu-smoke: 8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed training steps per item (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (default 1)")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="items starting after this many seconds are skipped (default 450: ≤ 8 min in all)")
    parser.add_argument("--device", default="cuda", help="cuda or cuda:N (default cuda)")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="no GPU needed: every item on the CPU with the tiny config at 8³, T = 10 (seconds)")
    parser.add_argument("--note", default="", help="free text stored with the results")


def _device(args: argparse.Namespace) -> torch.device:
    if args.cpu_smoke:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError("`lnsynth bench gpu` measures a CUDA GPU, and PyTorch finds none on this machine",
                          fix="run it on a machine with a CUDA GPU, or add --cpu-smoke to check every code "
                              "path on the CPU (tiny config, seconds)")
    device = torch_device(args.device)
    if device.type != "cuda":
        raise DeviceError(f"--device {args.device} is not a CUDA GPU", fix="use --device cuda or cuda:N")
    return device


def _config(args: argparse.Namespace, overrides: dict[str, Any]):  # noqa: ANN202 - LNDDPMConfig
    from LNSynthLib.diffusion.config import load_config

    size = args.size or (8 if args.cpu_smoke else 128)
    smoke = {"diffusion.timesteps": 10} if args.cpu_smoke else {}
    return load_config("tiny" if args.cpu_smoke else args.config,
                       {"train.patch_size": [size] * 3, **smoke, **overrides})


def _compile_backend(args: argparse.Namespace) -> str:
    """inductor (torch.compile's default, what train.compile uses); the smoke traces with `eager` (no C++ build)."""
    return "eager" if args.cpu_smoke else "inductor"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_start(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_bytes(device: torch.device, rss: Any) -> int:  # noqa: ANN401 - PeakRSS
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else rss.peak


def _batch(config: Any, device: torch.device) -> tuple[torch.Tensor, ...]:  # noqa: ANN401 - LNDDPMConfig
    from LNSynthLib.bench.diffusion_bench import _inputs

    x0, _t, anatomy, ln = _inputs(config.train.patch_size[0], 1, device)
    return x0.clamp(-1, 1), anatomy.clamp(max=config.network.anatomy_labels - 1), ln


def train_item(args: argparse.Namespace, overrides: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Median time and peak memory of full training steps (loss, backward, Adam) for one set of switches."""
    from LNSynthLib.bench.diffusion_bench import PeakRSS
    from LNSynthLib.diffusion.model.network import build_denoiser
    from LNSynthLib.diffusion.process.processes import process_from_config
    from LNSynthLib.diffusion.process.vlb import training_loss

    config = _config(args, overrides)
    torch.manual_seed(0)
    _peak_start(device)
    model = build_denoiser(config).to(device).train()
    net = torch.compile(model, backend=_compile_backend(args)) if config.train.compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    process = process_from_config(config)
    amp = autocast_dtype(config.train.amp, device)
    x0, anatomy, ln = _batch(config, device)
    g = torch.Generator().manual_seed(0)

    def step() -> None:
        t = process.sample_timesteps(1, g).to(device)
        noise = torch.randn(x0.shape, generator=g).to(device)
        x_t = process.q_sample(x0, t, noise)
        with torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext():
            output = net(x_t, t, anatomy, ln)
        loss = training_loss(config, process, output, process.training_target(x0, noise, t), x0, x_t, t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t0 = time.perf_counter()
    for _ in range(max(1, args.warmup)):
        step()
    _sync(device)
    first_s = time.perf_counter() - t0
    times = []
    with PeakRSS() as rss:
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - t0)
    peak = _peak_bytes(device, rss)
    return {"median_s": statistics.median(times), "times_s": times, "warmup_s": first_s,
            "peak_memory_gib": peak / 2**30, "fits_24gb": peak < PAPER_GPU_BYTES,
            "parameters": sum(p.numel() for p in model.parameters())}


def sample_items(args: argparse.Namespace, device: torch.device, deadline: float) -> list[dict[str, Any]]:
    """Seconds to sample one patch with each sampler (bf16 on the GPU; the weights' values do not matter)."""
    from LNSynthLib.diffusion.model.network import build_denoiser
    from LNSynthLib.diffusion.process.processes import process_from_config
    from LNSynthLib.diffusion.process.rflow import RectifiedFlow
    from LNSynthLib.diffusion.sample.sampling import sample_patch

    config = _config(args, {"train.amp": "bf16" if device.type == "cuda" else "off"})
    torch.manual_seed(0)
    model = build_denoiser(config).to(device).eval()
    _, anatomy, ln = _batch(config, device)
    amp = autocast_dtype(config.train.amp, device)
    rows = []
    for sampler, steps in SAMPLE_ITEMS:
        row: dict[str, Any] = {"sampler": sampler, "steps": min(steps, config.diffusion.timesteps)}
        if time.perf_counter() > deadline:
            rows.append({**row, "skipped": "time budget (--budget-s) used up"})
            continue
        process = RectifiedFlow(config.diffusion.timesteps) if sampler == "rflow" else process_from_config(config)
        try:
            _sync(device)
            t0 = time.perf_counter()
            sample_patch(model, process, anatomy, ln, sampler, steps, 0.0, torch.Generator().manual_seed(0),
                         amp_dtype=amp)
            _sync(device)
            row["seconds"] = time.perf_counter() - t0
            row["s_per_evaluation"] = row["seconds"] / row["steps"]
        except Exception as exc:  # noqa: BLE001 - one failed item is recorded, the others still run
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        rows.append(row)
    return rows


def _train_row(args: argparse.Namespace, item: tuple[str, dict[str, Any]], device: torch.device,
               deadline: float) -> dict[str, Any]:
    """One training item, or its error (out of memory, compile failure), or `skipped` past the budget."""
    label, overrides = item
    row: dict[str, Any] = {"item": label, "overrides": overrides}
    if time.perf_counter() > deadline:
        return {**row, "skipped": "time budget (--budget-s) used up"}
    if overrides.get("train.compile") and not args.cpu_smoke and deadline - time.perf_counter() < COMPILE_RESERVE_S:
        return {**row, "skipped": f"time budget: less than {COMPILE_RESERVE_S:.0f} s left to compile"}
    try:
        row.update(train_item(args, overrides, device))
    except Exception as exc:  # noqa: BLE001 - one failed item is recorded, the others still run
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return row


def run(args: argparse.Namespace) -> tuple[Path, Path]:
    device = _device(args)
    if args.cpu_smoke:
        torch.set_num_threads(1)   # tiny convolutions: one thread is fastest, and never fights a busy machine
    start = time.perf_counter()
    deadline = start + args.budget_s
    load_before = os.getloadavg()
    # torch.compile last: its first step compiles for minutes, and must not push sampling past the budget.
    late = [item for item in TRAIN_ITEMS if item[1].get("train.compile")]
    training = [_train_row(args, item, device, deadline) for item in TRAIN_ITEMS if item not in late]
    sampling = sample_items(args, device, deadline)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    training += [_train_row(args, item, device, deadline) for item in late]
    config = _config(args, {})
    results = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
               else "CPU (--cpu-smoke)", "cpu_smoke": bool(args.cpu_smoke), "config": config.name,
               "patch_size": list(config.train.patch_size), "timesteps": config.diffusion.timesteps,
               "repeats": args.repeats, "warmup": args.warmup, "compile_backend": _compile_backend(args),
               "training": training, "sampling": sampling,
               "total_s": time.perf_counter() - start, "budget_s": args.budget_s,
               "load_average_before_after": [load_before, os.getloadavg()], "note": args.note}
    return write_results("gpu_cpu_smoke" if args.cpu_smoke else "gpu", results, _markdown(results),
                         args.results_dir)


def _cell(row: dict[str, Any], key: str) -> Any:  # noqa: ANN401 - a table cell
    return row.get(key, row.get("error", row.get("skipped", "-")))


def _markdown(res: dict[str, Any]) -> str:
    size = res["patch_size"][0]
    train_rows = [[r["item"], _cell(r, "median_s"), _cell(r, "warmup_s"),
                   f"{r['peak_memory_gib']:.2f}" if "peak_memory_gib" in r else _cell(r, "peak_memory_gib"),
                   ("yes" if r["fits_24gb"] else "no") if "fits_24gb" in r else "-"] for r in res["training"]]
    sample_rows = [[f"{r['sampler']}-{r['steps']}", r["steps"], _cell(r, "seconds"), _cell(r, "s_per_evaluation")]
                   for r in res["sampling"]]
    memory = "torch.cuda.max_memory_allocated" if res["device"].startswith("cuda") else "process RSS"
    lines = [f"Device: {res['device_name']} ({res['device']}); config `{res['config']}` at {size}³, batch 1, "
             f"T = {res['timesteps']}; {res['repeats']} timed steps after {res['warmup']} warm-up (median); "
             f"torch.compile backend {res['compile_backend']}.", "",
             "## Training step (forward + L1 loss + backward + Adam)", "",
             markdown_table(["variant", "s / step", "first step(s) s", f"peak memory GiB ({memory})",
                             "fits 24 GB"], train_rows), "",
             f"## Sampling one {size}³ patch (bf16 on a GPU)", "",
             markdown_table(["sampler", "network evaluations", "seconds", "s / evaluation"], sample_rows), "",
             f"Total {res['total_s']:.0f} s (budget {res['budget_s']:.0f} s). Load average before/after: "
             f"{res['load_average_before_after'][0][0]:.1f} / {res['load_average_before_after'][1][0]:.1f}."
             + (f" {res['note']}" if res["note"] else "")]
    return "\n".join(lines)
