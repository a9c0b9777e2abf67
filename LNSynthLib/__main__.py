"""`python -m LNSynthLib ...` is the same as the `lnsynth` command (used by the job runner)."""

from LNSynthLib.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
