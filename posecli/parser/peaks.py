"""Part candidates: heatmap peaks by non-maximum suppression, refined to sub-pixel positions.

K parts, H x W map grid, stride s. Peaks are searched on the *analysis grid*: the maps
upsampled by f (``config.upsample_factor(s)``, 1 = the map grid). Analysis pixel u has its
centre at input pixel ``x = (u + 0.5) * s / f - 0.5`` (see ``posecli.targets``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import ParserConfig

# Floor of heatmap values before taking logs (log_quadratic refinement).
_LOG_FLOOR = 1e-12
# The log_quadratic fit also estimates the peak's height between pixels; it may raise the
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
    return (u + 0.5) * (stride / factor) - 0.5


def input_to_grid(x: np.ndarray, stride: int, factor: int) -> np.ndarray:
    """Input pixels to coordinates on a grid upsampled by ``factor`` from the map grid."""
    return (x + 0.5) * (factor / stride) - 0.5


def cv_hwc(maps_hwc: np.ndarray, op) -> np.ndarray:
    """Apply a cv2 image op to an (H, W, C) float32 stack, keeping the channel axis."""
    c = maps_hwc.shape[2]
    chunks = []
    for lo in range(0, c, _CV_MAX_CHANNELS):
        part = np.ascontiguousarray(maps_hwc[:, :, lo : lo + _CV_MAX_CHANNELS])
        out = op(part)
        chunks.append(out.reshape(out.shape[0], out.shape[1], part.shape[2]))
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=2)


def upsample_hwc(maps_hwc: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, C) -> (H f, W f, C), bicubic with half-pixel alignment."""
    if factor == 1:
        return maps_hwc
    h, w = maps_hwc.shape[:2]
    size = (w * factor, h * factor)
    return cv_hwc(maps_hwc, lambda m: cv2.resize(m, size, interpolation=cv2.INTER_CUBIC))


def _nms_kernels(radius: int, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """Footprint around a pixel split into the pixels before it and after it in raster order."""
    d = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    if radius == 1 and connectivity == 8:
        foot = np.ones_like(dy, dtype=bool)
    else:
        foot = dy**2 + dx**2 <= radius**2
    raster = dy * (2 * radius + 1) + dx
    before = (foot & (raster < 0)).astype(np.uint8)
    after = (foot & (raster > 0)).astype(np.uint8)
    return before, after


def _local_maxima(smooth: np.ndarray, config: ParserConfig) -> np.ndarray:
    """(H, W, C) bool: above threshold and the maximum of its footprint.

    On a plateau only pixels with no equal pixel before them (raster order) survive.
    """
    before, after = _nms_kernels(config.nms_radius, config.nms_connectivity)
    max_before = cv_hwc(smooth, lambda m: cv2.dilate(m, before))
    max_after = cv_hwc(smooth, lambda m: cv2.dilate(m, after))
    return (smooth > config.peak_threshold) & (smooth > max_before) & (smooth >= max_after)


def _keep_strongest(part: np.ndarray, score: np.ndarray, k: int, limit: int) -> np.ndarray:
    """Indices (sorted) of the ``limit`` strongest candidates of each part."""
    order = np.lexsort((-score, part))
    first = np.searchsorted(part[order], np.arange(k))
    rank = np.arange(order.size) - first[part[order]]
    return np.sort(order[rank < limit])


def _refine_log_quadratic(smooth: np.ndarray, r: np.ndarray, c: np.ndarray, k: np.ndarray):
    """(M,) row and column offsets and height gain: a parabola through log values per axis.

    Where a neighbour is off the map, the other axis' curvature stands in (isotropic peak).
    The gain is the fitted peak height over the pixel's value.
    """
    h, w = smooth.shape[:2]

    def logv(rr, cc):
        return np.log(np.maximum(smooth[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1), k], _LOG_FLOOR))

    l0 = logv(r, c)
    neighbours = {
        "x": (logv(r, c - 1), logv(r, c + 1), c - 1 >= 0, c + 1 < w),
        "y": (logv(r - 1, c), logv(r + 1, c), r - 1 >= 0, r + 1 < h),
    }
    # Curvature where both neighbours exist (NaN otherwise).
    curv = {
        ax: np.where(has_lo & has_hi, lo - 2 * l0 + hi, np.nan)
        for ax, (lo, hi, has_lo, has_hi) in neighbours.items()
    }
    offsets, log_gain = {}, 0.0
    for ax, other in (("x", "y"), ("y", "x")):
        lo, hi, has_lo, has_hi = neighbours[ax]
        kk = np.where(np.isnan(curv[ax]), curv[other], curv[ax])
        # Slope at the peak pixel, from whichever neighbours exist.
        grad = np.where(
            has_lo & has_hi, (hi - lo) / 2, np.where(has_hi, hi - l0 - kk / 2, l0 - lo + kk / 2)
        )
        ok = (kk < 0) & (has_lo | has_hi) & np.isfinite(grad)
        with np.errstate(divide="ignore", invalid="ignore"):
            off = np.where(ok, -grad / np.where(ok, kk, -1.0), 0.0)
        offsets[ax] = np.clip(off, -0.5, 0.5)
        # Height of the parabola's vertex above the pixel: -k/2 * offset^2.
        log_gain = log_gain + np.where(ok, -0.5 * np.where(ok, kk, 0.0) * offsets[ax] ** 2, 0.0)
    gain = np.exp(np.minimum(log_gain, np.log(_MAX_HEIGHT_GAIN)))
    return offsets["y"], offsets["x"], gain


def _refine_centroid(smooth, r, c, k, radius: int):
    """(M,), (M,) offsets to the value-weighted mean of the positive pixels in the window."""
    h, w = smooth.shape[:2]
    d = np.arange(-radius, radius + 1)
    rr = r[:, None, None] + d[None, :, None]
    cc = c[:, None, None] + d[None, None, :]
    inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    vals = smooth[np.clip(rr, 0, h - 1), np.clip(cc, 0, w - 1), k[:, None, None]]
    wgt = np.where(inside & (vals > 0), vals, 0.0).astype(np.float64)
    total = wgt.sum(axis=(1, 2))
    ok = total > 0
    safe = np.where(ok, total, 1.0)
    dy = np.where(ok, (wgt * d[None, :, None]).sum(axis=(1, 2)) / safe, 0.0)
    dx = np.where(ok, (wgt * d[None, None, :]).sum(axis=(1, 2)) / safe, 0.0)
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
        smooth = cv_hwc(raw, lambda m: cv2.GaussianBlur(m, (0, 0), sigma))
    # 2. Non-maximum suppression; candidates sorted by part.
    mask = _local_maxima(smooth, config)
    part, r, c = np.nonzero(mask.transpose(2, 0, 1))
    score = raw[r, c, part].astype(np.float64)
    # 3. Keep the strongest peaks of each part.
    counts = np.bincount(part, minlength=k)
    if counts.size and counts.max() > config.max_peaks:
        keep = _keep_strongest(part, score, k, config.max_peaks)
        part, r, c, score = part[keep], r[keep], c[keep], score[keep]
    # 4. Sub-pixel refinement on the smoothed map.
    dy = dx = np.zeros(part.size)
    if part.size and config.refine == "log_quadratic":
        dy, dx, gain = _refine_log_quadratic(smooth, r, c, part)
        score = score * gain
    elif part.size and config.refine == "centroid":
        dy, dx = _refine_centroid(smooth, r, c, part, config.refine_radius)
    # 5. Input pixels, clipped to the map's extent.
    x = np.clip(analysis_to_input(c + dx, stride, f), 0, w * stride - 1)
    y = np.clip(analysis_to_input(r + dy, stride, f), 0, h * stride - 1)
    start = np.concatenate([[0], np.cumsum(np.bincount(part, minlength=k))])
    return Peaks(np.stack([x, y], axis=1), score, part.astype(np.intp), start.astype(np.intp))
