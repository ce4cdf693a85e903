"""Seeded synthetic generators for the two reference use cases, with scripted scenarios.

``generate_day`` builds one day's labelled batch. Every day draws from its own generator,
``numpy.random.default_rng([seed, day_index, <use-case constant>])``, so any day can be produced
on its own and a replay is reproducible. ``shift_day=None`` gives the no-shift control stream
(except for "seasonal", which has no change point); otherwise the scenario starts at
``day_index == shift_day``. Days before it are identical in every stream, so a control run and
a scenario run share their history. Scenarios (``SCENARIO_USE_CASES`` says which use case has
which; every one but bad-promotion is simulated for both):

- ``none``: the control stream, whatever ``shift_day``; a policy must not retrain on it after
  the cold start.
- ``shift`` (the default): a lasting, abrupt change from ``shift_day`` on, below.
- ``gradual``: the same change phased in linearly over ``ramp_days`` batches (default 10):
  batch ``shift_day + k`` carries ``(k + 1) / ramp_days`` of it, all of it from
  ``shift_day + ramp_days - 1`` on (bookings and tonnes factors phase in geometrically).
- ``seasonal``: a weekly cycle of period ``SEASONAL_PERIOD`` = 7 batches in inputs and target,
  from batch 0 (``shift_day`` is ignored), so every training window holds whole cycles. The
  day's mix weights are raised to cos(2 pi day_index / 7); the input -> target relation never
  changes. Set ``drift.seasonal_period: 7`` to compare a batch with the same phase a cycle
  earlier.
- ``covariate``: from ``shift_day`` on, the input mix moves inside what the model learned, with
  the same input -> target relation: each day keeps, out of a pool 3x its size drawn like the
  control day, the rows chosen by weights on inputs only (demand: lane x commodity of the
  shipper accounts; fraud: channel and jurisdiction). Drift is flagged; a retrained model is no
  better than the champion.
- ``concept``: from ``shift_day`` on, the input -> target relation changes and the inputs do
  not (every feature value is the control day's, bit for bit): only performance or label drift
  can see it.
- ``bad-promotion`` (fraud only): a short-lived fraud campaign, ``campaign_days`` batches from
  ``shift_day`` on; every other day is the control stream's.

Demand (Hong Kong <-> Greater Bay Area trucking, ctpipe.simulate_demand): one row per lane x
commodity x shipper account and day. Advance bookings drive the volume; weekdays, holidays,
typhoon signals, border waits and rain modulate it. Shift: a cross-border policy change (a
medical-supplies green channel plus tighter inspections) moves 70 % of the consumer-goods
shipper accounts to medical supplies, triples medical bookings and multiplies medical tonnes per
booking by 2.5, cuts consumer-goods bookings to 0.6x and their tonnes per booking to 0.4x, and
adds 20 minutes of inspection to every crossing: the bookings -> volume relationship changes,
not only the marginals. Covariate: trade moves to the western lanes (HK-ZH, HK-DG) and to
electronics and machinery shippers. Seasonal: consumer goods, apparel and food accounts and
bookings (x1.25 at the peak) rise and fall against electronics and machinery. Concept: a new
booking system changes tonnes per booking (electronics 1.8x, machinery 1.6x, apparel 0.55x,
food 0.5x) for the same bookings.

Fraud (retail card transactions, ctpipe.simulate_fraud): legitimate traffic plus three
established fraud patterns (card-not-present, card testing, skimmed cards used abroad). Shift: a
Singapore wallet partnership brings a new wallet segment, and fraudsters provision stolen cards
into wallets for small, slow gaming / online-services payments that look nothing like the old
patterns. Covariate: customers move online (wallet 2x, e-commerce 1.5x, card-present 0.5x,
Singapore cardholders 2x). Seasonal: online evening shopping peaks, card-present daytime
payments trough. Concept: a chargeback-rule change; card testing is no longer labelled fraud,
and 70 % of genuine big e-commerce purchases (electronics, travel, jewelry; 1.5x the usual
ticket) on cards younger than a year now are ("friendly fraud").

Fraud, ``bad-promotion``: for ``campaign_days`` batches a card-testing ring runs stolen cards
through small evening wallet payments at online-services merchants, a segment that is otherwise
almost all legitimate (~1.8 % of traffic). A campaign day is the control day with 15 % of its
legitimate rows replaced by ring payments drawn like the segment's ordinary evening traffic
(same amounts, cards, velocities): only the segment and the hour give them away. Channel,
merchant category and hour move enough for the drift check to ask for a retrain. Once the ring
stops, the segment is as busy and as legitimate as before, so a recency-weighted retrain that
learned "evening wallet online services are fraud" spends the alert budget on honest customers.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd

from ctpipe.simulate_common import CONTROL, ID_STRIDE, DayPlan
from ctpipe.simulate_demand import COMMODITIES, LANES, demand_day, holiday_for
from ctpipe.simulate_fraud import CATEGORIES, CHANNELS, JURISDICTIONS, fraud_day

__all__ = ["CATEGORIES", "CHANGELESS_SCENARIOS", "CHANNELS", "COMMODITIES", "DEFAULT_CAMPAIGN_DAYS",
           "DEFAULT_RAMP_DAYS", "DEFAULT_ROWS", "JURISDICTIONS", "LANES", "SCENARIOS",
           "SCENARIO_USE_CASES", "SEASONAL_PERIOD", "USE_CASES", "check_scenario",
           "generate_day", "holiday_for", "shift_intensity"]

USE_CASES = ("demand", "fraud")
SCENARIOS = ("shift", "none", "gradual", "seasonal", "covariate", "concept", "bad-promotion")
SCENARIO_USE_CASES = {name: USE_CASES for name in SCENARIOS} | {"bad-promotion": ("fraud",)}
# Scenarios without a change date: a replay reports no change event for them.
CHANGELESS_SCENARIOS = ("none", "seasonal")
DEFAULT_CAMPAIGN_DAYS = 6  # length of the bad-promotion campaign, in daily batches
DEFAULT_RAMP_DAYS = 10  # batches over which "gradual" phases the shift in
SEASONAL_PERIOD = 7  # batches per cycle of "seasonal" (drift.seasonal_period to match)
DEFAULT_ROWS = {"demand": 240, "fraud": 20_000}
# Third element of the seed sequence, so the two use cases never share a random stream.
_STREAM = {"demand": 101, "fraud": 202}
_CAMPAIGN = 0xCA3B  # marks the campaign's own per-day stream (the day's stream stays untouched)
_CONCEPT = 0xC0C3  # marks the concept's own per-day stream (fraud relabelling)


def scenarios_for(use_case: str) -> list[str]:
    """The scenarios simulated for ``use_case``, in ``SCENARIOS`` order."""
    return [name for name in SCENARIOS if use_case in SCENARIO_USE_CASES[name]]


def check_scenario(use_case: str, scenario: str) -> None:
    """Refuse, in one line naming the valid ones, a scenario ``use_case`` has no simulation for."""
    valid = ", ".join(scenarios_for(use_case))
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r} for {use_case}; allowed: {valid}")
    if use_case not in SCENARIO_USE_CASES[scenario]:
        raise ValueError(f"scenario {scenario!r} is simulated for "
                         f"{', '.join(SCENARIO_USE_CASES[scenario])} only, not {use_case!r}; "
                         f"allowed for {use_case}: {valid}")


def shift_intensity(scenario: str, day_index: int, shift_day: int | None,
                    ramp_days: int = DEFAULT_RAMP_DAYS) -> float:
    """How much of the "shift" change batch ``day_index`` carries: 0 .. 1.

    "shift": 1 from ``shift_day`` on; "gradual": (k + 1) / ramp_days on batch shift_day + k,
    up to 1; any other scenario: 0.
    """
    if shift_day is None or day_index < shift_day or scenario not in ("shift", "gradual"):
        return 0.0
    if scenario == "shift":
        return 1.0
    return min(1.0, (day_index - shift_day + 1) / ramp_days)


def _plan(use_case: str, scenario: str, day_index: int, shift_day: int | None, seed: int,
          campaign_days: int, ramp_days: int) -> DayPlan:
    if scenario == "seasonal":
        return DayPlan(mix="seasonal",
                       mix_power=math.cos(2 * math.pi * (day_index % SEASONAL_PERIOD)
                                          / SEASONAL_PERIOD))
    started = shift_day is not None and day_index >= shift_day
    if not started or scenario == "none":
        return CONTROL
    if scenario in ("shift", "gradual"):
        return DayPlan(shift=shift_intensity(scenario, day_index, shift_day, ramp_days))
    if scenario == "covariate":
        return DayPlan(mix="covariate", mix_power=1.0)
    own = np.random.default_rng([seed, day_index, _STREAM[use_case],
                                 _CONCEPT if scenario == "concept" else _CAMPAIGN])
    if scenario == "concept":
        return DayPlan(concept=True, stream=own)
    assert shift_day is not None  # "started" above
    if day_index < shift_day + campaign_days:  # bad-promotion
        return DayPlan(campaign=True, stream=own)
    return CONTROL


def generate_day(use_case: str, day_index: int, day: dt.date, *, rows: int | None = None,
                 shift_day: int | None = None, seed: int = 7, scenario: str = "shift",
                 campaign_days: int = DEFAULT_CAMPAIGN_DAYS,
                 ramp_days: int = DEFAULT_RAMP_DAYS) -> pd.DataFrame:
    """One day's labelled batch for ``use_case`` ("demand" or "fraud") under ``scenario``.

    See the module's docstring for what each scenario changes from ``shift_day`` on;
    ``shift_day=None``: the control stream, for every scenario but "seasonal".
    """
    if use_case not in USE_CASES:
        raise ValueError(f"unknown use case {use_case!r}; allowed: {', '.join(USE_CASES)}")
    check_scenario(use_case, scenario)
    if campaign_days < 1:
        raise ValueError(f"campaign_days must be at least 1, got {campaign_days}")
    if ramp_days < 1:
        raise ValueError(f"ramp_days must be at least 1, got {ramp_days}")
    n = DEFAULT_ROWS[use_case] if rows is None else int(rows)
    if not 1 <= n < ID_STRIDE:
        raise ValueError(f"rows must be between 1 and {ID_STRIDE - 1}, got {rows}")
    plan = _plan(use_case, scenario, day_index, shift_day, seed, campaign_days, ramp_days)
    rng = np.random.default_rng([seed, day_index, _STREAM[use_case]])
    if use_case == "demand":
        return demand_day(rng, day, n, seed, plan)
    return fraud_day(rng, day, n, plan)
