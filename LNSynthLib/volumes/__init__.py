"""CT volumes: geometry, reading/writing, checks and the paper's preprocessing."""

from LNSynthLib.volumes.geometry import Geometry, Volume

__all__ = ["Geometry", "Volume"]
