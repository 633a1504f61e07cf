"""``--mode fastest``: compute less, not faster. The network sees the whole frame only now
and then; between, people are carried by the optical flow of their keypoints.

Consecutive frames are nearly the same picture, and on a CPU without AVX-512 the network
is most of a frame's cost. Each frame, in order:

1. *Decide*: the frame runs the network on the whole picture (a *key* frame) when it is
   the first, when :attr:`SparseConfig.key_frames` frames or :attr:`SparseConfig.key_s`
   seconds have passed since the last key frame (people who entered since are found
   then), at a scene cut (:mod:`posecli.video.scenecut`), when the frame's size changed,
   or when the frame before lost a person the flow could not follow.
2. *Key frame*: ``detect(image)`` (the estimator's ``fast`` pass) gives the people.
3. *Other frames*: every keypoint of the frame before is followed into this one by
   pyramidal Lucas-Kanade optical flow (:func:`cv2.calcOpticalFlowPyrLK`) on a grey copy
   at most :attr:`SparseConfig.flow_side` pixels on its longer side, checked by flowing
   back (forward-backward error); a keypoint that fails moves with the median of its
   person's followed keypoints. A person with too few followed keypoints is dropped and
   the next frame is a key frame; people with fewer than :attr:`SparseConfig.min_parts`
   keypoints are not carried. Scores decay by :attr:`SparseConfig.decay` per carried
   frame: a carried keypoint is less sure than a seen one.

:class:`SparseRunner` holds the state; :attr:`SparseRunner.counts` says how many frames
ran the network on the whole frame (``whole``), on crops (``crops``: none in this
schedule, kept for the report's shape) or not at all (``none``). Key-frame schedule and
figures: docs/realtime.md (``python -m bench fastest``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..types import Frame, Person
from .scenecut import SceneCutDetector

#: Lucas-Kanade settings: window (flow pixels), pyramid levels, stop criteria.
_LK = dict(winSize=(21, 21), maxLevel=3,
           criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))

KINDS = ("whole", "crops", "none")


@dataclass(frozen=True)
class SparseConfig:
    """Settings of the sparse schedule (reference values chosen with ``python -m bench fastest``).

    ``key_frames``: a whole-frame network pass at least every this many frames.
    ``key_s``: ... and at least every this many seconds of video (whichever comes first).
    ``decay``: keypoint and person scores are multiplied by this per carried frame.
    ``flow_side``: optical flow runs on the frame scaled so that its longer side is at most
    this many pixels.
    ``fb_error``: a keypoint whose forward-backward flow error is above this (flow pixels)
    is not followed.
    ``min_followed``: a person with a smaller fraction of its keypoints followed is lost.
    ``scene_cut``: image change (0..1, :mod:`posecli.video.scenecut`) that makes a key frame.
    ``min_parts``: people with fewer keypoints are not carried (mostly partial or false
    detections, which per-frame ``fast`` output shows in a frame here and there: carried,
    they would last a whole key interval and get track ids).
    """

    key_frames: int = 5
    key_s: float = 0.2
    decay: float = 0.97
    flow_side: int = 640
    fb_error: float = 1.0
    min_followed: float = 0.5
    scene_cut: float = 0.28
    min_parts: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.key_frames, bool) or not isinstance(self.key_frames, int) or self.key_frames < 1:
            raise InputError(f"key_frames={self.key_frames!r}: must be a whole number of at least 1")
        for name, low, high in (("key_s", 0.0, math.inf), ("decay", 0.0, 1.0), ("fb_error", 0.0, math.inf),
                                ("min_followed", 0.0, 1.0), ("scene_cut", 0.0, 1.0)):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and low <= v <= high):
                raise InputError(f"{name}={v!r}: must be a number in [{low}, {high}]")
        if isinstance(self.min_parts, bool) or not isinstance(self.min_parts, int) or self.min_parts < 1:
            raise InputError(f"min_parts={self.min_parts!r}: must be a whole number of at least 1")
        if not isinstance(self.flow_side, int) or self.flow_side < 32:
            raise InputError(f"flow_side={self.flow_side!r}: must be a whole number of at least 32")


def flow_image(image: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(small BGR copy, its grey for the flow, their pixels per image pixel) of a BGR (H, W, 3)
    ``image``: scaled (bilinear: the flow's pyramid smooths anyway) so that the longer side is
    at most ``side``."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    small = image
    if scale < 1.0:
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_LINEAR)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return small, grey, scale


def follow_points(before: np.ndarray, after: np.ndarray, xy: np.ndarray, fb_error: float) -> tuple[np.ndarray, np.ndarray]:
    """(M, 2) points of grey image ``before`` -> ((M, 2) where they are in ``after``, (M,) followed)."""
    if len(xy) == 0:
        return xy.copy(), np.zeros(0, bool)
    p0 = np.ascontiguousarray(xy, dtype=np.float32).reshape(-1, 1, 2)
    p1, ok1, _ = cv2.calcOpticalFlowPyrLK(before, after, p0, None, **_LK)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(after, before, p1, None, **_LK)
    err = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
    ok = ok1.ravel().astype(bool) & ok2.ravel().astype(bool) & (err <= fb_error)
    return p1.reshape(-1, 2).astype(np.float64), ok


def carry(people: list[Person], before: np.ndarray, after: np.ndarray, scale: float, size_wh,
          config: SparseConfig) -> tuple[list[Person], bool]:
    """``people`` of the frame whose grey flow image is ``before`` moved into ``after``.

    ``scale``: flow pixels per image pixel; ``size_wh``: the image's size (keypoints that
    leave it are dropped). Returns the carried people and whether one was lost.
    """
    owners = [np.flatnonzero(p.visible) for p in people]
    xy = np.concatenate([p.xy[k] for p, k in zip(people, owners)]) if people else np.zeros((0, 2))
    moved, ok = follow_points(before, after, xy * scale, config.fb_error)
    moved /= scale
    out: list[Person] = []
    lost = False
    start = 0
    w, h = size_wh
    for p, k in zip(people, owners):
        stop = start + len(k)
        m, good = moved[start:stop], ok[start:stop]
        start = stop
        if 0 < len(k) < config.min_parts:
            continue  # a partial person: left to the next key frame
        if len(k) == 0 or good.mean() < config.min_followed:
            lost = True
            continue
        shift = np.median(m[good] - p.xy[k][good], axis=0)
        new = p.xy.copy()
        new[k] = np.where(good[:, None], m, p.xy[k] + shift)
        outside = ~((new[:, 0] >= 0) & (new[:, 0] <= w - 1) & (new[:, 1] >= 0) & (new[:, 1] <= h - 1))
        new[outside] = np.nan
        scores = p.scores * config.decay
        scores[k[~good]] *= config.decay  # moved with the others: less sure again
        out.append(Person(new, scores, p.score * config.decay, p.skeleton, p.track_id))
    return out, lost


class SparseRunner:
    """Call with each frame in order: people from a whole-frame pass or carried by the flow.

    ``detect(image) -> Frame``: the whole-frame pass (the estimator's). Returns
    ``(frame, kind)``, kind one of :data:`KINDS`; :attr:`counts` adds them up.
    """

    def __init__(self, detect: Callable[[np.ndarray], Frame], config: SparseConfig | None = None):
        self.detect = detect
        self.config = config or SparseConfig()
        self.counts = dict.fromkeys(KINDS, 0)
        self._cuts = SceneCutDetector(self.config.scene_cut) if self.config.scene_cut > 0 else None
        self._grey: np.ndarray | None = None
        self._people: list[Person] = []
        self._since_key = 0
        self._key_t: float | None = None
        self._lost = False

    def __call__(self, image: np.ndarray, timestamp: float | None = None) -> tuple[Frame, str]:
        cfg = self.config
        small, grey, scale = flow_image(image, cfg.flow_side)
        cut = self._cuts(small) if self._cuts is not None else False  # the same verdict on fewer pixels
        if self._key_due(grey, timestamp) or cut:
            frame = self.detect(image)
            kind = "whole"
            self._since_key, self._key_t, self._lost = 0, timestamp, False
        else:
            people, self._lost = carry(self._people, self._grey, grey, scale, (image.shape[1], image.shape[0]), cfg)
            frame = Frame(people, (image.shape[1], image.shape[0]))
            kind = "none"
        self._since_key += 1
        self._grey, self._people = grey, list(frame.people)
        self.counts[kind] += 1
        return frame, kind

    def _key_due(self, grey: np.ndarray, t: float | None) -> bool:
        """True when this frame needs the whole-frame pass (see the module docstring, step 1)."""
        cfg = self.config
        if self._grey is None or self._grey.shape != grey.shape or self._lost:
            return True
        if self._since_key >= cfg.key_frames:
            return True
        return t is not None and self._key_t is not None and not (0 <= t - self._key_t < cfg.key_s)


#: Whole-frame passes assumed for a source of unknown length (a camera, a stream): enough to
#: move the frame size to the faster runtime at once (see network/backends/mixed.py).
LIVE_KEY_FRAMES = 10_000


def runner_for(estimator, config: SparseConfig | None = None, expected_frames: int | None = None) -> SparseRunner:
    """A :class:`SparseRunner` whose whole-frame pass is ``estimator``'s, one frame at a time
    on the network compiled for latency (the frames after it depend on its people).

    ``expected_frames``: frames the video will have (None: unknown, a live source); the
    runtime is told how many whole-frame passes of the first frame's size are coming.
    """
    config = config or SparseConfig()
    keys = LIVE_KEY_FRAMES if expected_frames is None else -(-expected_frames // config.key_frames)
    told = []

    def detect(image: np.ndarray) -> Frame:
        expect = getattr(estimator, "expect", None)
        if not told and expect is not None:
            told.append(image.shape)
            expect(image.shape, keys, 1)
        return estimator.parse(estimator.maps(image), image=image)

    return SparseRunner(detect, config)
