"""The synthesis benchmark's LN-DDPM: trained in rounds until the realism gate passes, a snapshot per round.

Round 1 ends at `GATE_FIRST_ROUND` iterations, where the earlier benchmark stopped (its condition-fidelity
check passed there); the next rounds every `ddpm_check_every` iterations up to `ddpm_max_iterations`.
Every round keeps its checkpoint as `snapshots/it<N>.pt` and records every gate figure, the condition
fidelity and the time in `fidelity.json`, so the "gate vs 150 iterations" factor samples the round-1
snapshot and the report shows how each figure moved. The first round whose samples pass the gate
(`diffusion/sample/realism_gate.py`) is the model every LN-DDPM strategy uses; when none passes, the
last round's model is used and the record says which figures missed.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from LNSynthLib.atomic import write_text_atomic

GATE_FIRST_ROUND = 150
RECORD = "fidelity.json"


def snapshot_path(run_dir: Path, iterations: int) -> Path:
    return run_dir / "snapshots" / f"it{int(iterations)}.pt"


def rounds(b: dict[str, Any]) -> list[int]:
    step, top = int(b["ddpm_check_every"]), int(b["ddpm_max_iterations"])
    return sorted({min(GATE_FIRST_ROUND, top), *range(step, top + 1, step)})


def _snapshot(layout: Any, settings: Any, target: int) -> tuple[Path, float]:
    """The checkpoint at `target` iterations: the kept snapshot, else trained on from the run's checkpoint."""
    from LNSynthLib.diffusion.train.training import train
    from LNSynthLib.pipeline import ddpm_config

    snap = snapshot_path(layout.ddpm_run, target)
    if snap.exists():
        return snap, 0.0
    t0 = time.monotonic()
    checkpoint = train(ddpm_config(settings), layout.train_cases, layout.ddpm_run, resume=True,
                       device=settings.device, max_steps=target, progress=False)
    snap.parent.mkdir(parents=True, exist_ok=True)
    tmp = snap.with_name(f".{snap.name}.tmp")
    shutil.copy2(checkpoint, tmp)
    tmp.replace(snap)
    return snap, time.monotonic() - t0


def train_to_gate(layout: Any, settings: Any, b: dict[str, Any]) -> dict[str, Any]:
    """Train the shared LN-DDPM round by round until its samples pass the realism gate (resumable)."""
    import torch

    from LNSynthLib.devices import torch_device
    from LNSynthLib.diffusion.sample.fidelity_check import check_fidelity
    from LNSynthLib.diffusion.sample.realism_check import check_realism, gate_windows
    from LNSynthLib.diffusion.sample.sampling import load_model
    from LNSynthLib.pipeline import ddpm_config

    record_path = layout.ddpm_run / RECORD
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.exists() else {"rounds": []}
    if (layout.ddpm_run / "done.json").exists() and "gate" in record:
        return record
    config = ddpm_config(settings)
    windows = gate_windows(layout.train_cases, config)
    record.setdefault("started_at", time.time())
    done = {r["iterations"] for r in record["rounds"]}
    chosen = None
    for target in rounds(b):
        if target in done:
            previous = next(r for r in record["rounds"] if r["iterations"] == target)
            if previous["gate"]["passed"]:
                chosen = previous
                break
            continue
        snap, train_s = _snapshot(layout, settings, target)
        model, _, _ = load_model(snap, torch_device(settings.device))
        sampling = {"sampler": config.sample.sampler, "steps": config.sample.steps, "eta": config.sample.eta}
        with torch.no_grad():
            verdict = check_realism(model, config, windows, loss_csv=layout.ddpm_run / "loss.csv",
                                    upto_step=target, **sampling)
            fidelity = check_fidelity(model, config, windows, **sampling)
        entry = {"iterations": target, "train_s": round(train_s, 1), "checkpoint": str(snap), "gate": verdict,
                 "fidelity": fidelity, "seconds": round(verdict["seconds"] + fidelity["seconds"], 2)}
        record["rounds"].append(entry)
        write_text_atomic(record_path, json.dumps(record, indent=2, default=float), overwrite=True)
        print(f"LN-DDPM {layout.root}: {target} iterations, gate {'passed' if verdict['passed'] else 'failed'} "
              f"({', '.join(verdict['failed']) or 'all figures within tolerance'})", flush=True)
        if verdict["passed"]:
            chosen = entry
            break
    chosen = chosen or record["rounds"][-1]
    first = next((r for r in record["rounds"] if r["iterations"] == min(rounds(b))), None)
    record.update(checkpoint=chosen["checkpoint"], iterations=chosen["iterations"], passed=chosen["gate"]["passed"],
                  gate=chosen["gate"], fidelity=chosen["fidelity"],
                  train_s=round(sum(r["train_s"] for r in record["rounds"]), 1),
                  checkpoint_first_round=None if first is None else first["checkpoint"],
                  sampler=f"{config.sample.sampler}-{config.sample.steps}", prediction=config.diffusion.prediction)
    write_text_atomic(record_path, json.dumps(record, indent=2, default=float), overwrite=True)
    write_text_atomic(layout.ddpm_run / "done.json", json.dumps({"checkpoint": record["checkpoint"]}), overwrite=True)
    return record
