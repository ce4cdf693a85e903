"""The statistics, each equal to its scipy counterpart on the same values.

Numeric inputs are sorted, finite and non-empty (``ks_2samp_sorted``, ``wasserstein_sorted``,
``decile_counts``); count inputs are aligned int64 counts per category with a positive total on
each side. Working from sorted arrays makes a daily check cost about one sort of each current
numeric column plus linear passes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial import distance

from ctpipe.drift.columns import run_bounds

PSI_BINS = 10
"""Numeric PSI (and numeric Jensen-Shannon) bins: reference deciles."""

# scipy's ks_2samp(method="auto") is exact up to this sample size and asymptotic above it.
_KS_EXACT_MAX_N = 10_000

_BLOCK = 8192  # elements per block in the linear passes (fits L1/L2 with its temporaries)


def ks_2samp_sorted(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample KS statistic and p-value, as ``scipy.stats.ks_2samp`` (method auto).

    Both inputs sorted, finite and non-empty. Small samples go to scipy itself (its exact
    p-value also rounds the statistic to the lattice of the two sample sizes); large ones get the
    statistic from one searchsorted of the smaller sample's distinct values into the larger one,
    then scipy's asymptotic distribution exactly as ``ks_2samp`` calls it.
    """
    n1, n2 = ref.size, cur.size
    if max(n1, n2) <= _KS_EXACT_MAX_N:
        result = stats.ks_2samp(ref, cur, method="auto")
        return float(result.statistic), float(result.pvalue)
    big, small = (ref, cur) if n1 >= n2 else (cur, ref)
    d = _ks_statistic(big, small)
    # Same arithmetic as scipy's asymptotic branch (m the larger size).
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    p = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))
    return d, p


def ks_statistic(ref: np.ndarray, cur: np.ndarray) -> float:
    """``ks_2samp_sorted``'s statistic without the p-value (same inputs; equal up to the last
    bit, which the order of one subtraction decides): for a caller that compares distances
    only, the exact p-value of small samples is wasted work."""
    big, small = (ref, cur) if ref.size >= cur.size else (cur, ref)
    return _ks_statistic(big, small)


def _ks_statistic(big: np.ndarray, small: np.ndarray) -> float:
    """sup |F_big - F_small| over the data, bit-identical to scipy's ECDF differences.

    F_small - F_big only rises where ``small`` jumps, so its maximum sits at the end of a run of
    equal ``small`` values; F_big - F_small only rises where ``big`` jumps, so its maximum sits
    just below the start of a run of ``small`` (or is 0). Each candidate is the same pair of
    counts scipy evaluates at some data point, divided the same way.
    """
    nb, ns = big.size, small.size
    starts, ends = run_bounds(small)
    small_ahead, big_ahead = -math.inf, 0.0
    for lo in range(0, ends.size, _BLOCK):
        block_starts, block_ends = starts[lo:lo + _BLOCK], ends[lo:lo + _BLOCK]
        distinct = small[block_ends]
        # Search only the stretch of `big` this block can land in: cache-friendly, ~1.5x faster.
        left = int(np.searchsorted(big, distinct[0], side="left"))
        right = int(np.searchsorted(big, distinct[-1], side="right"))
        window = big[left:right]
        upto = np.searchsorted(window, distinct, side="right") + left  # count of big <= value
        below = upto.copy()  # count of big < value; differs only where the value is in both
        tie = upto > left
        tie[tie] = big[upto[tie] - 1] == distinct[tie]
        if tie.any():
            below[tie] = np.searchsorted(window, distinct[tie], side="left") + left
        small_ahead = max(small_ahead, float(np.max((block_ends + 1) / ns - upto / nb)))
        big_ahead = max(big_ahead, float(np.max(below / nb - block_starts / ns)))
    return max(small_ahead, big_ahead)


def wasserstein_sorted(u: np.ndarray, v: np.ndarray) -> float:
    """``scipy.stats.wasserstein_distance(u, v)`` for sorted, finite, non-empty samples.

    The same integral of |U - V|, sliced by probability instead of by value:
    W = integral over t in (0, 1) of |Q_u(t) - Q_v(t)|. The quantile functions are step
    functions with breaks at i/n1 and j/n2, so on an integer grid of lcm(n1, n2) each piece, its
    length and both sample indices follow from integer arithmetic: no merge of the two value
    arrays is needed, only one linear pass over the larger sample, in cache-sized blocks.
    """
    n1, n2 = u.size, v.size
    if n1 == n2:
        # Blocks with one reused buffer: no full-size temporaries (no page faults), one pass.
        total = 0.0
        buf = np.empty(min(n1, _BLOCK), dtype=np.float64)
        for lo in range(0, n1, _BLOCK):
            diff = buf[:min(_BLOCK, n1 - lo)]
            np.subtract(u[lo:lo + _BLOCK], v[lo:lo + _BLOCK], out=diff)
            np.abs(diff, out=diff)
            total += float(diff.sum())
        return total / n1
    if n1 < n2:  # the distance is symmetric: let u be the larger sample
        u, v, n1, n2 = v, u, n2, n1
    g = math.gcd(n1, n2)
    a, b = n2 // g, n1 // g  # u breaks at i*a, v breaks at j*b, on a grid of length n1*a; a < b
    # u's piece i, [i*a, (i+1)*a), is shorter than any v piece, so it meets at most two: v[q]
    # (q = floor(i*a/b)) up to the next v break (q+1)*b or its own end, then v[q+1] for the
    # rest. When there is a rest, piece i+1 starts in v[q+1]'s piece, so v[q+1] is simply the
    # next element of v[q] gathered for i+1: one gather per block.
    # Grid positions and quotients are exact in float64 below 2**53 (then floor(x / b) is
    # x // b); beyond that, integer arithmetic.
    exact_float = (n1 + 1) * a + b < 2**53
    steps = np.arange(min(n1, _BLOCK) + 1, dtype=np.float64 if exact_float else np.int64) * a
    total = 0.0
    for lo in range(0, n1, _BLOCK):
        m = min(_BLOCK, n1 - lo)
        start = steps[:m + 1] + lo * a  # piece starts for i = lo .. lo + m
        if exact_float:
            quotient = start / b
            np.floor(quotient, out=quotient)
            q = quotient.astype(np.intp)
            first = quotient[:m]
            first *= b
            first += b
            first -= start[:m]  # length of piece i inside v[q]: (q+1)*b - i*a, capped at a
            np.minimum(first, a, out=first)
        else:
            q = start // b
            inside = q[:m] * b
            inside += b
            inside -= start[:m]
            first = np.minimum(inside, a).astype(np.float64)
        if lo + m == n1:
            q[m] = n2 - 1  # i = n1 is past the end (its v index is used with weight 0)
        w = v[q]
        ub = u[lo:lo + m]
        gap = np.subtract(ub, w[:m])
        np.abs(gap, out=gap)
        total += float(np.dot(first, gap))
        np.subtract(ub, w[1:], out=gap)
        np.abs(gap, out=gap)
        np.subtract(a, first, out=first)
        total += float(np.dot(first, gap))
    return total / (n1 * a)


def chisquare_counts(f_ref: np.ndarray, f_cur: np.ndarray) -> tuple[float, float, str]:
    """Evidently's chi-square: current counts vs reference shares scaled to the current size."""
    if f_ref.size <= 1:
        # One category on both sides: identical distributions; scipy would give p = NaN (0 dof).
        return 0.0, 1.0, "single category on both sides"
    expected = f_ref * (f_cur.sum() / f_ref.sum())
    with np.errstate(divide="ignore", invalid="ignore"):  # unseen category: inf, p = 0
        result = stats.chisquare(f_cur, expected)
    return float(result.statistic), float(result.pvalue), ""


def jensenshannon_counts(f_ref: np.ndarray, f_cur: np.ndarray) -> float:
    # Evidently passes shares without filling zeros and base=None (natural log); so do we.
    return float(distance.jensenshannon(f_ref / f_ref.sum(), f_cur / f_cur.sum()))


def psi_counts(f_ref: np.ndarray, f_cur: np.ndarray) -> float:
    """PSI = sum (r - c) * ln(r / c) over shares, with Evidently's filling of empty bins."""
    r = _fill_zeros(f_ref / f_ref.sum())
    c = _fill_zeros(f_cur / f_cur.sum())
    return float(np.sum((r - c) * np.log(r / c)))


def _fill_zeros(shares: np.ndarray) -> np.ndarray:
    # As Evidently: empty bins get 1e-4, or a millionth of the smallest share when that is
    # already below 1e-4 (so an empty bin never outweighs an occupied one).
    smallest = shares[shares > 0].min()
    eps = smallest / 1e6 if smallest <= 1e-4 else 1e-4
    return np.where(shares == 0, eps, shares)


def decile_counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts in bins cut at the reference deciles: (-inf, e1], (e1, e2], ..., (ek, inf).

    Edges are reference values (the empirical quantile, smallest x with F(x) >= k/10, found
    with exact integer arithmetic): interpolated edges would invent empty bins between tied
    values. Right-closed, so each bin holds at least a tenth of the reference where ties allow;
    repeated edges collapse.
    """
    n = ref.size
    k = np.arange(1, PSI_BINS, dtype=np.int64)
    edges = np.unique(ref[(k * n + PSI_BINS - 1) // PSI_BINS - 1])  # ceil(k n / 10) - 1

    def counts(sorted_values: np.ndarray) -> np.ndarray:
        upto = np.searchsorted(sorted_values, edges, side="right")
        return np.diff(np.concatenate(([0], upto, [sorted_values.size])))

    return counts(ref), counts(cur)
