"""A job process that stays: it imports the sampling stack once and runs one job request after another.

An interactive synthesis (paint, click, look, repaint, click again) spends most of a fresh process's time
importing torch and MONAI and loading the checkpoint, not in the few network evaluations that do the work.
The panel and the web page therefore keep one of these per session (`jobs/warm_client.WarmWorker`); long
jobs (training, nnU-Net) stay one process each.

Protocol, one JSON object per line:
- the worker prints `{"stage": "warm_ready", "pid": ...}` once its imports are done;
- a request on stdin is `{"id": n, "module": "LNSynthLib", "argv": [...], "env": {...}, "cwd": "..."}`: the worker
  runs `python -m <module> <argv>` in-process (its output is the job's output, progress lines included) and
  ends it with `{"stage": "warm_done", "id": n, "returncode": rc}`;
- SIGTERM during a request cancels that request only (exit status 130, the worker stays); SIGTERM while idle,
  or the end of stdin, stops the worker.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import signal
import sys
import traceback
from typing import Any

from LNSynthLib.errors import JobCancelled

READY, DONE = "warm_ready", "warm_done"
WARM_ENV = "LNSYNTH_WARM_WORKER"   # set in the worker: `sampling.load_model` keeps loaded models
EXIT_CANCELLED = 130
# What an interactive synthesis runs: imported once, before the first request.
PRELOAD = ("LNSynthLib.cli.main", "LNSynthLib.cli.sample_command", "LNSynthLib.prepare",
           "LNSynthLib.diffusion.sample.sampling", "LNSynthLib.diffusion.sample.inct_cases")


def _cancel(signum: int, frame: object) -> None:
    raise JobCancelled(f"stopped by signal {signum}")


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def run_request(request: dict[str, Any]) -> int:
    """Run one `python -m module argv` in this process; its exit status, never an exception."""
    module, argv = str(request.get("module") or "LNSynthLib"), [str(a) for a in request.get("argv", [])]
    saved_argv, saved_cwd, saved_env = sys.argv, os.getcwd(), dict(os.environ)
    env = {str(k): str(v) for k, v in (request.get("env") or {}).items()}
    for entry in reversed(env.pop("PYTHONPATH", "").split(os.pathsep)):
        if entry and entry not in sys.path:   # a PYTHONPATH of the step: what `-m module` must find
            sys.path.insert(0, entry)
    os.environ.update(env)
    signal.signal(signal.SIGTERM, _cancel)
    try:
        if request.get("cwd"):
            os.chdir(request["cwd"])
        sys.argv = [module, *argv]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except (JobCancelled, KeyboardInterrupt) as exc:
        print(f"{module}: cancelled ({exc})", file=sys.stderr)
        return EXIT_CANCELLED
    except BaseException:  # noqa: BLE001 - one failed request must not take the worker down
        traceback.print_exc()
        return 1
    finally:
        signal.signal(signal.SIGTERM, _stop)
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.stdout.flush()
        sys.stderr.flush()


def serve(stdin: Any = None, preload: tuple[str, ...] = PRELOAD) -> int:
    """Read requests until stdin ends; answer each with its output and a `warm_done` line."""
    stdin = stdin or sys.stdin
    os.environ[WARM_ENV] = "1"
    signal.signal(signal.SIGTERM, _stop)
    from LNSynthLib.devices import apply_job_threads

    apply_job_threads()   # before torch loads OpenMP: its waiting policy is read once (each request sets the count)
    for name in preload:
        importlib.import_module(name)
    print(json.dumps({"stage": READY, "pid": os.getpid()}), flush=True)
    for line in stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        code = run_request(request)
        print(json.dumps({"stage": DONE, "id": request.get("id"), "returncode": code}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(serve())
    except KeyboardInterrupt:
        sys.exit(0)
