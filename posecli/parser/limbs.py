"""Limb candidates: PAF line integrals over all candidate pairs, then greedy matching per limb.

L limbs; for limb l = (a, b) every pair (candidate of part a, candidate of part b) is a
candidate limb. All pairs of all limbs are scored in one vectorised pass: T pairs x S
samples along each segment read from the PAF (Hp, Wp grid, factor fp over the map grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import ParserConfig
from .peaks import Peaks, input_to_grid

# Candidate pairs closer than this (input pixels) are not limbs.
_MIN_LENGTH = 1e-6


@dataclass(frozen=True)
class LimbPairs:
    """T candidate pairs: ``limb``, ``a``, ``b`` (global candidate indices), ``score``,
    ``length`` (input pixels), ``valid``."""

    limb: np.ndarray
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray
    length: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class Matches:
    """P matched pairs, grouped by limb in skeleton order, strongest first within a limb."""

    limb: np.ndarray
    a: np.ndarray
    b: np.ndarray
    score: np.ndarray


def all_pairs(peaks: Peaks, limbs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T,) limb, a, b: every pair of candidates of each limb's two parts."""
    n = np.diff(peaks.start)
    na, nb = n[limbs[:, 0]], n[limbs[:, 1]]
    npairs = na * nb
    limb = np.repeat(np.arange(len(limbs)), npairs)
    # Position of each pair within its limb's na x nb block.
    p = np.arange(limb.size) - (np.cumsum(npairs) - npairs)[limb]
    nbl = np.maximum(nb[limb], 1)
    a = peaks.start[limbs[limb, 0]] + p // nbl
    b = peaks.start[limbs[limb, 1]] + p % nbl
    return limb, a, b


def _sample_counts(d: np.ndarray, config: ParserConfig) -> np.ndarray:
    """(T,) samples per segment for (T, 2) segment vectors in input pixels."""
    if config.paf_samples > 0:
        return np.full(len(d), config.paf_samples)
    # OpenPose: clip(round(sqrt(gain * max(|dx|, |dy|))), min, max).
    n = np.rint(np.sqrt(config.paf_samples_gain * np.abs(d).max(axis=1, initial=0.0)))
    return np.clip(n.astype(np.intp), config.paf_samples_min, config.paf_samples_max)


def _fractions(s: np.ndarray, n: np.ndarray, include_end: bool) -> np.ndarray:
    """(T, S) position t in [0, 1] of sample s of n along a segment."""
    if not include_end:
        return s / n[:, None]
    # A single sample sits mid-segment.
    return np.where(n[:, None] > 1, s / np.maximum(n - 1, 1)[:, None], 0.5)


def limb_fields(pafs_hwc: np.ndarray, channels: np.ndarray) -> np.ndarray:
    """(Hp, Wp, L) complex64: limb l's field as x + i y, from (Hp, Wp, C) PAFs.

    One gather then reads both components of a limb's vector.
    """
    hp, wp = pafs_hwc.shape[:2]
    pairs = np.ascontiguousarray(pafs_hwc[:, :, channels.reshape(-1)], dtype=np.float32)
    return pairs.view(np.complex64).reshape(hp, wp, len(channels))


def _alignment(fields, limb, xa, d, unit, t, stride, factor, mode) -> np.ndarray:
    """(T, S) field . unit direction at fractions t along segments xa -> xa + d (input px).

    ``fields``: (Hp, Wp, L) complex limb fields; ``limb``: (T,) limb of each pair.
    """
    hp, wp, nl = fields.shape
    flat = fields.reshape(-1)
    # Segment ends on the PAF grid, then the sample points (float32 is plenty here).
    ga = input_to_grid(xa, stride, factor).astype(np.float32)
    gd = (d * (factor / stride)).astype(np.float32)
    t = t.astype(np.float32)
    u = np.clip(ga[:, 0:1] + t * gd[:, 0:1], 0, wp - 1)
    v = np.clip(ga[:, 1:2] + t * gd[:, 1:2], 0, hp - 1)
    lc = limb[:, None]
    if mode == "nearest":
        vec = flat[(np.rint(v).astype(np.intp) * wp + np.rint(u).astype(np.intp)) * nl + lc]
    else:
        u0 = np.minimum(u.astype(np.intp), max(wp - 2, 0))  # u >= 0: truncation is floor
        v0 = np.minimum(v.astype(np.intp), max(hp - 2, 0))
        # float32 weights keep the complex64 arithmetic in single precision (fast).
        fu, fv = u - u0.astype(np.float32), v - v0.astype(np.float32)
        du, dv = (nl if wp > 1 else 0), (wp * nl if hp > 1 else 0)
        i00 = (v0 * wp + u0) * nl + lc
        top = flat[i00] * (1 - fu) + flat[i00 + du] * fu
        bottom = flat[i00 + dv] * (1 - fu) + flat[i00 + dv + du] * fu
        vec = top * (1 - fv) + bottom * fv
    return vec.real * unit[:, 0:1] + vec.imag * unit[:, 1:2]


def score_pairs(
    peaks: Peaks,
    pafs_hwc: np.ndarray,
    limbs: np.ndarray,
    channels: np.ndarray,
    stride: int,
    factor: int,
    input_height: float,
    config: ParserConfig,
) -> LimbPairs:
    """Score every candidate pair of every limb at once.

    ``pafs_hwc``: (Hp, Wp, C) PAFs on a grid ``factor`` times the map grid; ``limbs`` and
    ``channels``: (L, 2) part pairs and their PAF (x, y) channels; ``input_height``: H of
    the length prior, in input pixels. Pairs that cannot pass the criterion are dropped
    early, so only the T' surviving pairs come back.
    """
    limb, a, b = all_pairs(peaks, limbs)
    xa = peaks.xy[a]
    d = peaks.xy[b] - xa
    length = np.hypot(d[:, 0], d[:, 1])
    unit = d / np.maximum(length, _MIN_LENGTH)[:, None]
    n = _sample_counts(d, config)
    fields = limb_fields(pafs_hwc, channels)
    align = dict(stride=stride, factor=factor, mode=config.paf_sampling)
    # 1. Criterion: strictly more than min_above_fraction * n samples above threshold,
    #    i.e. at most max_fail samples at or below it.
    max_fail = n - np.floor(config.min_above_fraction * n).astype(np.intp) - 1
    # 2. Early rejection (exact): m spread-out samples first; drop pairs with more than
    #    max_fail of them failing (most pairs join parts of different people).
    m = 1 + int(max_fail.min()) if limb.size else 0
    if limb.size and m < int(n.max()):
        s = ((np.arange(m)[None, :] + 1) * n[:, None]) // (m + 1)
        t = _fractions(s, n, config.paf_include_end)
        dot = _alignment(fields, limb, xa, d, unit, t, **align)
        keep = np.flatnonzero((dot <= config.paf_threshold).sum(axis=1) <= max_fail)
        limb, a, xa, d, length, unit, n, max_fail = (
            arr[keep] for arr in (limb, a, xa, d, length, unit, n, max_fail)
        )
        b = b[keep]
    # 3. All samples of the surviving pairs.
    s_all = np.arange(int(n.max(initial=1)))[None, :]
    used = s_all < n[:, None]
    t = _fractions(s_all, n, config.paf_include_end)
    dot = np.where(used, _alignment(fields, limb, xa, d, unit, t, **align), 0.0)
    # 4. Score: mean of all samples or of those above (+ length prior).
    above = used & (dot > config.paf_threshold)
    n_above = above.sum(axis=1)
    if config.paf_score == "mean":
        score = dot.sum(axis=1) / n
    else:
        score = np.where(above, dot, 0.0).sum(axis=1) / np.maximum(n_above, 1)
    if config.length_prior > 0:
        prior = config.length_prior * input_height / np.maximum(length, _MIN_LENGTH) - 1
        score = score + np.minimum(prior, 0.0)
    valid = (
        (length > _MIN_LENGTH)
        & (n - n_above <= max_fail)
        & (score > config.min_limb_score)
        & np.isfinite(score)
    )
    return LimbPairs(limb, a, b, score.astype(np.float64), length, valid)


def match_greedy(pairs: LimbPairs, peaks: Peaks, limbs: np.ndarray) -> Matches:
    """Greedy bipartite matching per limb: strongest pairs first, each candidate used once.

    Ties go to the shorter limb. Vectorised over all limbs: repeatedly take every pair that
    is the best of both its row and its column among unused candidates (exactly the pairs
    that greedy in sorted order takes, as the ranks below have no ties).
    """
    num_limbs = len(limbs)
    n = np.diff(peaks.start)
    a_max = int(n[limbs[:, 0]].max(initial=0)) if num_limbs else 0
    b_max = int(n[limbs[:, 1]].max(initial=0)) if num_limbs else 0
    empty = np.zeros(0, dtype=np.intp)
    if not pairs.valid.any():
        return Matches(empty, empty, empty, np.zeros(0))
    # 1. Rank tensor (L, A, B): higher is better (score, then shortness), -1 where no pair.
    v = np.flatnonzero(pairs.valid)
    limb = pairs.limb[v]
    ia = pairs.a[v] - peaks.start[limbs[limb, 0]]
    ib = pairs.b[v] - peaks.start[limbs[limb, 1]]
    rank = np.empty(v.size)
    rank[np.lexsort((-pairs.length[v], pairs.score[v]))] = np.arange(v.size)
    grid = np.full((num_limbs, a_max, b_max), -np.inf)
    grid[limb, ia, ib] = rank
    scores = np.full((num_limbs, a_max, b_max), -np.inf)
    scores[limb, ia, ib] = pairs.score[v]
    taken_l, taken_a, taken_b = [], [], []
    # 2. Rounds of mutual best pairs; their rows and columns leave the tensor.
    while True:
        best_b = grid.argmax(axis=2)  # (L, A)
        best_a = grid.argmax(axis=1)  # (L, B)
        ls, as_ = np.nonzero(np.isfinite(grid.max(axis=2)))
        if ls.size == 0:
            break
        bs = best_b[ls, as_]
        mutual = best_a[ls, bs] == as_
        ls, as_, bs = ls[mutual], as_[mutual], bs[mutual]
        taken_l.append(ls), taken_a.append(as_), taken_b.append(bs)
        grid[ls, as_, :] = -np.inf
        grid[ls, :, bs] = -np.inf
    ls, as_, bs = np.concatenate(taken_l), np.concatenate(taken_a), np.concatenate(taken_b)
    a_glob = peaks.start[limbs[ls, 0]] + as_
    b_glob = peaks.start[limbs[ls, 1]] + bs
    score = scores[ls, as_, bs]
    order = np.lexsort((-score, ls))
    return Matches(ls[order], a_glob[order], b_glob[order], score[order])
