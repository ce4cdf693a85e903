"""Seeded synthetic generators for the two reference use cases, with scripted scenarios.

``generate_day`` builds one day's labelled batch. Every day draws from its own generator,
``numpy.random.default_rng([seed, day_index, <use-case constant>])``, so any day can be produced
on its own and a replay is reproducible. ``shift_day=None`` gives the no-shift control stream;
otherwise the scenario starts at ``day_index == shift_day``. Days before it are identical in
every stream, so a control run and a scenario run share their history. Scenarios:

- ``shift`` (both use cases, the default): a lasting change from ``shift_day`` on, below.
- ``bad-promotion`` (fraud only): a short-lived fraud campaign, ``campaign_days`` batches from
  ``shift_day`` on; every other day is the control stream's.

Demand (Hong Kong <-> Greater Bay Area trucking): one row per lane x commodity x shipper account
and day. Advance bookings drive the volume; weekdays, holidays, typhoon signals, border waits
and rain modulate it. Scenario: a cross-border policy change (a medical-supplies green channel
plus tighter inspections) moves 70 % of the consumer-goods shipper accounts to medical supplies,
triples medical bookings and multiplies medical tonnes per booking by 2.5, cuts consumer-goods
bookings to 0.6x and their tonnes per booking to 0.4x, and adds 20 minutes of inspection to
every crossing: the bookings -> volume relationship changes, not only the marginals.

Fraud (retail card transactions): legitimate traffic plus three established fraud patterns
(card-not-present, card testing, skimmed cards used abroad). Scenario: a Singapore wallet
partnership brings a new wallet segment, and fraudsters provision stolen cards into wallets for
small, slow gaming / online-services payments that look nothing like the old patterns.

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
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import gammaincinv, ndtri

USE_CASES = ("demand", "fraud")
SCENARIOS = ("shift", "bad-promotion")
SCENARIO_USE_CASES = {"shift": USE_CASES, "bad-promotion": ("fraud",)}  # who simulates what
DEFAULT_CAMPAIGN_DAYS = 6  # length of the bad-promotion campaign, in daily batches
DEFAULT_ROWS = {"demand": 240, "fraud": 20_000}
# Third element of the seed sequence, so the two use cases never share a random stream.
_STREAM = {"demand": 101, "fraud": 202}
_ID_STRIDE = 10**8  # row ids are yyyymmdd * stride + row number
_STATIC = 0xD15C  # marks the per-seed (not per-day) stream for persistent shipper accounts
_CAMPAIGN = 0xCA3B  # marks the campaign's own per-day stream (the day's stream stays untouched)


def check_scenario(use_case: str, scenario: str) -> None:
    """Refuse an unknown scenario, or one the use case has no simulation for (ValueError)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; allowed: {', '.join(SCENARIOS)}")
    if use_case not in SCENARIO_USE_CASES[scenario]:
        raise ValueError(f"scenario {scenario!r} is simulated for "
                         f"{', '.join(SCENARIO_USE_CASES[scenario])} only, not {use_case!r}")


def generate_day(use_case: str, day_index: int, day: dt.date, *, rows: int | None = None,
                 shift_day: int | None = None, seed: int = 7, scenario: str = "shift",
                 campaign_days: int = DEFAULT_CAMPAIGN_DAYS) -> pd.DataFrame:
    """One day's labelled batch for ``use_case`` ("demand" or "fraud").

    ``scenario`` "shift" applies from ``shift_day`` on; "bad-promotion" (fraud only) runs its
    campaign on days ``shift_day`` .. ``shift_day + campaign_days - 1``. ``shift_day=None``:
    the control stream, whatever the scenario.
    """
    if use_case not in USE_CASES:
        raise ValueError(f"unknown use case {use_case!r}; allowed: {', '.join(USE_CASES)}")
    check_scenario(use_case, scenario)
    if campaign_days < 1:
        raise ValueError(f"campaign_days must be at least 1, got {campaign_days}")
    n = DEFAULT_ROWS[use_case] if rows is None else int(rows)
    if not 1 <= n < _ID_STRIDE:
        raise ValueError(f"rows must be between 1 and {_ID_STRIDE - 1}, got {rows}")
    shifted = scenario == "shift" and shift_day is not None and day_index >= shift_day
    rng = np.random.default_rng([seed, day_index, _STREAM[use_case]])
    if use_case == "demand":
        return _demand_day(rng, day, n, shifted, seed)
    ring = None
    if scenario == "bad-promotion" and shift_day is not None \
            and shift_day <= day_index < shift_day + campaign_days:
        # Its own stream: the day's draws, and so every row the ring leaves alone, stay the
        # control day's.
        ring = np.random.default_rng([seed, day_index, _STREAM[use_case], _CAMPAIGN])
    return _fraud_day(rng, day, n, shifted, ring)


def _strings(codes: np.ndarray, levels: Sequence[str]) -> pd.Series:
    """Codes -> a pandas ``str`` column, through Arrow: ~50x faster than Python strings at 2M."""
    dictionary = pa.DictionaryArray.from_arrays(pa.array(codes.astype("int32")), pa.array(levels))
    return dictionary.cast(pa.large_string()).to_pandas().astype("str")


def _pick(rng: np.random.Generator, probs: np.ndarray, size: int | None = None,
          rows: np.ndarray | None = None) -> np.ndarray:
    """Vectorised categorical draw: one probability vector, or row ``rows[i]`` of ``probs``."""
    cum = np.cumsum(probs, axis=-1)
    cum = cum / cum[..., -1:]
    if rows is None:
        return np.searchsorted(cum, rng.random(size), side="right").clip(0, cum.size - 1)
    # Offset each group's cumulative row by its index and search once: group g's draws land
    # in [g, g + 1), so one searchsorted serves every group (O(n) memory, no per-group masks).
    groups, levels = cum.shape
    flat = (cum + np.arange(groups)[:, None]).ravel()
    pos = np.searchsorted(flat, rows + rng.random(len(rows)), side="right") - rows * levels
    return pos.clip(0, levels - 1)


def _stratified(rng: np.random.Generator, n: int) -> np.ndarray:
    """Uniforms with exactly one draw per 1/n stratum, in random order.

    A 240-row day drawn this way matches its distribution far more closely than i.i.d. draws,
    so sampling noise alone does not push the control stream over drift thresholds.
    """
    return (rng.permutation(n) + rng.random(n)) / n


def _ids(day: dt.date, n: int) -> np.ndarray:
    # yyyymmdd * 1e8 + row: unique across days and readable; fits int64 for any date.
    return int(day.strftime("%Y%m%d")) * _ID_STRIDE + np.arange(n, dtype="int64")


# --------------------------------------------------------------------------- demand

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
    static = np.random.default_rng([seed, _STATIC, _STREAM["demand"]])
    per_cell = -(-n // (len(LANES) * len(COMMODITIES)))
    lane, commodity, slot = (a.ravel() for a in np.meshgrid(
        np.arange(len(LANES)), np.arange(len(COMMODITIES)), np.arange(per_cell), indexing="ij"))
    size = static.lognormal(0.0, 0.6, lane.size)
    if lane.size > n:  # keep a fixed random subset of the grid, in grid order
        keep = np.sort(static.choice(lane.size, n, replace=False))
        lane, commodity, slot, size = lane[keep], commodity[keep], slot[keep], size[keep]
    return lane, commodity, slot, size


def _demand_day(rng: np.random.Generator, day: dt.date, n: int, shifted: bool,
                seed: int) -> pd.DataFrame:
    lane, commodity, slot, size = _demand_accounts(n, seed)
    per_cell = int(slot.max()) + 1
    if shifted:
        # New medical-supplies licences: most consumer-goods accounts switch commodity.
        moved = (commodity == _CONSUMER) & (slot < round(_MOVED_ACCOUNTS * per_cell))
        commodity = np.where(moved, _MEDICAL, commodity)

    # Day-level conditions (drawn first and in a fixed order, so both streams agree pre-shift).
    typhoon = int(np.searchsorted(np.cumsum(_TYPHOON_P), rng.random(), side="right"))
    commodity_shock = rng.lognormal(0.0, 0.04, len(COMMODITIES))  # unobservable demand swings
    holiday = HOLIDAYS.index(holiday_for(day))
    dow = day.weekday()

    bookings_mult = _DOW_BOOKINGS[dow] * _HOLIDAY_BOOKINGS[holiday]
    volume_mult = _DOW_VOLUME[dow] * _HOLIDAY_VOLUME[holiday] * _TYPHOON_VOLUME[typhoon]
    expected = _BOOKINGS[commodity] * _LANE_SCALE[lane] * size * bookings_mult
    tonnes = _TONNES[commodity] * commodity_shock[commodity]
    extra_wait = 0.0
    if shifted:
        for idx, factor in _SHIFT_BOOKINGS.items():
            expected = np.where(commodity == idx, expected * factor, expected)
        for idx, factor in _SHIFT_TONNES.items():
            tonnes = np.where(commodity == idx, tonnes * factor, tonnes)
        extra_wait = _SHIFT_EXTRA_WAIT

    bookings = np.round(expected * np.exp(0.2 * ndtri(_stratified(rng, n)))).astype("int64")
    wait = (_LANE_WAIT[lane] * _DOW_WAIT[dow] * _HOLIDAY_WAIT[holiday] * _TYPHOON_WAIT[typhoon]
            * gammaincinv(6.0, _stratified(rng, n)) / 6.0 + extra_wait)
    wait = np.round(np.clip(wait, 0.0, 1440.0), 1)
    rain_p = _TYPHOON_RAIN_P[typhoon]
    # Rain varies by route and hour, not by day (except under a typhoon): a day-level wet/dry
    # factor would make ordinary days look like drift against a multi-day reference.
    rain = (gammaincinv(1.5, _stratified(rng, n)) * 5.0 * _TYPHOON_RAIN[typhoon]
            * (_stratified(rng, n) < rain_p))
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
        "record_id": _ids(day, n),
        "advance_bookings": bookings,
        "rainfall_mm": rain,
        "border_wait_minutes": wait,
        "lane": _strings(lane, LANES),
        "commodity": _strings(commodity, COMMODITIES),
        "typhoon_signal": _strings(np.full(n, typhoon), TYPHOON),
        "holiday": _strings(np.full(n, holiday), HOLIDAYS),
        "volume_tonnes": volume,
    })


# --------------------------------------------------------------------------- fraud

CATEGORIES = ("grocery", "restaurants", "fuel", "electronics", "travel", "online_services",
              "jewelry", "gaming", "cash_withdrawal")
CHANNELS = ("pos", "ecommerce", "atm", "wallet")
JURISDICTIONS = ("HK", "SG", "GB")
_ATM = CATEGORIES.index("cash_withdrawal")
_GROCERY, _TRAVEL, _ONLINE, _GAMING = (
    CATEGORIES.index(c) for c in ("grocery", "travel", "online_services", "gaming"))
_POS, _ECOMMERCE, _ATM_CHANNEL, _WALLET = range(4)
_SG = JURISDICTIONS.index("SG")
_HOUR_P = np.array([1.2, 0.8, 0.5, 0.4, 0.4, 0.6, 1.5, 3.0, 4.5, 5.0, 5.5, 6.0,
                    7.0, 6.5, 6.0, 6.0, 6.0, 6.5, 7.0, 7.0, 6.5, 5.0, 3.5, 2.0])
_NIGHT = np.isin(np.arange(24), [0, 1, 2, 3, 4, 5])
_EVENING = np.isin(np.arange(24), [18, 19, 20, 21, 22, 23])
# Category mix given channel (rows: pos, ecommerce, atm, wallet; columns: CATEGORIES).
_CATEGORY_BY_CHANNEL = np.array([
    [.34, .28, .14, .10, .05, .00, .05, .04, .00],
    [.10, .08, .00, .20, .22, .25, .03, .12, .00],
    [.00, .00, .00, .00, .00, .00, .00, .00, 1.0],
    [.25, .25, .05, .08, .04, .18, .00, .15, .00],
])
_CHANNEL_P = np.array([0.55, 0.30, 0.05, 0.10])
_JURISDICTION_P = np.array([0.70, 0.20, 0.10])
_CROSS_BORDER_BY_CHANNEL = np.array([0.04, 0.18, 0.05, 0.05])
_CROSS_BORDER_TRAVEL = 0.5
_SPEND_MULT = np.array([0.5, 0.8, 0.9, 4.0, 6.0, 0.3, 10.0, 0.4, 2.0])  # amount / 30-day average
_FRAUD_RATE = 0.006  # daytime rate of the established patterns (night is higher)
_FRAUD_NIGHT_MULT = 3.0
_PATTERN_SHARE = np.array([0.45, 0.25, 0.30])  # card-not-present, card testing, skimming
# Scenario: the wallet partnership segment's share of traffic, and fraud inside it.
_WALLET_SEGMENT = 0.25
_WALLET_FRAUD = 0.03
_OLD_FRAUD_AFTER_SHIFT = 0.8  # the established patterns persist, a little damped
# Scenario bad-promotion: the card-testing ring's segment, and its payments' share of the day.
_RING_CHANNEL, _RING_CATEGORY = _WALLET, _ONLINE
_RING_SHARE = 0.15

# Row kinds.
_KINDS = 6
_LEGIT, _CNP, _TESTING, _SKIMMING, _WALLET_LEGIT, _WALLET_ATO = range(_KINDS)


def _kind_probabilities(shifted: bool) -> np.ndarray:
    """P(kind | hour), shape (24, 6): fraud concentrates at night, wallet traffic in the evening."""
    old_rate = np.where(_NIGHT, _FRAUD_RATE * _FRAUD_NIGHT_MULT, _FRAUD_RATE)
    probs = np.zeros((24, _KINDS))
    probs[:, _CNP:_SKIMMING + 1] = old_rate[:, None] * _PATTERN_SHARE
    if shifted:
        probs[:, _CNP:_SKIMMING + 1] *= _OLD_FRAUD_AFTER_SHIFT
        segment = _WALLET_SEGMENT * np.where(_EVENING, 1.4, np.where(_NIGHT, 0.6, 1.0))
        segment /= (segment * _HOUR_P).sum() / _HOUR_P.sum() / _WALLET_SEGMENT
        probs[:, _WALLET_ATO] = segment * _WALLET_FRAUD
        probs[:, _WALLET_LEGIT] = segment * (1 - _WALLET_FRAUD)
    probs[:, _LEGIT] = 1.0 - probs.sum(axis=1)
    return probs


def _fraud_day(rng: np.random.Generator, day: dt.date, n: int, shifted: bool,
               ring: np.random.Generator | None = None) -> pd.DataFrame:
    # Timestamps: hour counts, then a sorted microsecond offset; the day comes out time-ordered.
    hour = np.repeat(np.arange(24), rng.multinomial(n, _HOUR_P / _HOUR_P.sum()))
    micros = hour * 3_600_000_000 + rng.integers(0, 3_600_000_000, n)
    micros.sort()  # hour is the major key, so ``hour`` stays aligned with the sorted times
    kind = _pick(rng, _kind_probabilities(shifted), rows=hour)

    # Everyone first gets legitimate behaviour; each pattern then overrides its own rows.
    channel = _pick(rng, _CHANNEL_P, n)
    category = _pick(rng, _CATEGORY_BY_CHANNEL, rows=channel)
    jurisdiction = _pick(rng, _JURISDICTION_P, n)
    avg_30d = rng.lognormal(np.log(60.0), 0.7, n)  # the cardholder's usual spend
    spend = rng.lognormal(0.0, 0.6, n)  # this payment relative to the category's usual ticket
    txn_1h = rng.poisson(0.25, n)
    txn_24h = rng.poisson(2.0 * rng.lognormal(0.0, 0.5, n))
    card_age = rng.lognormal(np.log(1100.0), 0.9, n)
    new_card = np.flatnonzero(rng.random(n) < 0.05)
    card_age[new_card] = rng.uniform(0.0, 90.0, new_card.size)
    home_km = rng.lognormal(np.log(5.0), 1.0, n)
    cross_p = _CROSS_BORDER_BY_CHANNEL[channel]
    cross_p[category == _TRAVEL] = _CROSS_BORDER_TRAVEL

    by_kind = [np.flatnonzero(kind == k) for k in range(_KINDS)]

    def rows_of(*kinds: int, share: float = 1.0) -> np.ndarray:
        # A pattern shows a given signal on ``share`` of its rows only: fraud is not always
        # obvious. Draws below are sized to these rows, which keeps 2M-row days fast.
        idx = np.sort(np.concatenate([by_kind[k] for k in kinds]))
        return idx if share >= 1.0 else idx[rng.random(idx.size) < share]

    def lognormal(median: float, sigma: float, idx: np.ndarray) -> np.ndarray:
        return rng.lognormal(np.log(median), sigma, idx.size)

    # Card-not-present: online, big-ticket goods, often abroad, well above the usual spend.
    i = rows_of(_CNP, share=0.9)
    channel[i] = _ECOMMERCE
    category[i] = _pick(rng, np.array([0, 0, 0, .35, .20, .15, .15, .15, 0]), i.size)
    cross_p[rows_of(_CNP)] = 0.45
    i = rows_of(_CNP, share=0.75)
    spend[i] = lognormal(2.7, 0.8, i)
    i = rows_of(_CNP, share=0.3)
    card_age[i] = lognormal(60.0, 1.0, i)
    i = rows_of(_CNP)
    txn_1h[i] = rng.poisson(1.0, i.size)

    # Card testing: bursts of small payments on online services and games.
    i = rows_of(_TESTING)
    channel[i] = np.where(rng.random(i.size) < 0.9, _ECOMMERCE, _POS)
    category[i] = _pick(rng, np.array([.10, .15, 0, 0, 0, .40, 0, .35, 0]), i.size)
    cross_p[i] = 0.3
    spend[i] = lognormal(0.3, 0.8, i)
    i = rows_of(_TESTING, share=0.8)
    txn_1h[i] = 2 + rng.poisson(4.0, i.size)
    i = rows_of(_TESTING, share=0.7)
    txn_24h[i] = rng.poisson(8.0, i.size)

    # Skimmed cards used abroad at terminals and ATMs.
    i = rows_of(_SKIMMING)
    channel[i] = np.where(rng.random(i.size) < 0.4, _ATM_CHANNEL, _POS)
    category[i] = _pick(rng, np.array([.10, .10, .10, .40, 0, 0, .30, 0, 0]), i.size)
    cross_p[i] = 0.85
    i = rows_of(_SKIMMING, share=0.7)
    spend[i] = lognormal(2.2, 0.7, i)
    i = rows_of(_SKIMMING, share=0.85)
    home_km[i] = lognormal(1200.0, 1.3, i)

    # Scenario: the Singapore wallet partnership segment (legitimate) ...
    i = rows_of(_WALLET_LEGIT, _WALLET_ATO)
    channel[i] = np.where(rng.random(i.size) < 0.9, _WALLET, _ECOMMERCE)
    jurisdiction[i] = _pick(rng, np.array([.08, .90, .02]), i.size)
    category[i] = _pick(rng, np.array([.10, .15, .05, 0, 0, .35, 0, .35, 0]), i.size)
    cross_p[i] = 0.03
    txn_24h[i] = rng.poisson(5.0 * rng.lognormal(0.0, 0.5, i.size))
    txn_1h[i] = rng.poisson(0.4, i.size)
    # ... and stolen cards provisioned into it: small, slow payments, a short hop from home.
    i = rows_of(_WALLET_ATO, share=0.95)
    channel[i] = _WALLET
    i = rows_of(_WALLET_ATO, share=0.85)
    jurisdiction[i] = _SG
    i = rows_of(_WALLET_ATO, share=0.9)
    category[i] = np.where(rng.random(i.size) < 0.5, _ONLINE, _GAMING)
    i = rows_of(_WALLET_ATO, share=0.85)
    spend[i] = lognormal(0.25, 0.4, i)
    i = rows_of(_WALLET_ATO)
    txn_1h[i] = rng.poisson(0.3, i.size)
    i = rows_of(_WALLET_ATO, share=0.8)
    home_km[i] = lognormal(30.0, 0.5, i)

    # Consistency: an ATM row is a withdrawal and nothing else is; abroad means far from home.
    category[channel == _ATM_CHANNEL] = _ATM
    category[(channel != _ATM_CHANNEL) & (category == _ATM)] = _GROCERY
    cross = rng.random(n) < cross_p
    far = np.flatnonzero(cross & (kind != _SKIMMING))
    home_km[far] = np.maximum(home_km[far], lognormal(1200.0, 1.3, far))
    amount = np.round(np.clip(avg_30d * _SPEND_MULT[category] * spend, 0.5, 1_000_000.0), 2)
    txn_24h += txn_1h  # the 24-hour window contains the last hour
    label = (kind != _LEGIT) & (kind != _WALLET_LEGIT)
    if ring is not None:
        order = _card_testing_ring(ring, hour, micros, channel, category, amount, avg_30d,
                                   cross, home_km, label)
        # Back in time order (row ids follow it), the rows the ring left alone unchanged.
        (micros, hour, amount, avg_30d, txn_1h, txn_24h, card_age, home_km, category, channel,
         cross, jurisdiction, label) = (a[order] for a in (
             micros, hour, amount, avg_30d, txn_1h, txn_24h, card_age, home_km, category,
             channel, cross, jurisdiction, label))

    return pd.DataFrame({
        "event_time": np.datetime64(day, "us") + micros.astype("timedelta64[us]"),
        "transaction_id": _ids(day, n),
        "amount": amount,
        "hour": hour.astype("int64"),
        "txn_count_1h": np.minimum(txn_1h, 1000).astype("int64"),
        "txn_count_24h": np.minimum(txn_24h, 5000).astype("int64"),
        "amount_vs_avg_30d": np.round(amount / avg_30d, 4),
        "card_age_days": np.clip(card_age, 0, 20000).astype("int64"),
        "distance_from_home_km": np.round(np.clip(home_km, 0.0, 20000.0), 1),
        "merchant_category": _strings(category, CATEGORIES),
        "channel": _strings(channel, CHANNELS),
        "cross_border": _strings(cross.astype("int8"), ("no", "yes")),
        "jurisdiction": _strings(jurisdiction, JURISDICTIONS),
        "is_fraud": label.astype("int64"),
    }, copy=False)  # the arrays are fresh; skipping consolidation saves ~0.4 s at 2M rows


def _card_testing_ring(rng: np.random.Generator, hour: np.ndarray, micros: np.ndarray,
                       channel: np.ndarray, category: np.ndarray, amount: np.ndarray,
                       avg_30d: np.ndarray, cross: np.ndarray, home_km: np.ndarray,
                       label: np.ndarray) -> np.ndarray:
    """Scenario bad-promotion, in place: ring payments replace a share of legitimate rows.

    A replaced row keeps its card (card age, velocities, jurisdiction) and becomes an evening
    payment in the ring's segment, drawn like the segment's legitimate ones: within the
    segment's evening rush nothing tells the ring apart. Returns the rows' new time order.
    """
    in_segment = (channel == _RING_CHANNEL) & (category == _RING_CATEGORY)
    candidates = np.flatnonzero(~label & ~in_segment)
    count = min(rng.binomial(label.size, _RING_SHARE), candidates.size)
    i = np.sort(rng.choice(candidates, count, replace=False))
    evening = np.flatnonzero(_EVENING)
    hour[i] = evening[_pick(rng, _HOUR_P[evening], i.size)]
    micros[i] = hour[i] * 3_600_000_000 + rng.integers(0, 3_600_000_000, i.size)
    channel[i] = _RING_CHANNEL
    category[i] = _RING_CATEGORY
    avg_30d[i] = rng.lognormal(np.log(60.0), 0.7, i.size)
    amount[i] = np.round(np.clip(avg_30d[i] * _SPEND_MULT[_RING_CATEGORY]
                                 * rng.lognormal(0.0, 0.6, i.size), 0.5, 1_000_000.0), 2)
    cross[i] = rng.random(i.size) < _CROSS_BORDER_BY_CHANNEL[_RING_CHANNEL]
    home_km[i] = rng.lognormal(np.log(5.0), 1.0, i.size)
    far = i[cross[i]]
    home_km[far] = np.maximum(home_km[far], rng.lognormal(np.log(1200.0), 1.3, far.size))
    label[i] = True
    return np.argsort(micros, kind="stable")
