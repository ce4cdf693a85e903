"""Wording that messages share: a long list named in part, the rest counted; a choice; a count."""

from __future__ import annotations

from collections.abc import Sequence


def first_few(names: Sequence[str], shown: int) -> str:
    """``names`` joined by commas: the first ``shown`` named, the rest counted."""
    text = ", ".join(names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def either_of(names: Sequence[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def count_of(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless one: '1 retrain', '3 batches'."""
    return f"{n} {noun}{'' if n == 1 else ('es' if noun.endswith('h') else 's')}"
