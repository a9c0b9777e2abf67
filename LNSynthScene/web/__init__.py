"""`lnsynth serve`: the LNSynth panel's workflow in a web browser (trame-slicer), on the panel's scene logic.

Needs the `web` extra (trame-slicer, slicer-layer-dm); nothing here is imported by the Slicer module.
"""
