"""Agreement of two runs on the same frames: how much two lists of people say the same.

Per frame, people are paired one to one by keypoint similarity (OKS, optimal assignment);
the frame's agreement is the sum of the paired OKS divided by the larger person count, so
a person missing on either side scores 0 (two empty frames agree fully, 1). A run's
agreement with another is the mean over frames. Used to compare ``--mode fastest`` with
``--mode fast`` where there is no ground truth (``python -m bench fastest``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..types import Person
from .matching import assign, keypoint_area, keypoint_sigmas, oks_matrix


def frame_agreement(a: Sequence[Person], b: Sequence[Person]) -> float:
    """Agreement (0..1) of the people ``a`` and ``b`` of one frame (see the module docstring)."""
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    xa = np.stack([p.xy for p in a])  # (N, K, 2)
    xb = np.stack([p.xy for p in b])  # (M, K, 2)
    areas_a = np.array([keypoint_area(x) for x in xa])
    areas_b = np.array([keypoint_area(x) for x in xb])
    area = np.maximum(np.maximum(areas_a[:, None], areas_b[None]), 1.0)  # the larger person's scale
    sim = oks_matrix(xa, xb, area, keypoint_sigmas(a[0].skeleton))
    return float(sum(sim[i, j] for i, j in assign(sim, 0.0)) / max(len(a), len(b)))


def agreement(run_a: Sequence[Sequence[Person]], run_b: Sequence[Sequence[Person]]) -> float:
    """Mean over frames of :func:`frame_agreement` (``run_a``, ``run_b``: people per frame, same frames)."""
    if len(run_a) != len(run_b):
        raise ValueError(f"runs of {len(run_a)} and {len(run_b)} frames: compare the same frames")
    if not run_a:
        return float("nan")
    return float(np.mean([frame_agreement(a, b) for a, b in zip(run_a, run_b)]))
