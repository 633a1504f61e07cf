"""Part candidates: heatmap peaks by non-maximum suppression, refined to sub-pixel positions.

K parts, H x W map grid, stride s. Peaks are searched on the *analysis grid*: the maps
upsampled by f (``config.upsample_factor(s)``, 1 = the map grid). Analysis pixel u has its
centre at input pixel ``x = (u + 0.5) * s / f - 0.5`` (:func:`posecli.maps.rescale`).

Everything runs on (H, W, K) stacks (one cv2 call per step for all parts); candidates are
found on the flattened stack and only they are touched afterwards (plateau test,
refinement), so the cost beyond the cv2 filters grows with the number of peaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..maps import rescale
from ._scratch import scratch
from .config import ParserConfig

# Floor of heatmap values before taking logs (log-domain refinements).
_LOG_FLOOR = 1e-12
# The log-domain fits also estimate the peak's height between pixels; it may raise the
# pixel's value by at most this factor (a sharp, well-sampled Gaussian needs < 1.5).
_MAX_HEIGHT_GAIN = 2.0
# cv2 handles at most this many channels per call.
_CV_MAX_CHANNELS = 512


@dataclass(frozen=True)
class Peaks:
    """M part candidates sorted by part.

    ``xy``: (M, 2) float64 input pixels; ``score``: (M,) float64 heatmap value at the peak;
    ``part``: (M,) int part index; ``start``: (K + 1,) candidates of part k are
    ``start[k]:start[k + 1]``.
    """

    xy: np.ndarray
    score: np.ndarray
    part: np.ndarray
    start: np.ndarray

    @property
    def count(self) -> int:
        return int(self.part.size)


def analysis_to_input(u: np.ndarray, stride: int, factor: int) -> np.ndarray:
    """Analysis-grid coordinates (factor f over the map grid) to input pixels."""
    return rescale(u, stride / factor)


def input_to_grid(x: np.ndarray, stride: int, factor: int) -> np.ndarray:
    """Input pixels to coordinates on a grid upsampled by ``factor`` from the map grid."""
    return rescale(x, factor / stride)


def cv_hwc(maps_hwc: np.ndarray, op, name: str | None = None) -> np.ndarray:
    """Apply a cv2 image op to an (H, W, C) float32 stack, keeping the channel axis.

    ``op(src, dst)``; with a ``name`` the result goes to that scratch buffer (same shape)."""
    c = maps_hwc.shape[2]
    if c <= _CV_MAX_CHANNELS:
        src = maps_hwc if maps_hwc.flags.c_contiguous else np.ascontiguousarray(maps_hwc)
        dst = scratch(name, src.shape, src.dtype) if name and c > 1 else None
        out = op(src, dst)
        return out.reshape(out.shape[0], out.shape[1], c)
    chunks = [cv_hwc(maps_hwc[:, :, lo : lo + _CV_MAX_CHANNELS], op) for lo in range(0, c, _CV_MAX_CHANNELS)]
    return np.concatenate(chunks, axis=2)


def upsample_hwc(maps_hwc: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, C) -> (H f, W f, C), bicubic with half-pixel alignment."""
    if factor == 1:
        return maps_hwc
    h, w = maps_hwc.shape[:2]
    size = (w * factor, h * factor)
    return cv_hwc(maps_hwc, lambda m, dst: cv2.resize(m, size, interpolation=cv2.INTER_CUBIC))


@lru_cache(maxsize=16)
def _footprint(radius: int, connectivity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NMS footprint (uint8 kernel) and the (row, col) offsets of its pixels before the
    centre in raster order (where an equal value suppresses the centre)."""
    d = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    if radius == 1 and connectivity == 8:
        foot = np.ones_like(dy, dtype=bool)
    else:
        foot = dy**2 + dx**2 <= radius**2
    before = foot & (dy * (2 * radius + 1) + dx < 0)
    return foot.astype(np.uint8), dy[before], dx[before]


def _local_maxima(smooth: np.ndarray, config: ParserConfig) -> np.ndarray:
    """Flat indices into the (H, W, K) ``smooth`` of its peaks, ascending.

    A peak is above threshold and the maximum of its footprint; on a plateau only pixels
    with no equal pixel before them (raster order) survive.
    """
    foot, by, bx = _footprint(config.nms_radius, config.nms_connectivity)
    dilated = cv_hwc(smooth, lambda m, dst: cv2.dilate(m, foot, dst=dst), "dilated")
    flat = smooth.reshape(-1)
    idx = np.flatnonzero((smooth > config.peak_threshold) & (smooth >= dilated))
    if idx.size == 0 or by.size == 0:
        return idx
    # Plateaus: drop candidates with an equal neighbour before them (rare, sparse test).
    h, w, k = smooth.shape
    pix, part = np.divmod(idx, k)
    r, c = np.divmod(pix, w)
    rr, cc = r[:, None] + by, c[:, None] + bx
    inside = (rr >= 0) & (cc >= 0) & (cc < w)  # rows before are never below the map
    nb = np.take(flat, (np.clip(rr, 0, h - 1) * w + np.clip(cc, 0, w - 1)) * k + part[:, None])
    return idx[~(inside & (nb >= flat[idx][:, None])).any(axis=1)]


def _neighbourhood(smooth: np.ndarray, r, c, part, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2R+1, 2R+1) float64 values around each peak (edge-replicated) and inside mask."""
    h, w, k = smooth.shape
    d = np.arange(-radius, radius + 1)
    rr, cc = r[:, None] + d, c[:, None] + d  # (M, 2R+1)
    inside = ((rr >= 0) & (rr < h))[:, :, None] & ((cc >= 0) & (cc < w))[:, None, :]
    rows = np.clip(rr, 0, h - 1) * (w * k)
    cols = np.clip(cc, 0, w - 1) * k + part[:, None]
    vals = np.take(smooth.reshape(-1), rows[:, :, None] + cols[:, None, :])
    return vals.astype(np.float64), inside


def _refine_log_quadratic(v: np.ndarray, inside: np.ndarray, full_hessian: bool):
    """(M,) row and column offsets and height gain of a quadratic fit to log values.

    ``v``: (M, 3, 3) values around each peak. Per axis, a parabola through the peak and its
    two neighbours; with ``full_hessian`` the 2-D Newton step -H^-1 g with the mixed
    derivative included (exact for any Gaussian, tilted or elongated; DARK, Zhang et al.
    2020). Where a neighbour is off the map, the other axis' curvature stands in
    (isotropic peak) and the mixed term is 0. The gain is the fitted peak height over
    the pixel's value.
    """
    lv = np.log(np.maximum(v, _LOG_FLOOR))
    l0 = lv[:, 1, 1]
    # Central differences (interior peaks: all that is needed).
    gx = (lv[:, 1, 2] - lv[:, 1, 0]) * 0.5
    gy = (lv[:, 2, 1] - lv[:, 0, 1]) * 0.5
    kxx = lv[:, 1, 2] - 2 * l0 + lv[:, 1, 0]
    kyy = lv[:, 2, 1] - 2 * l0 + lv[:, 0, 1]
    kxy = (lv[:, 2, 2] - lv[:, 2, 0] - lv[:, 0, 2] + lv[:, 0, 0]) * 0.25 if full_hessian else None
    edge = np.flatnonzero(~inside[:, 1, :].all(axis=1) | ~inside[:, :, 1].all(axis=1))
    if edge.size:
        gx[edge], gy[edge], kxx[edge], kyy[edge] = _edge_derivatives(lv[edge], inside[edge])
        if kxy is not None:
            kxy[edge] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        okx, oky = (kxx < 0) & np.isfinite(gx), (kyy < 0) & np.isfinite(gy)
        dx = np.where(okx, -gx / kxx, 0.0)
        dy = np.where(oky, -gy / kyy, 0.0)
        if kxy is not None:
            # Negative definite Hessian: the Newton step instead.
            det = kxx * kyy - kxy * kxy
            ok2 = okx & oky & (det > 0)
            dx = np.where(ok2, (kxy * gy - kyy * gx) / det, dx)
            dy = np.where(ok2, (kxy * gx - kxx * gy) / det, dy)
            kxy = np.where(ok2, kxy, 0.0)
    # A pixel that is a local maximum lies within half a pixel of a separable peak; a
    # tilted one may be up to a pixel away along an axis.
    lim = 0.5 if kxy is None else np.where(ok2, 1.0, 0.5)
    dx, dy = np.clip(dx, -lim, lim), np.clip(dy, -lim, lim)
    # Height of the vertex above the pixel, -d^T H d / 2 (H's terms where they were used).
    log_gain = np.where(okx, kxx * dx * dx, 0.0) + np.where(oky, kyy * dy * dy, 0.0)
    if kxy is not None:
        log_gain += 2 * kxy * dx * dy
    gain = np.exp(np.clip(-0.5 * log_gain, 0.0, np.log(_MAX_HEIGHT_GAIN)))
    return dy, dx, gain


def _edge_derivatives(lv: np.ndarray, inside: np.ndarray):
    """(gx, gy, kxx, kyy) for peaks with a neighbour off the map (NaN where unknown).

    An axis with both neighbours: central differences; with one: the other axis'
    curvature stands in and the slope comes from the one neighbour; with none: NaN.
    """
    l0 = lv[:, 1, 1]
    sides = {"x": (lv[:, 1, 0], lv[:, 1, 2], inside[:, 1, 0], inside[:, 1, 2]),
             "y": (lv[:, 0, 1], lv[:, 2, 1], inside[:, 0, 1], inside[:, 2, 1])}
    curv = {ax: np.where(lo_in & hi_in, lo - 2 * l0 + hi, np.nan)
            for ax, (lo, hi, lo_in, hi_in) in sides.items()}
    out = {}
    for ax, other in (("x", "y"), ("y", "x")):
        lo, hi, lo_in, hi_in = sides[ax]
        k = np.where(np.isnan(curv[ax]), curv[other], curv[ax])
        g = np.where(lo_in & hi_in, (hi - lo) / 2, np.where(hi_in, hi - l0 - k / 2, l0 - lo + k / 2))
        out[ax] = (np.where(lo_in | hi_in, g, np.nan), k)
    return out["x"][0], out["y"][0], out["x"][1], out["y"][1]


def _refine_centroid(v: np.ndarray, inside: np.ndarray):
    """(M,), (M,) offsets to the value-weighted mean of the positive pixels in the window."""
    radius = v.shape[1] // 2
    d = np.arange(-radius, radius + 1)
    wgt = np.where(inside & (v > 0), v, 0.0)
    total = wgt.sum(axis=(1, 2))
    ok = total > 0
    safe = np.where(ok, total, 1.0)
    dy = np.where(ok, wgt.sum(axis=2) @ d / safe, 0.0)
    dx = np.where(ok, wgt.sum(axis=1) @ d / safe, 0.0)
    return dy, dx


def find_peaks(heatmaps_hwc: np.ndarray, stride: int, config: ParserConfig) -> Peaks:
    """Part candidates from (H, W, K) float32 finite heatmaps (channel k = part k)."""
    h, w, k = heatmaps_hwc.shape
    f = config.upsample_factor(stride)
    # 1. Analysis grid: upsample, then smooth for the peak test.
    raw = upsample_hwc(heatmaps_hwc, f)
    smooth = raw
    if config.smooth_sigma > 0:
        sigma = config.smooth_sigma * f / stride
        smooth = cv_hwc(raw, lambda m, dst: cv2.GaussianBlur(m, (0, 0), sigma, dst=dst), "smooth")
    wa, ka = raw.shape[1], raw.shape[2]
    # 2. Non-maximum suppression on the flat stack; candidates sorted by part.
    idx = _local_maxima(smooth, config)
    pix, part = np.divmod(idx, ka)
    order = np.argsort(part, kind="stable")
    idx, pix, part = idx[order], pix[order], part[order]
    r, c = np.divmod(pix, wa)
    score = raw.reshape(-1)[idx].astype(np.float64)
    # 3. Keep the strongest peaks of each part.
    counts = np.bincount(part, minlength=k)
    if counts.size and counts.max() > config.max_peaks:
        keep = _keep_strongest(part, score, k, config.max_peaks)
        part, r, c, score = part[keep], r[keep], c[keep], score[keep]
        counts = np.bincount(part, minlength=k)
    # 4. Sub-pixel refinement on the smoothed map.
    dy = dx = 0.0
    if part.size and config.refine in ("log_quadratic", "log_hessian"):
        v, inside = _neighbourhood(smooth, r, c, part, 1)
        dy, dx, gain = _refine_log_quadratic(v, inside, config.refine == "log_hessian")
        score = score * gain
    elif part.size and config.refine == "centroid":
        dy, dx = _refine_centroid(*_neighbourhood(smooth, r, c, part, config.refine_radius))
    # 5. Input pixels (with the model's offset), clipped to the map's extent.
    xy = np.empty((part.size, 2))
    xy[:, 0] = analysis_to_input(c + dx, stride, f) + config.peak_offset_x
    xy[:, 1] = analysis_to_input(r + dy, stride, f) + config.peak_offset_y
    np.minimum(np.maximum(xy, 0, out=xy), [w * stride - 1, h * stride - 1], out=xy)
    start = np.zeros(k + 1, dtype=np.intp)
    np.cumsum(counts, out=start[1:])
    return Peaks(xy, score, part.astype(np.intp), start)


def _keep_strongest(part: np.ndarray, score: np.ndarray, k: int, limit: int) -> np.ndarray:
    """Indices (sorted) of the ``limit`` strongest candidates of each part."""
    order = np.lexsort((-score, part))
    first = np.searchsorted(part[order], np.arange(k))
    rank = np.arange(order.size) - first[part[order]]
    return np.sort(order[rank < limit])
