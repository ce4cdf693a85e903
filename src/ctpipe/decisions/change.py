"""After drift: when a challenger can learn the new regime, which change it learns, and the
follow-up retrains that keep learning it. Pure rules over dates and counts.

The champion's lineage says which change it learned (``change_onset``); the cycle's records
say how many of that change's batches the newest attempt trained on. From these, a follow-up
is due each time a challenger would see ``growth`` times as many, until one has seen the whole
training part; between follow-ups only performance drift retrains, and a retrain learns the
champion's change while its follow-ups are open.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from ctpipe.lineage import Lineage


def awaiting_new_data(*, onset: dt.date, train_batches: Sequence[dt.date] | None,
                      needed: int) -> str | None:
    """Why drift should not retrain yet: a challenger trained now would hold
    fewer than ``needed`` labelled batches from the drift's ``onset`` on in its training part
    (``train_batches``; None: the window is too short, which training itself reports)."""
    if needed <= 0 or train_batches is None:
        return None
    seen = sum(d >= onset for d in train_batches)
    if seen >= needed:
        return None
    return (f"waiting for the new data: a challenger trained now would see {seen} labelled "
            f"batch{'es' if seen != 1 else ''} since the drift's onset ({onset}), and "
            f"training.min_batches_after_drift asks for {needed}")


FOLLOW_UP = "follow-up after drift:"  # how a follow-up's retrain reason starts


def learned_change(champion: Lineage) -> str | None:
    """The onset (ISO date) of the change a version learned after drift, None if none."""
    return champion.change_onset or champion.emphasis_from  # the latter: older versions


def _next_follow_up(*, seen: int, until: int, growth: float) -> int | None:
    """How many of the change's batches the next follow-up trains on: ``growth`` times what
    the newest attempt saw, at most ``until``; None once an attempt has seen ``until`` (or
    none learned the change, or follow-ups are off)."""
    if until <= 0 or seen <= 0 or seen >= until:
        return None
    return min(math.ceil(growth * seen), until)


def follow_up(*, onset: dt.date | None, seen: int, available: int,
              until: int, growth: float = 3.0) -> str | None:
    """Why to retrain a champion promoted after drift again (None: no follow-up due).

    The champion weighs up the change since ``onset``; the newest retrain attempt (promoted
    or rejected) trained on ``seen`` labelled batches from it, a challenger trained now would
    see ``available``. Due each time that grows ``growth`` times (capped at ``until``) until
    an attempt has seen ``until``: at most ceil(log_growth(until)) follow-ups per change,
    whatever the gate decides.
    """
    due = _next_follow_up(seen=seen, until=until, growth=growth)
    if onset is None or due is None or available < due:
        return None
    return (f"{FOLLOW_UP} the newest challenger learned the change since {onset} "
            f"from {seen} labelled batch{'es' if seen != 1 else ''}; one trained now sees "
            f"{available} (follow-ups until {until})")


def learns_the_same_change(champion: Lineage | None, onset: dt.date | None) -> str | None:
    """The onset (ISO date) when a challenger learning the change since ``onset`` refreshes a
    ``champion`` still learning that same change (a follow-up after drift), else None."""
    if champion is None or onset is None:
        return None
    learned = learned_change(champion)
    return learned if learned == onset.isoformat() else None


def still_learning(*, onset: dt.date | None, seen: int, until: int,
                   growth: float) -> str | None:
    """Why drift waits for the champion's next follow-up (None: its follow-ups are done).

    Between follow-ups, data, label and prediction drift compare with the champion's training
    data, which still holds the old regime: they show the change it is learning, not a new
    one. They would retrain every few batches until the follow-ups end; the follow-ups'
    schedule already retrains as the new data grows. Performance drift, judged against the
    champion's own holdout level, still retrains.
    """
    due = _next_follow_up(seen=seen, until=until, growth=growth)
    if onset is None or due is None:
        return None
    return (f"the champion is still learning the change since {onset} (the newest attempt "
            f"saw {seen} of its batches): the next follow-up retrains when a challenger sees "
            f"{due}")


def change_to_learn(*, drift_onset: dt.date | None, awaiting: str | None,
                    learned: dt.date | None, seen: int, until: int,
                    retrains: bool) -> dt.date | None:
    """The onset of the change a retrain (``retrains``) learns and weighs up.

    While the champion is still learning a change (``learned``; the newest attempt saw fewer
    than ``until`` batches from it), that change: a drift seen meanwhile is mostly the same
    change showing against a reference that still holds the old regime, and a new one begins
    after it anyway, so the earlier onset covers both. Otherwise the drift's, once the window
    holds batches from it (``awaiting`` None); else none.
    """
    if not retrains:
        return None
    if learned is not None and seen < until:
        return learned
    if drift_onset is not None and awaiting is None:
        return drift_onset
    return None
