"""Frames per second to expect per mode on this machine, measured on the spot in a few seconds.

The frame is synthetic (1280x720: textured noise, the size of a 720p video), so the figures
are the network's and the per-frame work's, not a clip's: decoding the video, the zoom-in
pass's crops (``balanced``, ``accurate``: only where small people are found) and drawing
come on top. ``fastest`` runs its real schedule (:mod:`posecli.video.sparse`) over a short
run of the frame moving a few pixels a frame with :data:`PEOPLE` people to carry between
its whole-frame passes. The modes are timed in turns (one call of each per round), so a
change in the machine's load touches them all alike.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import cv2
import numpy as np

from ..types import Frame, Person

FRAME_WH = (1280, 720)
PEOPLE = 6  # people carried by the flow in the fastest measurement
MOVE_PX = 2.0  # the synthetic frame's motion per frame
VIDEO_FRAMES = 10_000  # the frames a video is said to have, so that the runtime prepares as for one


def synthetic_frame(size_wh=FRAME_WH, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: smooth coloured noise (corners for the flow, nothing for the parser)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (size_wh[1] // 8, size_wh[0] // 8, 3), dtype=np.uint8)
    return cv2.resize(small, size_wh, interpolation=cv2.INTER_CUBIC)


def _people(skeleton, size_wh, n: int) -> list[Person]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        centre = np.array([(i + 0.5) * size_wh[0] / n, size_wh[1] / 2])
        xy = centre + rng.uniform(-60, 60, (skeleton.num_parts, 2)) * [1, 3]
        out.append(Person(xy, np.full(skeleton.num_parts, 0.7), 1.0, skeleton))
    return out


def _fastest_run(estimator, frames: list[np.ndarray]) -> Callable[[], None]:
    """One key interval of the fastest schedule over ``frames`` (a whole-frame pass, flow after)."""
    from .sparse import SparseConfig, SparseRunner

    people = _people(estimator.skeleton, (frames[0].shape[1], frames[0].shape[0]), PEOPLE)

    def detect(image):
        found = estimator.parse(estimator.maps(image), image=image)
        return Frame(people, found.size_wh)  # the network's cost, people to carry

    def run():
        runner = SparseRunner(detect, SparseConfig(key_frames=len(frames), key_s=1e9))
        for f in frames:
            runner(f)

    return run


def expected_fps(estimators: dict[str, object], rounds: int = 3, warmup: int = 1) -> dict[str, float]:
    """Mode name -> frames/s of its estimator on the synthetic frame (see the module docstring).

    ``estimators``: mode name -> :class:`~posecli.inference.estimator.PoseEstimator` made in
    that mode; a ``fastest`` one is timed over one key interval of its schedule.
    """
    from ..network.backends.choice import sample
    from .sparse import SparseConfig

    base = synthetic_frame()
    key = SparseConfig().key_frames
    moved = [cv2.warpAffine(base, np.float32([[1, 0, MOVE_PX * i], [0, 1, 0]]), FRAME_WH,
                            borderMode=cv2.BORDER_REFLECT) for i in range(key)]
    runners: dict[str, tuple[Callable[[], object], int]] = {}
    for mode, est in estimators.items():
        est.expect(base.shape, VIDEO_FRAMES)  # as a video does: the runtime prepares for the size
        if mode == "fastest":
            runners[mode] = (_fastest_run(est, moved), key)
        else:
            runners[mode] = ((lambda e=est: e(base)), 1)
    samples = sample({mode: run for mode, (run, _n) in runners.items()}, warmup, rounds)  # interleaved
    return {mode: runners[mode][1] / statistics.median(t) for mode, t in samples.items()}
