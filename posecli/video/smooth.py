"""One-Euro filtering of keypoints against jitter (Casiez, Roussel and Vogel, CHI 2012).

Each coordinate is low-pass filtered with a cutoff frequency that rises with its speed:
slow movements are smoothed strongly (little jitter), fast ones barely (little lag).
A filter keeps one state per keypoint of one tracked person; missing keypoints keep their
state and are filtered again, with the longer time step, when they reappear.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class OneEuroConfig:
    """Filter settings; positions in pixels, times in seconds.

    ``min_cutoff`` (Hz): cutoff at rest; lower means smoother and laggier.
    ``beta`` (1/pixel): how much the cutoff rises with speed (pixels/s); higher means
    less lag on fast moves. ``d_cutoff`` (Hz): cutoff of the speed estimate.
    ``default_fps``: the frame rate assumed when frames carry no timestamps.
    """

    min_cutoff: float = 1.0
    beta: float = 0.01
    d_cutoff: float = 1.0
    default_fps: float = 30.0

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.default_fps <= 0:
            raise ConfigError("min_cutoff, d_cutoff and default_fps must be positive")
        if self.beta < 0:
            raise ConfigError("beta must be >= 0")


def _alpha(cutoff: np.ndarray | float, dt: np.ndarray) -> np.ndarray:
    """Smoothing factor of an exponential filter with ``cutoff`` Hz at time steps ``dt``."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One-Euro filter over (K, 2) keypoint arrays; NaN rows are missing keypoints."""

    def __init__(self, config: OneEuroConfig = OneEuroConfig()):
        self.config = config
        self._x: np.ndarray | None = None  # (K, 2) filtered positions
        self._dx: np.ndarray | None = None  # (K, 2) filtered speeds, pixels/s
        self._t: np.ndarray | None = None  # (K,) time each keypoint was last seen

    def __call__(self, xy: np.ndarray, t: float) -> np.ndarray:
        """Filtered copy of ``xy`` (K, 2) observed at time ``t`` seconds; NaN stays NaN."""
        xy = np.asarray(xy, dtype=np.float64)
        seen = np.isfinite(xy).all(axis=1)
        if self._x is None:
            self._x = xy.copy()
            self._dx = np.zeros_like(xy)
            self._t = np.where(seen, t, np.nan)
            return xy.copy()
        c = self.config
        known = seen & np.isfinite(self._t)
        dt = np.maximum(t - np.where(known, self._t, t), 1e-6)[:, None]
        # 1. Speed, low-passed at d_cutoff.
        raw_dx = np.where(known[:, None], (xy - self._x) / dt, 0.0)
        a_d = _alpha(c.d_cutoff, dt)
        dx = a_d * raw_dx + (1 - a_d) * self._dx
        # 2. Position, low-passed at a cutoff that grows with the speed.
        cutoff = c.min_cutoff + c.beta * np.linalg.norm(dx, axis=1, keepdims=True)
        a = _alpha(cutoff, dt)
        x = a * xy + (1 - a) * self._x
        # New keypoints start at their observation; unseen ones keep their state.
        x = np.where(known[:, None], x, xy)
        self._x = np.where(seen[:, None], x, self._x)
        self._dx = np.where(known[:, None], dx, np.where(seen[:, None], 0.0, self._dx))
        self._t = np.where(seen, t, self._t)
        out = x.copy()
        out[~seen] = np.nan
        return out
