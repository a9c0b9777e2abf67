"""`lnsynth bench diffusion`: what the LN-DDPM denoiser costs on this machine, and what it would on a GPU.

(a) forward and forward+backward time per step of the paper network at each size, its FLOPs
    (torch.utils.flop_counter on a meta-device copy, so counting costs no compute) and the
    achieved GFLOP/s next to a dense fp32 matmul measured in the same run (the practical ceiling);
(b) few-step samplers against DDPM-300: moved to `python -m experiments samplers` (`diffusion_samplers.py`);
(c) peak memory: RSS sampled during the step on CPU, torch.cuda.max_memory_allocated on GPU;
(d) growth from the first to the second size against the voxel ratio, and 128³ figures estimated
    for an H100 from the counted FLOPs at an assumed sustained bf16 throughput.
On a GPU the steps run under bf16 autocast, as training does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from LNSynthLib.bench.results import markdown_table, write_results
from LNSynthLib.devices import autocast_dtype, torch_device
from LNSynthLib.diffusion.config import load_config
from LNSynthLib.diffusion.model.network import build_denoiser, describe_denoiser

DESCRIPTION = "LN-DDPM denoiser: step time, GFLOP/s vs matmul, memory, size growth, H100 estimate"
H100_DENSE_BF16_TFLOPS = 989.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="paper", help="network config to measure (default: paper)")
    parser.add_argument("--variant", default=None, help="override network.variant")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="cubic patch sizes for forward and forward+backward (default 32 64; --quick: 16)")
    parser.add_argument("--forward-only", type=int, nargs="*", default=None,
                        help="sizes measured forward only (default: 128 on a GPU, none on CPU)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement (default 3)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed steps before timing (0 is fine for large sizes with repeats >= 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--estimate-size", type=int, default=128, help="patch size of the GPU estimate")
    parser.add_argument("--gpu-peak-tflops", type=float, default=H100_DENSE_BF16_TFLOPS,
                        help="dense bf16 peak of the GPU in the estimate (H100 SXM: 989)")
    parser.add_argument("--gpu-efficiency", type=float, default=0.4,
                        help="assumed sustained fraction of that peak (default 0.4)")
    parser.add_argument("--note", default="", help="free text stored with the results (e.g. machine load)")
    parser.add_argument("--quick", action="store_true", help="small sizes and one repeat (for tests)")


# -- measurement helpers -----------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakRSS:
    """Highest resident set size of this process while the block runs (sampled every 2 ms)."""

    def __init__(self) -> None:
        self.peak = self.start = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> PeakRSS:
        self.peak = self.start = _rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def measure_matmul(device: torch.device, n: int, dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """Dense n×n matmul GFLOP/s (best of `repeats`): the ceiling the network is compared against."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _inputs(size: int, batch: int, device: torch.device | str) -> tuple[torch.Tensor, ...]:
    shape = (batch, 1, size, size, size)
    if torch.device(device).type == "meta":
        return (torch.empty(shape, device=device), torch.zeros(batch, dtype=torch.long, device=device),
                torch.zeros(shape, dtype=torch.long, device=device), torch.zeros(shape, device=device))
    g = torch.Generator().manual_seed(size)
    x = torch.randn(shape, generator=g)
    anatomy = torch.randint(0, 14, shape, generator=g)
    ln = torch.zeros(shape)
    c = size // 2
    ln[..., c - size // 8:c + size // 8, c - size // 8:c, c:c + size // 8] = 1.0
    return tuple(t.to(device) for t in (x, torch.randint(0, 300, (batch,), generator=g), anatomy, ln))


def count_flops(config: Any, size: int, batch: int) -> dict[str, float]:
    """Forward and forward+backward FLOPs of one step, counted on meta tensors (no compute)."""
    with torch.device("meta"):
        model = build_denoiser(config)
    args = _inputs(size, batch, "meta")
    counter = FlopCounterMode(display=False)
    with counter:
        model(*args)
    forward = counter.get_total_flops()
    with counter:
        model(*args).abs().mean().backward()
    return {"forward": float(forward), "forward_backward": float(counter.get_total_flops())}


def time_step(model: torch.nn.Module, args: tuple[torch.Tensor, ...], device: torch.device, repeats: int,
              backward: bool, amp: torch.dtype | None, warmup: int = 1) -> dict[str, Any]:
    """Median/min seconds of one step and its peak memory."""
    autocast = torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext()

    def step() -> None:
        if backward:
            model.train()
            model.zero_grad(set_to_none=True)
            with autocast:
                out = model(*args)
            out.float().abs().mean().backward()
        else:
            model.eval()
            with torch.no_grad(), autocast:
                model(*args)

    for _ in range(warmup):
        step()
    times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with PeakRSS() as rss:
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            times.append(time.perf_counter() - t0)
    model.zero_grad(set_to_none=True)
    memory = (torch.cuda.max_memory_allocated(device) if device.type == "cuda" else rss.peak)
    return {"median_s": statistics.median(times), "min_s": min(times), "times_s": times,
            "peak_memory_gib": memory / 2**30,
            "peak_memory_kind": "cuda.max_memory_allocated" if device.type == "cuda" else "process RSS"}


# -- the benchmark -----------------------------------------------------------------------------
def run(args: argparse.Namespace) -> tuple[Path, Path]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch_device("auto")
    amp = autocast_dtype("auto", device)   # the bf16-on-GPU rule of train.amp=auto
    sizes = args.sizes or ([16] if args.quick else [32, 64])
    forward_only = args.forward_only if args.forward_only is not None else ([128] if device.type == "cuda" else [])
    repeats = args.repeats or (1 if args.quick else 3)
    overrides = {"network.variant": args.variant} if args.variant else {}
    config = load_config(args.config, overrides)
    load_before = os.getloadavg()

    matmul = {"fp32_gflops": measure_matmul(device, 512 if args.quick else (8192 if device.type == "cuda" else 2048))}
    if device.type == "cuda":
        matmul["bf16_gflops"] = measure_matmul(device, 8192, torch.bfloat16)
    ceiling = matmul.get("bf16_gflops", matmul["fp32_gflops"])

    torch.manual_seed(0)
    model = build_denoiser(config).to(device)
    network = describe_denoiser(model)
    rows: list[dict[str, Any]] = []
    for size, backward in [(s, True) for s in sizes] + [(s, False) for s in forward_only]:
        flops = count_flops(config, size, args.batch)
        row: dict[str, Any] = {"size": size, "batch": args.batch, "flops": flops}
        step_args = _inputs(size, args.batch, device)
        passes = [("forward", False)] + ([("forward_backward", True)] if backward else [])
        for name, with_grad in passes:
            try:
                timing = time_step(model, step_args, device, repeats, with_grad, amp, warmup=args.warmup)
            except torch.OutOfMemoryError as exc:
                row[name] = {"skipped": f"out of memory: {str(exc).splitlines()[0]}"}
                torch.cuda.empty_cache()
                continue
            timing["gflops_per_s"] = flops[name] / timing["min_s"] / 1e9
            timing["fraction_of_matmul"] = timing["gflops_per_s"] / ceiling
            row[name] = timing
        rows.append(row)
        del step_args

    results: dict[str, Any] = {
        "config": args.config, "network": network, "device": str(device),
        "autocast": str(amp) if amp else "off", "repeats": repeats, "warmup": args.warmup, "matmul": matmul,
        "steps": rows, "growth": _growth(rows),
        "gpu_estimate": _gpu_estimate(config, args),
        "load_average_before_after": [load_before, os.getloadavg()], "note": args.note,
    }
    return write_results("diffusion", results, _markdown(results), args.results_dir)


def _growth(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Cost ratio between the first two fully measured sizes against their voxel ratio."""
    full = [r for r in rows if "median_s" in r.get("forward_backward", {})]
    if len(full) < 2:
        return None
    a, b = full[0], full[1]
    return {
        "from": a["size"], "to": b["size"], "voxel_ratio": (b["size"] / a["size"]) ** 3,
        "forward_time_ratio": b["forward"]["min_s"] / a["forward"]["min_s"],
        "forward_backward_time_ratio": b["forward_backward"]["min_s"] / a["forward_backward"]["min_s"],
        "forward_flop_ratio": b["flops"]["forward"] / a["flops"]["forward"],
        "memory_ratio": b["forward_backward"]["peak_memory_gib"] / a["forward_backward"]["peak_memory_gib"],
    }


def _gpu_estimate(config: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Step, training and sampling time at `estimate_size`³ from counted FLOPs and an assumed throughput."""
    size = args.estimate_size
    flops = count_flops(config, size, 1)
    sustained = args.gpu_peak_tflops * args.gpu_efficiency * 1e12
    fwd, fb = flops["forward"] / sustained, flops["forward_backward"] / sustained
    iterations = config.train.iterations
    return {
        "size": size, "flops": flops, "assumed_peak_tflops": args.gpu_peak_tflops,
        "assumed_efficiency": args.gpu_efficiency, "assumed_sustained_tflops": sustained / 1e12,
        "forward_s": fwd, "forward_backward_s": fb,
        "train_hours": iterations * fb / 3600, "train_iterations": iterations,
        "ddpm_sample_s": config.diffusion.timesteps * fwd, "ddim20_sample_s": 20 * fwd,
    }


def _markdown(res: dict[str, Any]) -> str:
    net, mm = res["network"], res["matmul"]
    ceiling = "bf16" if "bf16_gflops" in mm else "fp32"
    lines = [f"Network: `{res['config']}` config, variant `{net['variant']}`, {net['parameters'] / 1e6:.2f} M "
             f"parameters, channels {net['channels']}, attention level {net['attention_level']}; device "
             f"{res['device']}, autocast {res['autocast']}, {res['repeats']} timed repeats (min reported).",
             "", f"Dense matmul in the same run: fp32 {mm['fp32_gflops']:.1f} GFLOP/s"
             + (f", bf16 {mm['bf16_gflops']:.1f} GFLOP/s" if "bf16_gflops" in mm else "")
             + f" (ceiling used: {ceiling}).", ""]
    rows = []
    for r in res["steps"]:
        for name in ("forward", "forward_backward"):
            m = r.get(name)
            if m is None:
                continue
            if "skipped" in m:
                rows.append([f"{r['size']}³", name, "-", "-", r["flops"][name] / 1e9, "-", "-", m["skipped"]])
                continue
            rows.append([f"{r['size']}³", name, m["min_s"], m["median_s"], r["flops"][name] / 1e9,
                         m["gflops_per_s"], m["fraction_of_matmul"], f"{m['peak_memory_gib']:.2f}"])
    lines += ["## (a, c) Step time, throughput and peak memory", "",
              markdown_table(["size", "pass", "min s", "median s", "GFLOP", "GFLOP/s", "of matmul",
                              "peak memory GiB"], rows), ""]
    g = res["growth"]
    if g:
        lines += ["## (d) Growth", "", f"{g['from']}³ → {g['to']}³: voxels ×{g['voxel_ratio']:.0f}, FLOPs "
                  f"×{g['forward_flop_ratio']:.2f}, forward time ×{g['forward_time_ratio']:.2f}, "
                  f"forward+backward time ×{g['forward_backward_time_ratio']:.2f}, peak memory "
                  f"×{g['memory_ratio']:.2f}.", ""]
    e = res["gpu_estimate"]
    lines += ["## (d) Estimate for an H100", "",
              f"At {e['size']}³ one step is {e['flops']['forward'] / 1e12:.2f} TFLOP forward and "
              f"{e['flops']['forward_backward'] / 1e12:.2f} TFLOP forward+backward (counted). Assuming "
              f"{e['assumed_efficiency']:.0%} of {e['assumed_peak_tflops']:.0f} dense bf16 TFLOP/s = "
              f"{e['assumed_sustained_tflops']:.0f} TFLOP/s sustained: forward {e['forward_s'] * 1e3:.0f} ms, "
              f"forward+backward {e['forward_backward_s'] * 1e3:.0f} ms, {e['train_iterations']} training "
              f"iterations ≈ {e['train_hours']:.1f} h, one DDPM-{int(e['ddpm_sample_s'] / e['forward_s'])} "
              f"sample ≈ {e['ddpm_sample_s']:.1f} s, DDIM-20 ≈ {e['ddim20_sample_s']:.2f} s. This is an "
              "estimate from FLOPs, not a measurement.", ""]
    lines += ["## (b) Samplers", "", "Measured by `python -m experiments samplers` (samplers.md)."]
    load = res["load_average_before_after"]
    lines += ["", f"Load average before/after: {load[0][0]:.1f} / {load[1][0]:.1f}."
              + (f" {res['note']}" if res["note"] else "")]
    return "\n".join(lines)
