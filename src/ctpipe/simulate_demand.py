"""Demand simulator (Hong Kong <-> Greater Bay Area trucking), one row per shipper account and day.

Scenarios are applied through ``DayPlan`` (ctpipe.simulate_common); ctpipe.simulate documents
what each one changes.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from scipy.special import gammaincinv, ndtri

from ctpipe.simulate_common import DayPlan, row_ids, stratified, strings

_STREAM = 101  # third element of the day's seed sequence (fraud has its own)
_STATIC = 0xD15C  # marks the per-seed (not per-day) stream for persistent shipper accounts
DEFAULT_ROWS = 240

LANES = ("HK-SZ", "HK-GZ", "HK-ZH", "HK-DG")
_LANE_SCALE = np.array([1.5, 0.9, 0.6, 1.0])  # relative truck traffic per lane
_LANE_WAIT = np.array([45.0, 35.0, 20.0, 40.0])  # typical truck queue (minutes) at its crossing
COMMODITIES = ("electronics", "consumer_goods", "medical_supplies", "apparel", "food", "machinery")
_CONSUMER, _MEDICAL = COMMODITIES.index("consumer_goods"), COMMODITIES.index("medical_supplies")
_BOOKINGS = np.array([40.0, 60.0, 20.0, 30.0, 35.0, 12.0])  # bookings / account / day (median)
_TONNES = np.array([0.35, 0.45, 0.30, 0.25, 0.90, 1.80])  # tonnes per booking
TYPHOON = ("none", "T1", "T3", "T8")
# Roughly Hong Kong's yearly signal counts, spread evenly over the year: a seasonal typhoon
# calendar would make a summer control run look like drift.
_TYPHOON_P = np.array([0.95, 0.03, 0.015, 0.005])
_TYPHOON_VOLUME = np.array([1.0, 1.0, 0.9, 0.40])  # T8 closes much of the border
_TYPHOON_WAIT = np.array([1.0, 1.0, 1.15, 1.8])
_TYPHOON_RAIN = np.array([1.0, 1.0, 1.8, 3.0])  # rain scale
_TYPHOON_RAIN_P = np.array([0.5, 0.5, 0.75, 0.9])  # share of rows with rain
HOLIDAYS = ("none", "hk", "mainland", "both")
_HOLIDAY_BOOKINGS = np.array([1.0, 0.75, 0.70, 0.55])
_HOLIDAY_VOLUME = np.array([1.0, 0.99, 0.98, 0.97])  # the dip is mostly in bookings
_HOLIDAY_WAIT = np.array([1.0, 1.0, 1.02, 1.02])  # mainland holidays crowd the crossings
# Weekly pattern, Monday first. Bookings move only mildly (so weekends do not look like drift);
# the rest of the weekend dip is in tonnes per booking, which day_of_week lets a model learn.
_DOW_BOOKINGS = np.array([1.0, 1.02, 1.02, 1.02, 1.04, 0.96, 0.93])
_DOW_VOLUME = np.array([1.0, 1.0, 1.0, 1.0, 1.03, 0.90, 0.82])
_DOW_WAIT = np.array([1.0, 1.0, 1.0, 1.0, 1.02, 0.98, 0.97])
# Scenario: consumer-goods accounts that become medical-supplies accounts, and the new factors.
_MOVED_ACCOUNTS = 0.7
_SHIFT_BOOKINGS = {_CONSUMER: 0.6, _MEDICAL: 3.0}  # factor on advance bookings
_SHIFT_TONNES = {_CONSUMER: 0.4, _MEDICAL: 2.5}  # factor on tonnes per booking
_SHIFT_EXTRA_WAIT = 20.0  # minutes of added inspection per crossing
_RAIN_NULL_P = 0.01  # missing rain-gauge readings; config allows up to 5 %
# Scenario covariate: trade moves to the western lanes and to electronics / machinery shippers
# (weights on the lane x commodity mix of accounts; the bookings -> tonnes relation is kept).
_COVARIATE_LANE = np.array([0.5, 1.0, 2.0, 1.5])
_COVARIATE_COMMODITY = np.array([1.8, 0.5, 1.0, 0.7, 0.8, 1.8])
# Scenario seasonal: a weekly cycle, raised to cos(2 pi t / period): consumer goods, apparel
# and food accounts peak together, electronics and machinery trough, and bookings follow.
_SEASONAL_LANE = np.array([1.4, 1.0, 0.7, 1.0])
_SEASONAL_COMMODITY = np.array([0.6, 1.7, 1.0, 1.4, 1.7, 0.5])
_SEASONAL_BOOKINGS = 1.3  # bookings factor at the peak (its inverse at the trough)
_POOL = 3  # candidate accounts per account kept, for the mix scenarios
# Scenario concept: a new booking system; a booking reserves a pallet position for some
# commodities and a whole truck for others, so tonnes per booking change (inputs do not).
_CONCEPT_TONNES = np.array([1.8, 1.0, 1.0, 0.55, 0.5, 1.6])  # per commodity

# Lunar New Year's Day, for the holiday calendar (HK and mainland both close around it).
_LUNAR_NEW_YEAR = {
    2020: (1, 25), 2021: (2, 12), 2022: (2, 1), 2023: (1, 22), 2024: (2, 10), 2025: (1, 29),
    2026: (2, 17), 2027: (2, 6), 2028: (1, 26), 2029: (2, 13), 2030: (2, 3),
}


def holiday_for(day: dt.date) -> str:
    """Which side of the border is on public holiday: none, hk, mainland or both.

    A simplified calendar: fixed-date holidays (Ching Ming pinned to 4 April), mainland Labour
    Day and National Day weeks, and Lunar New Year for 2020-2030; the other lunar holidays are
    left out.
    """
    md = (day.month, day.day)
    lny = _LUNAR_NEW_YEAR.get(day.year)
    if lny is not None:
        offset = (day - dt.date(day.year, *lny)).days
        if 0 <= offset <= 2:
            return "both"
        if offset == -1 or 3 <= offset <= 6:
            return "mainland"
    if md in ((1, 1), (5, 1), (10, 1), (4, 4)):
        return "both"
    if md in ((7, 1), (12, 25), (12, 26)):
        return "hk"
    if day.month == 5 and 2 <= day.day <= 5 or day.month == 10 and 2 <= day.day <= 7:
        return "mainland"
    return "none"


def _demand_accounts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Persistent shipper accounts: (lane, commodity, account slot, size) for ``n`` rows.

    Drawn from a per-seed stream, not the day's, so the same shippers (with the same size)
    appear every day: the bookings marginal is then stable from one day to the next.
    """
    static = np.random.default_rng([seed, _STATIC, _STREAM])
    per_cell = -(-n // (len(LANES) * len(COMMODITIES)))
    lane, commodity, slot = (a.ravel() for a in np.meshgrid(
        np.arange(len(LANES)), np.arange(len(COMMODITIES)), np.arange(per_cell), indexing="ij"))
    size = static.lognormal(0.0, 0.6, lane.size)
    if lane.size > n:  # keep a fixed random subset of the grid, in grid order
        keep = np.sort(static.choice(lane.size, n, replace=False))
        lane, commodity, slot, size = lane[keep], commodity[keep], slot[keep], size[keep]
    return lane, commodity, slot, size


def _mixed_accounts(n: int, seed: int, weight: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` accounts out of ``_POOL * n``, each lane x commodity cell's count set by ``weight``.

    A cell keeps its lowest account slots, so the same accounts come back day after day and a
    bigger quota adds accounts to a smaller one. Which accounts are kept depends on lane and
    commodity only, never on size or volume: the input -> target relation is the control's.
    """
    lane, commodity, slot, size = _demand_accounts(_POOL * n, seed)
    cell = lane * len(COMMODITIES) + commodity
    available = np.bincount(cell, minlength=weight.size).astype("float64")
    quota = np.zeros_like(available)
    want = weight.ravel() * available
    left = float(n)
    for _ in range(weight.size):  # water-filling: a full cell's excess goes to the others
        open_ = quota < available
        if left <= 1e-9 or not open_.any():
            break
        share = np.where(open_, want, 0.0)
        quota = np.minimum(quota + left * share / share.sum(), available)
        left = n - quota.sum()
    count = np.floor(quota).astype("int64")
    order = np.argsort(-(quota - count), kind="stable")  # largest remainders get the rest
    count[order[:n - count.sum()]] += 1
    keep = slot < count[cell]
    return lane[keep], commodity[keep], slot[keep], size[keep]


def _mix_weight(plan: DayPlan) -> np.ndarray:
    lanes, commodities = {"covariate": (_COVARIATE_LANE, _COVARIATE_COMMODITY),
                          "seasonal": (_SEASONAL_LANE, _SEASONAL_COMMODITY)}[plan.mix or ""]
    return np.outer(lanes, commodities) ** plan.mix_power


def demand_day(rng: np.random.Generator, day: dt.date, n: int, seed: int,
               plan: DayPlan) -> pd.DataFrame:
    """One day's batch of ``n`` rows, the scenario applied as ``plan`` says."""
    if plan.mix is None:
        lane, commodity, slot, size = _demand_accounts(n, seed)
    else:
        lane, commodity, slot, size = _mixed_accounts(n, seed, _mix_weight(plan))
    per_cell = int(slot.max()) + 1
    s = plan.shift
    if s > 0:
        # New medical-supplies licences: most consumer-goods accounts switch commodity (a
        # gradual shift moves them a few at a time).
        moved = (commodity == _CONSUMER) & (slot < round(_MOVED_ACCOUNTS * s * per_cell))
        commodity = np.where(moved, _MEDICAL, commodity)

    # Day-level conditions (drawn first and in a fixed order, so both streams agree pre-shift).
    typhoon = int(np.searchsorted(np.cumsum(_TYPHOON_P), rng.random(), side="right"))
    commodity_shock = rng.lognormal(0.0, 0.04, len(COMMODITIES))  # unobservable demand swings
    holiday = HOLIDAYS.index(holiday_for(day))
    dow = day.weekday()

    bookings_mult = _DOW_BOOKINGS[dow] * _HOLIDAY_BOOKINGS[holiday]
    if plan.mix == "seasonal":  # like the weekday factor: bookings and volume move together
        bookings_mult = bookings_mult * _SEASONAL_BOOKINGS ** plan.mix_power
    volume_mult = _DOW_VOLUME[dow] * _HOLIDAY_VOLUME[holiday] * _TYPHOON_VOLUME[typhoon]
    expected = _BOOKINGS[commodity] * _LANE_SCALE[lane] * size * bookings_mult
    tonnes = _TONNES[commodity] * commodity_shock[commodity]
    if plan.concept:
        tonnes = tonnes * _CONCEPT_TONNES[commodity]
    extra_wait = 0.0
    if s > 0:
        # Factors phase in geometrically (factor ** s): s = 1 is exactly the full factor.
        for idx, factor in _SHIFT_BOOKINGS.items():
            expected = np.where(commodity == idx, expected * factor ** s, expected)
        for idx, factor in _SHIFT_TONNES.items():
            tonnes = np.where(commodity == idx, tonnes * factor ** s, tonnes)
        extra_wait = _SHIFT_EXTRA_WAIT * s

    bookings = np.round(expected * np.exp(0.2 * ndtri(stratified(rng, n)))).astype("int64")
    wait = (_LANE_WAIT[lane] * _DOW_WAIT[dow] * _HOLIDAY_WAIT[holiday] * _TYPHOON_WAIT[typhoon]
            * gammaincinv(6.0, stratified(rng, n)) / 6.0 + extra_wait)
    wait = np.round(np.clip(wait, 0.0, 1440.0), 1)
    rain_p = _TYPHOON_RAIN_P[typhoon]
    # Rain varies by route and hour, not by day (except under a typhoon): a day-level wet/dry
    # factor would make ordinary days look like drift against a multi-day reference.
    rain = (gammaincinv(1.5, stratified(rng, n)) * 5.0 * _TYPHOON_RAIN[typhoon]
            * (stratified(rng, n) < rain_p))
    rain = np.round(np.clip(rain, 0.0, 1000.0), 1)

    # Unbooked walk-in freight (~5 %) is invisible to the features, like the per-row noise.
    walk_in = 0.05 * _BOOKINGS[commodity] * _LANE_SCALE[lane] * size * bookings_mult
    congestion = np.exp(-0.004 * (wait - _LANE_WAIT[lane]) - 0.0015 * rain)
    volume = (tonnes * (bookings + walk_in) * volume_mult * np.minimum(congestion, 1.1)
              * rng.lognormal(0.0, 0.17, n))
    volume = np.round(np.maximum(volume, 0.0), 2)

    rain_missing = rng.random(n) < _RAIN_NULL_P
    rain = np.where(rain_missing, np.nan, rain)
    return pd.DataFrame({
        "date": np.full(n, np.datetime64(day, "us")),
        "record_id": row_ids(day, n),
        "advance_bookings": bookings,
        "rainfall_mm": rain,
        "border_wait_minutes": wait,
        "lane": strings(lane, LANES),
        "commodity": strings(commodity, COMMODITIES),
        "typhoon_signal": strings(np.full(n, typhoon), TYPHOON),
        "holiday": strings(np.full(n, holiday), HOLIDAYS),
        "volume_tonnes": volume,
    })
