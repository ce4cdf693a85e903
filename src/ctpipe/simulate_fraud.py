"""Fraud simulator (retail card transactions): legitimate traffic and three fraud patterns.

Scenarios are applied through ``DayPlan`` (ctpipe.simulate_common); ctpipe.simulate documents
what each one changes.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ctpipe.simulate_common import DayPlan, pick, row_ids, strings

STREAM = 202  # third element of the day's seed sequence (demand has its own)
DEFAULT_ROWS = 20_000

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
# Scenario covariate: customers move online (a shopping-app launch): wallet and e-commerce
# payments grow, card-present ones shrink, Singapore cardholders and evening payments grow.
# Weights on channel, jurisdiction and hour choose which rows a day keeps; how each kind of row
# looks is unchanged.
_COVARIATE_CHANNEL = np.array([0.4, 1.6, 1.0, 3.0])
_COVARIATE_JURISDICTION = np.array([0.7, 2.5, 1.0])
_COVARIATE_EVENING = 2.0
# Scenario seasonal: a weekly cycle, raised to cos(2 pi t / period): online evening shopping
# peaks, card-present daytime payments trough.
_SEASONAL_CHANNEL = np.array([0.4, 2.0, 1.0, 2.0])
_SEASONAL_EVENING = 2.0
_POOL = 3  # candidate rows per row kept, for the mix scenarios
# Scenario concept: a chargeback-rule change. Card-testing payments are no longer confirmed as
# fraud (merchants carry them), and disputes of genuine big online purchases on young cards
# ("friendly fraud") now are: the same transactions, labelled differently.
_FRIENDLY_CATEGORIES = ("electronics", "travel", "jewelry")
_FRIENDLY_SPEND = 1.5  # amount / (30-day average x the category's usual ticket) above this
_FRIENDLY_CARD_AGE = 365  # days
_FRIENDLY_RATE = 0.7  # share of such purchases disputed and confirmed

# Row kinds.
_KINDS = 6
_LEGIT, _CNP, _TESTING, _SKIMMING, _WALLET_LEGIT, _WALLET_ATO = range(_KINDS)


def _kind_probabilities(shift: float) -> np.ndarray:
    """P(kind | hour), shape (24, 6): fraud concentrates at night, wallet traffic in the evening.

    ``shift`` (0 .. 1) is how much of the wallet partnership has arrived.
    """
    old_rate = np.where(_NIGHT, _FRAUD_RATE * _FRAUD_NIGHT_MULT, _FRAUD_RATE)
    probs = np.zeros((24, _KINDS))
    probs[:, _CNP:_SKIMMING + 1] = old_rate[:, None] * _PATTERN_SHARE
    if shift > 0:
        probs[:, _CNP:_SKIMMING + 1] *= _OLD_FRAUD_AFTER_SHIFT ** shift
        segment = _WALLET_SEGMENT * np.where(_EVENING, 1.4, np.where(_NIGHT, 0.6, 1.0))
        segment /= (segment * _HOUR_P).sum() / _HOUR_P.sum() / _WALLET_SEGMENT
        segment *= shift
        probs[:, _WALLET_ATO] = segment * _WALLET_FRAUD
        probs[:, _WALLET_LEGIT] = segment * (1 - _WALLET_FRAUD)
    probs[:, _LEGIT] = 1.0 - probs.sum(axis=1)
    return probs


def fraud_day(rng: np.random.Generator, day: dt.date, n: int, plan: DayPlan) -> pd.DataFrame:
    """One day's batch of ``n`` transactions, the scenario applied as ``plan`` says."""
    if plan.mix is None:
        return _frame(day, _transactions(rng, n, plan))
    pool = _transactions(rng, _POOL * n, plan)
    keep = _mix_rows(rng, pool, plan, n)
    return _frame(day, {name: values[keep] for name, values in pool.items()})


def _mix_rows(rng: np.random.Generator, pool: dict[str, np.ndarray], plan: DayPlan,
              n: int) -> np.ndarray:
    """``n`` rows of the pool drawn with weights on channel, jurisdiction and hour, in order.

    Weighted sampling without replacement (Efraimidis-Spirakis keys): a row's chance depends
    on its own inputs and a uniform draw only, never on its label, so P(label | inputs) is the
    control's; only the input mix moves.
    """
    if plan.mix == "covariate":
        weight = (_COVARIATE_CHANNEL[pool["channel"]]
                  * _COVARIATE_JURISDICTION[pool["jurisdiction"]]
                  * np.where(_EVENING[pool["hour"]], _COVARIATE_EVENING, 1.0))
    else:
        weight = _SEASONAL_CHANNEL[pool["channel"]] * np.where(
            _EVENING[pool["hour"]], _SEASONAL_EVENING, 1.0)
    weight = weight ** plan.mix_power
    keys = np.log(rng.random(weight.size)) / weight
    return np.sort(np.argpartition(-keys, n - 1)[:n])


def _transactions(rng: np.random.Generator, n: int, plan: DayPlan) -> dict[str, np.ndarray]:
    """The day's transactions as arrays (categories as codes), in time order."""
    # Timestamps: hour counts, then a sorted microsecond offset; the day comes out time-ordered.
    hour = np.repeat(np.arange(24), rng.multinomial(n, _HOUR_P / _HOUR_P.sum()))
    micros = hour * 3_600_000_000 + rng.integers(0, 3_600_000_000, n)
    micros.sort()  # hour is the major key, so ``hour`` stays aligned with the sorted times
    kind = pick(rng, _kind_probabilities(plan.shift), rows=hour)

    # Everyone first gets legitimate behaviour; each pattern then overrides its own rows.
    channel = pick(rng, _CHANNEL_P, n)
    category = pick(rng, _CATEGORY_BY_CHANNEL, rows=channel)
    jurisdiction = pick(rng, _JURISDICTION_P, n)
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
    category[i] = pick(rng, np.array([0, 0, 0, .35, .20, .15, .15, .15, 0]), i.size)
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
    category[i] = pick(rng, np.array([.10, .15, 0, 0, 0, .40, 0, .35, 0]), i.size)
    cross_p[i] = 0.3
    spend[i] = lognormal(0.3, 0.8, i)
    i = rows_of(_TESTING, share=0.8)
    txn_1h[i] = 2 + rng.poisson(4.0, i.size)
    i = rows_of(_TESTING, share=0.7)
    txn_24h[i] = rng.poisson(8.0, i.size)

    # Skimmed cards used abroad at terminals and ATMs.
    i = rows_of(_SKIMMING)
    channel[i] = np.where(rng.random(i.size) < 0.4, _ATM_CHANNEL, _POS)
    category[i] = pick(rng, np.array([.10, .10, .10, .40, 0, 0, .30, 0, 0]), i.size)
    cross_p[i] = 0.85
    i = rows_of(_SKIMMING, share=0.7)
    spend[i] = lognormal(2.2, 0.7, i)
    i = rows_of(_SKIMMING, share=0.85)
    home_km[i] = lognormal(1200.0, 1.3, i)

    # Scenario: the Singapore wallet partnership segment (legitimate) ...
    i = rows_of(_WALLET_LEGIT, _WALLET_ATO)
    channel[i] = np.where(rng.random(i.size) < 0.9, _WALLET, _ECOMMERCE)
    jurisdiction[i] = pick(rng, np.array([.08, .90, .02]), i.size)
    category[i] = pick(rng, np.array([.10, .15, .05, 0, 0, .35, 0, .35, 0]), i.size)
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
    if plan.concept:
        assert plan.stream is not None  # generate_day gives the concept its own stream
        label = _relabelled(plan.stream, kind, label, channel, category, amount / avg_30d,
                            card_age)
    if plan.campaign:
        assert plan.stream is not None  # generate_day gives the campaign its own stream
        order = _card_testing_ring(plan.stream, hour, micros, channel, category, amount,
                                   avg_30d, cross, home_km, label)
        # Back in time order (row ids follow it), the rows the ring left alone unchanged.
        (micros, hour, amount, avg_30d, txn_1h, txn_24h, card_age, home_km, category, channel,
         cross, jurisdiction, label) = (a[order] for a in (
             micros, hour, amount, avg_30d, txn_1h, txn_24h, card_age, home_km, category,
             channel, cross, jurisdiction, label))

    return {"micros": micros, "amount": amount, "hour": hour, "txn_1h": txn_1h,
            "txn_24h": txn_24h, "avg_30d": avg_30d, "card_age": card_age, "home_km": home_km,
            "category": category, "channel": channel, "cross": cross,
            "jurisdiction": jurisdiction, "label": label}


def _frame(day: dt.date, t: dict[str, np.ndarray]) -> pd.DataFrame:
    n = t["amount"].size
    return pd.DataFrame({
        "event_time": np.datetime64(day, "us") + t["micros"].astype("timedelta64[us]"),
        "transaction_id": row_ids(day, n),
        "amount": t["amount"],
        "hour": t["hour"].astype("int64"),
        "txn_count_1h": np.minimum(t["txn_1h"], 1000).astype("int64"),
        "txn_count_24h": np.minimum(t["txn_24h"], 5000).astype("int64"),
        "amount_vs_avg_30d": np.round(t["amount"] / t["avg_30d"], 4),
        "card_age_days": np.clip(t["card_age"], 0, 20000).astype("int64"),
        "distance_from_home_km": np.round(np.clip(t["home_km"], 0.0, 20000.0), 1),
        "merchant_category": strings(t["category"], CATEGORIES),
        "channel": strings(t["channel"], CHANNELS),
        "cross_border": strings(t["cross"].astype("int8"), ("no", "yes")),
        "jurisdiction": strings(t["jurisdiction"], JURISDICTIONS),
        "is_fraud": t["label"].astype("int64"),
    }, copy=False)  # the arrays are fresh; skipping consolidation saves ~0.4 s at 2M rows


def _relabelled(rng: np.random.Generator, kind: np.ndarray, label: np.ndarray,
                channel: np.ndarray, category: np.ndarray, spend_ratio: np.ndarray,
                card_age: np.ndarray) -> np.ndarray:
    """Scenario concept: the chargeback-rule change's labels for the same transactions."""
    usual = spend_ratio / _SPEND_MULT[category]  # this payment against its category's ticket
    friendly = ((kind == _LEGIT) & (channel == _ECOMMERCE) & (usual > _FRIENDLY_SPEND)
                & np.isin(category, [CATEGORIES.index(c) for c in _FRIENDLY_CATEGORIES])
                & (card_age < _FRIENDLY_CARD_AGE))
    disputed = friendly & (rng.random(label.size) < _FRIENDLY_RATE)
    return (label & (kind != _TESTING)) | disputed


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
    hour[i] = evening[pick(rng, _HOUR_P[evening], i.size)]
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
