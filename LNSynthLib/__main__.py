"""`python -m LNSynthLib ...` is the same as the `lnsynth` command (used by the job runner)."""

from LNSynthLib.cli.main import main
from LNSynthLib.jobs.parent_watch import stop_with_parent

if __name__ == "__main__":
    stop_with_parent()   # started by a front end: stop if it dies without stopping this job
    raise SystemExit(main())
