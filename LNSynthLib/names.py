"""Names are names: a case id or dataset name becomes one folder or file name, never a path.

A name with a separator or `..` (`x/../../../victim`) would put the output elsewhere, and with
`--overwrite` replace someone else's folder; a hidden name (`.x`) is what the project's own
temporary folders look like. One rule for every name a user gives.
"""

from __future__ import annotations

import re

PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # a folder name on every file system
PLAIN_NAME_RULE = "up to 128 letters, digits, '_', '-' or '.', starting with a letter or digit"


def is_plain_name(text: str) -> bool:
    """True for a single folder/file name without separators, `..` or a leading dot."""
    return bool(PLAIN_NAME.match(text)) and ".." not in text
