"""The `lnsynth` command line: one sub-command module per job."""
