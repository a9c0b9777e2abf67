"""Write benchmark results as JSON + Markdown, always with the machine they were measured on."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from LNSynthLib.atomic import write_text_atomic


def describe_machine() -> dict[str, Any]:
    """CPU, cores, memory, GPU and library versions: absolute times mean nothing without these."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def write_results(name: str, results: dict[str, Any], markdown_body: str,
                  out_dir: str | Path) -> tuple[Path, Path]:
    """Write `<name>.json` and `<name>.md` (replacing the previous run of the same benchmark)."""
    out_dir = Path(out_dir)
    machine = describe_machine()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    payload = {"benchmark": name, "measured_at": stamp, "machine": machine, "results": results}
    json_path = write_text_atomic(out_dir / f"{name}.json", json.dumps(payload, indent=2, default=str),
                                  overwrite=True)
    machine_lines = "\n".join(f"- {k}: {v}" for k, v in machine.items())
    md = f"# Benchmark: {name}\n\nMeasured {stamp} on:\n\n{machine_lines}\n\n{markdown_body.strip()}\n"
    md_path = write_text_atomic(out_dir / f"{name}.md", md, overwrite=True)
    return json_path, md_path


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
