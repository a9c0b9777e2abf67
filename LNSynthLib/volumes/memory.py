"""Memory a volume needs against the memory this process can have: a file too large is refused from its
header, before its voxels are read (reading it would end in a MemoryError traceback or the kernel's OOM kill).

The memory a process can have is the least of: the machine's available memory (`MemAvailable`), what its
container's cgroup limit leaves, and what an address-space limit (`ulimit -v`) leaves.
"""

from __future__ import annotations

import re
from pathlib import Path

from LNSynthLib.errors import InputDataError

GIB = 1024**3


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None   # cgroup v2 writes "max" for no limit


def _meminfo_available() -> int | None:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _cgroup_left() -> int | None:
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < 2**60:   # cgroup v1 writes a huge number for no limit
            return max(0, limit - (usage or 0))
    return None


def _address_space_left() -> int | None:
    try:
        import resource  # Unix only
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return soft
    match = re.search(r"^VmSize:\s+(\d+) kB", status, re.MULTILINE)
    return max(0, soft - (int(match.group(1)) * 1024 if match else 0))


def available_memory() -> int | None:
    """Bytes this process can still allocate (the least of the limits above); None where none is known."""
    known = [v for v in (_meminfo_available(), _cgroup_left(), _address_space_left()) if v is not None]
    return min(known) if known else None


def check_fits_in_memory(size_xyz: tuple[int, ...], bytes_per_voxel: int, path: str | Path) -> None:
    """Refuse a volume of `size_xyz` voxels whose array alone would not fit into the memory available now."""
    voxels = 1
    for n in size_xyz:
        voxels *= int(n)
    needed = voxels * int(bytes_per_voxel)
    free = available_memory()
    if free is None or needed <= free:
        return
    shown = " x ".join(str(int(n)) for n in size_xyz)
    raise InputDataError(
        f"is too large for the memory of this machine: {shown} voxels of {bytes_per_voxel} bytes need "
        f"{needed / GIB:.1f} GiB to read, and {free / GIB:.1f} GiB are available", path=path,
        fix="crop the CT to the abdomen or resample it to a coarser grid (Slicer: Crop Volume), check that the "
            "header's image size is right, or run on a machine with more memory")
