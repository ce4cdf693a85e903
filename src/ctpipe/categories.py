"""How a category value is named, the same way in the drift profile and in validation.

A module of its own so validation can name categories without importing ctpipe.drift (which
loads scipy, over a second, on every CLI command).
"""

from __future__ import annotations

import numpy as np


def category_key(value: object) -> str:
    """A non-missing value as a category name: integer codes and whole floats as integers
    (an integer code column turns float when it has a missing value: 7.0 and 7 are one
    category), booleans as True/False, anything else as its text."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
