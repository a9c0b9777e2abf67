"""The scene logic shared by both front ends, the Slicer panel and the web page (`lnsynth serve`).

Imports only what Slicer bundles (MRML via slicer-core outside Slicer) and the torch-free parts of
LNSynthLib, so it runs inside Slicer's process; the heavy work runs in `lnsynth` job processes.
"""
