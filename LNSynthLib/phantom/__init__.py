"""Seeded procedural abdominal CT phantom with anatomy labels and lymph nodes (demo data and test truth)."""

from LNSynthLib.phantom.cases import write_phantom_cases
from LNSynthLib.phantom.generate import Phantom, generate_phantom

__all__ = ["Phantom", "generate_phantom", "write_phantom_cases"]
