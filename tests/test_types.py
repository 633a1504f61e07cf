"""Result records: a Person normalises missing keypoints without touching the caller's arrays."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.skeleton import COCO18
from posecli.types import Frame, Person, strongest

from tests.helpers import person


def _arrays():
    xy = np.arange(COCO18.num_parts * 2, dtype=np.float64).reshape(-1, 2)
    scores = np.full(COCO18.num_parts, 0.7)
    xy[3] = (np.inf, 5.0)  # not finite: missing
    xy[4, 1] = np.nan  # half missing: missing
    return xy, scores


def test_person_never_writes_into_the_callers_arrays():
    xy, scores = _arrays()
    before_xy, before_scores = xy.copy(), scores.copy()
    p = Person(xy, scores, 0.5, COCO18)
    np.testing.assert_array_equal(xy, before_xy)
    np.testing.assert_array_equal(scores, before_scores)
    # ... and the record itself says missing the one way: NaN, score 0
    assert np.isnan(p.xy[[3, 4]]).all() and (p.scores[[3, 4]] == 0).all()
    assert p.keypoint(COCO18.parts[3]) is None and p.num_visible == COCO18.num_parts - 2
    np.testing.assert_array_equal(p.xy[5:], before_xy[5:])


def test_person_from_lists_and_float32_and_frame_to_array():
    xy, scores = _arrays()
    p = Person(xy.astype(np.float32).tolist(), scores.astype(np.float32), 1, COCO18)
    assert p.xy.dtype == p.scores.dtype == np.float64 and isinstance(p.score, float)
    arr = Frame([p], (640, 480)).to_array()
    assert arr.shape == (1, COCO18.num_parts, 3) and np.isnan(arr[0, 3, :2]).all()


def test_person_shapes_are_checked():
    xy, scores = _arrays()
    with pytest.raises(ValueError, match="xy must be"):
        Person(xy[:-1], scores, 1.0, COCO18)
    with pytest.raises(ValueError, match="scores must be"):
        Person(xy, scores[:-1], 1.0, COCO18)


def test_strongest_keeps_the_highest_scores_in_order_and_ties_as_they_came():
    a, b, c, d = (person({"neck": (x, 10.0)}, score=s) for x, s in ((1, 0.5), (2, 0.9), (3, 0.7), (4, 0.9)))
    assert strongest([a, b, c, d], 2) == [b, d]  # b and d tie: b came first
    assert strongest([a, b, c, d], 3) == [b, d, c]
    assert strongest([a, b], 5) == [b, a]
    assert strongest([a, b, c], None) == [a, b, c]
    assert strongest([], 1) == []
