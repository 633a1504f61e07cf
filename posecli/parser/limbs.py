"""Limb candidates: PAF line integrals over all candidate pairs, then greedy matching per limb.

L limbs; for limb l = (a, b) every pair (candidate of part a, candidate of part b) is a
candidate limb. All pairs of all limbs are scored together with array operations (no
per-limb loop): T pairs x S samples along each segment read from the PAF (Hp, Wp grid,
factor fp over the map grid).

Cost. Most pairs join parts of different people and fail the "enough samples above
threshold" criterion. They are rejected in two exact screens before the full line
integral: first a one-byte lookup per sample in the field's *support* (cells where any
bilinear corner has a field longer than the threshold: outside it no direction can pass),
then the field itself at a few samples. Only the survivors (about the true limbs) get all
S samples, so the work per pair is a few operations on a handful of values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ._scratch import scratch
from .config import ParserConfig
from .peaks import Peaks, input_to_grid

# Candidate pairs closer than this (input pixels) are not limbs.
_MIN_LENGTH = 1e-6
# Samples looked up in the support mask, then in the field, before the full integral.
_SUPPORT_SAMPLES = 4
_FIELD_SAMPLES = 3
# Each screen only pays off for at least this many pairs (below, its fixed cost wins).
_SUPPORT_SCREEN_MIN = 64
_FIELD_SCREEN_MIN = 512
# The support mask keeps cells whose field is longer than the threshold minus this, so
# float32 rounding in the dot products can never make it reject a passing sample.
_SUPPORT_SLACK = 1e-4
# Pairs scored together (their (S, T) temporaries stay well below 128 KiB, where large
# allocations would go to fresh pages).
_BLOCK = 3072


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


@dataclass(frozen=True)
class LimbFields:
    """The L limb fields on an (Hp, Wp) grid as flattened (L, Hp, Wp) float32 planes ``x``,
    ``y``, and their ``support``: (L, Hp, Wp) uint8, 1 where a sample read from cell (v, u)
    may pass (a limb's plane starts at l Hp Wp, so (l, v, u) is l Hp Wp + v Wp + u)."""

    x: np.ndarray
    y: np.ndarray
    support: np.ndarray
    shape: tuple[int, int, int]
    mode: str


def limb_fields(x: np.ndarray, y: np.ndarray, threshold: float, mode: str) -> LimbFields:
    """Fields and support from (L, Hp, Wp) float32 x and y components (C-contiguous).

    ``mode``: "bilinear" (support: any of the cell's 2x2 block, the corners a bilinear read
    mixes) or "nearest" (the cell itself). A sample can pass only where the field is longer
    than the threshold, so the support is an exact screen.
    """
    nl, hp, wp = x.shape
    norm2 = np.multiply(x, x, out=scratch("paf_norm2", x.shape, np.float32))
    tmp = np.multiply(y, y, out=scratch("paf_tmp", x.shape, np.float32))
    norm2 += tmp
    limit = max(threshold - _SUPPORT_SLACK, 0.0)
    strong = (norm2 > limit * limit if threshold > _SUPPORT_SLACK else norm2 >= 0).view(np.uint8)
    if mode == "bilinear" and strong.size:
        # Max over (v..v+1, u..u+1) on the stacked planes; at a plane's last row it also
        # sees the next plane's first row, which only widens the support (still exact).
        strong = cv2.dilate(strong.reshape(nl * hp, wp), _FORWARD_2X2, anchor=(0, 0),
                            borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return LimbFields(x.reshape(-1), y.reshape(-1), strong.reshape(-1), (hp, wp, nl), mode)


_FORWARD_2X2 = np.ones((2, 2), np.uint8)


def all_pairs(peaks: Peaks, limbs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T,) limb, a, b: every pair of candidates of each limb's two parts."""
    n = np.diff(peaks.start)
    na, nb = n[limbs[:, 0]], n[limbs[:, 1]]
    npairs = na * nb
    limb = np.repeat(np.arange(len(limbs)), npairs)
    # Position of each pair within its limb's na x nb block.
    first = np.cumsum(npairs) - npairs
    p = np.arange(limb.size) - np.repeat(first, npairs)
    ia, ib = np.divmod(p, np.repeat(np.maximum(nb, 1), npairs))
    a = ia + np.repeat(peaks.start[limbs[:, 0]], npairs)
    b = ib + np.repeat(peaks.start[limbs[:, 1]], npairs)
    return limb, a, b


def _sample_counts(d: np.ndarray, config: ParserConfig) -> np.ndarray | int:
    """Samples per segment for (T, 2) segment vectors in input pixels (an int when fixed)."""
    if config.paf_samples > 0:
        return config.paf_samples
    # OpenPose: clip(round(sqrt(gain * max(|dx|, |dy|))), min, max).
    n = np.rint(np.sqrt(config.paf_samples_gain * np.abs(d).max(axis=1, initial=0.0)))
    return np.clip(n.astype(np.intp), config.paf_samples_min, config.paf_samples_max)


@lru_cache(maxsize=64)
def _fixed_fractions(n: int, include_end: bool, pick: tuple[int, ...] | None) -> np.ndarray:
    """(S, 1) float32 fractions of samples ``pick`` (default: all) of n along a segment."""
    s = np.arange(n) if pick is None else np.asarray(pick)
    t = s / n if not include_end else (s / (n - 1) if n > 1 else np.full(s.shape, 0.5))
    return t.astype(np.float32)[:, None]


def _fractions(s: np.ndarray, n: np.ndarray, include_end: bool) -> np.ndarray:
    """(S, T) float32 position in [0, 1] of samples s (S, T) of n (T,) along a segment."""
    if not include_end:
        return (s / n).astype(np.float32)
    # A single sample sits mid-segment.
    return np.where(n > 1, s / np.maximum(n - 1, 1), 0.5).astype(np.float32)


def _spread(n, m: int, include_end: bool) -> np.ndarray:
    """(m, T or 1) fractions of m samples spread evenly over the n of each segment."""
    j = np.arange(1, m + 1)[:, None]
    if np.ndim(n) == 0:
        n = int(n)
        return _fixed_fractions(n, include_end, tuple(int(x) for x in (j[:, 0] * n) // (m + 1)))
    return _fractions((j * n) // (m + 1), n, include_end)


@dataclass
class _Segments:
    """T segments on the PAF grid, as contiguous (T,) arrays: limb, start (x, y), vector."""

    limb: np.ndarray
    x: np.ndarray
    y: np.ndarray
    dx: np.ndarray
    dy: np.ndarray

    def take(self, rows: np.ndarray) -> "_Segments":
        return _Segments(self.limb[rows], self.x[rows], self.y[rows], self.dx[rows], self.dy[rows])

    def points(self, fields: LimbFields, t: np.ndarray):
        """(S, T) float32 grid coordinates u, v of samples t (S, T or 1), clipped to the grid."""
        hp, wp = fields.shape[:2]
        u = self.dx * t
        u += self.x
        v = self.dy * t
        v += self.y
        np.minimum(np.maximum(u, 0, out=u), wp - 1, out=u)
        np.minimum(np.maximum(v, 0, out=v), hp - 1, out=v)
        return u, v

    def supported(self, fields: LimbFields, t: np.ndarray) -> np.ndarray:
        """(S, T) bool: the sample may pass (False: its dot product is surely <= threshold)."""
        hp, wp, nl = fields.shape
        u, v = self.points(fields, t)
        if fields.mode == "nearest":
            np.rint(u, out=u), np.rint(v, out=v)
        else:
            np.floor(u, out=u), np.floor(v, out=v)
        v *= wp
        v += u
        cell = v.astype(np.intp)
        cell += self.limb * (hp * wp)
        return np.take(fields.support, cell).view(bool)

    def alignment(self, fields: LimbFields, t: np.ndarray) -> np.ndarray:
        """(S, T) float32 field . unit direction at fractions t along the segments."""
        hp, wp, nl = fields.shape
        length = np.hypot(self.dx, self.dy)
        np.maximum(length, _MIN_LENGTH, out=length)
        ux, uy = self.dx / length, self.dy / length
        u, v = self.points(fields, t)
        base = self.limb * (hp * wp)
        if fields.mode == "nearest":
            np.rint(u, out=u), np.rint(v, out=v)
            v *= wp
            v += u
            i = v.astype(np.intp)
            i += base
            return np.take(fields.x, i) * ux + np.take(fields.y, i) * uy
        # Bilinear: the dot product at the 2x2 corners, then mixed (float32 throughout).
        u0 = np.minimum(np.floor(u), max(wp - 2, 0))
        v0 = np.minimum(np.floor(v), max(hp - 2, 0))
        u -= u0  # now the weights
        v -= v0
        du, dv = (1 if wp > 1 else 0), (wp if hp > 1 else 0)
        v0 *= wp
        v0 += u0
        i = v0.astype(np.intp)
        i += base

        def corner(offset):
            j = i + offset if offset else i
            d = np.take(fields.x, j)
            d *= ux
            d += np.take(fields.y, j) * uy
            return d

        top = corner(0)
        top += (corner(du) - top) * u
        bottom = corner(dv)
        bottom += (corner(dv + du) - bottom) * u
        bottom -= top
        bottom *= v
        top += bottom
        return top


def score_pairs(
    peaks: Peaks,
    fields: LimbFields,
    limbs: np.ndarray,
    stride: int,
    factor: int,
    input_height: float,
    config: ParserConfig,
) -> LimbPairs:
    """Score every candidate pair of every limb at once.

    ``fields``: the L limb fields on a grid ``factor`` times the map grid (see
    :func:`limb_fields`); ``limbs``: (L, 2) part pairs; ``input_height``: H of the length
    prior, in input pixels. Pairs that cannot pass the criterion are dropped early (exactly:
    they would fail it), so only the T' surviving pairs come back, with ``valid`` set where
    they pass it. Pairs go in blocks of at most ``_BLOCK`` so that temporaries stay small.
    """
    limb, a, b = all_pairs(peaks, limbs)
    # Segment ends on the PAF grid (float32 is plenty here).
    g = input_to_grid(peaks.xy, stride, factor).astype(np.float32)
    gx, gy = np.ascontiguousarray(g[:, 0]), np.ascontiguousarray(g[:, 1])
    fixed = config.paf_samples > 0
    n_all = config.paf_samples if fixed else _sample_counts(peaks.xy[b] - peaks.xy[a], config)
    blocks = [
        _score_block(limb[lo:hi], a[lo:hi], b[lo:hi], gx, gy,
                     n_all if fixed else n_all[lo:hi], fields, stride / factor, input_height, config)
        for lo, hi in zip(range(0, limb.size, _BLOCK), range(_BLOCK, limb.size + _BLOCK, _BLOCK))
    ]
    if len(blocks) == 1:
        return blocks[0]
    if not blocks:
        empty = np.zeros(0, dtype=np.intp)
        return LimbPairs(empty, empty, empty, np.zeros(0), np.zeros(0), np.zeros(0, bool))
    return LimbPairs(*(np.concatenate(parts) for parts in zip(*(
        (p.limb, p.a, p.b, p.score, p.length, p.valid) for p in blocks))))



def _score_block(limb, a, b, gx, gy, n, fields, px_per_cell, input_height, config) -> LimbPairs:
    """:func:`score_pairs` for one block of pairs (``n``: samples, int or (T,))."""
    fixed = np.ndim(n) == 0
    seg = _Segments(limb, gx[a], gy[a], gx[b] - gx[a], gy[b] - gy[a])
    # 1. Criterion: strictly more than min_above_fraction * n samples above threshold,
    #    i.e. at most max_fail samples at or below it.
    max_fail = n - np.floor(config.min_above_fraction * n).astype(np.intp) - 1
    m_fail = int(np.min(max_fail)) if limb.size else 0
    n_max = int(np.max(n)) if limb.size else 0
    # 2. Exact screens on a few spread samples: the support mask, then the field; drop
    #    pairs with more than max_fail failures among them.
    for m, test in ((_SUPPORT_SAMPLES, "support"), (_FIELD_SAMPLES, "field")):
        m = min(max(m, m_fail + 1), n_max)
        small = seg.limb.size < (_FIELD_SCREEN_MIN if test == "field" else _SUPPORT_SCREEN_MIN)
        if small or m <= m_fail or (test == "field" and m >= n_max):
            continue
        t = _spread(n, m, config.paf_include_end)
        if test == "support":
            fails = m - seg.supported(fields, t).sum(axis=0)
        else:
            fails = (seg.alignment(fields, t) <= config.paf_threshold).sum(axis=0)
        rows = np.flatnonzero(fails <= max_fail)
        seg, a, b = seg.take(rows), a[rows], b[rows]
        if not fixed:
            n, max_fail = n[rows], max_fail[rows]
    # 3. All samples of the surviving pairs.
    if fixed:
        dot = seg.alignment(fields, _fixed_fractions(n, config.paf_include_end, None))
        above = dot > config.paf_threshold
    else:
        s_all = np.arange(int(np.max(n, initial=1)))[:, None]
        used = s_all < n
        dot = np.where(used, seg.alignment(fields, _fractions(s_all, n, config.paf_include_end)), 0)
        above = used & (dot > config.paf_threshold)
    n_above = above.sum(axis=0)
    # 4. Score: mean of all samples or of those above (+ length prior).
    length = np.hypot(seg.dx, seg.dy).astype(np.float64) * px_per_cell
    if config.paf_score == "mean":
        score = dot.sum(axis=0, dtype=np.float64) / n
    else:
        score = np.where(above, dot, 0).sum(axis=0, dtype=np.float64) / np.maximum(n_above, 1)
    if config.length_prior > 0:
        prior = config.length_prior * input_height / np.maximum(length, _MIN_LENGTH) - 1
        score += np.minimum(prior, 0.0)
    valid = (
        (length > _MIN_LENGTH)
        & (n - n_above <= max_fail)
        & (score > config.min_limb_score)
        & np.isfinite(score)
    )
    return LimbPairs(seg.limb, a, b, score, length, valid)


def match_greedy(pairs: LimbPairs, peaks: Peaks) -> Matches:
    """Greedy bipartite matching per limb: strongest pairs first, each candidate used once.

    Ties go to the shorter limb. One pass over the valid pairs in that order (all limbs
    together: a candidate is "used" per limb).
    """
    empty = np.zeros(0, dtype=np.intp)
    v = np.flatnonzero(pairs.valid)
    if v.size == 0:
        return Matches(empty, empty, empty, np.zeros(0))
    # Valid pairs best first: score, then shortness.
    order = v[np.lexsort((pairs.length[v], -pairs.score[v]))]
    limb, a, b = pairs.limb[order], pairs.a[order], pairs.b[order]
    # (limb, candidate) keys; a limb joins two different parts, so its ends never collide.
    m = peaks.count
    used: set[int] = set()
    taken = []
    for i, (ka, kb) in enumerate(zip((limb * m + a).tolist(), (limb * m + b).tolist())):
        if ka not in used and kb not in used:
            used.add(ka)
            used.add(kb)
            taken.append(i)
    sel = np.asarray(taken, dtype=np.intp)
    # Grouped by limb in skeleton order, strongest first (the stable sort keeps rank order).
    sel = sel[np.argsort(limb[sel], kind="stable")]
    return Matches(limb[sel], a[sel], b[sel], pairs.score[order[sel]])
