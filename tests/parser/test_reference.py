"""The fast parser against the plain, slow one (tests/parser/reference.py) on maps rendered
from known skeletons: the same people, with the same parts, keypoints within two pixels."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import posecli.parser
from posecli.parser import parse
from posecli.skeleton import COCO18

from tests.helpers import STRIDE, render, scene
from tests.parser.reference import reference_parse

# Where the 3 x 3 centroid of the reference is cut by the map's edge it is off by more.
TOLERANCE = {"border": 4.0}
INSIDE_TOLERANCE = 2.0  # a quarter of a map cell


def _same_people(fast, slow, tol: float) -> None:
    assert len(fast) == len(slow)
    for ref in slow:
        parts = set(ref["parts"])
        twins = [p for p in fast if set(np.flatnonzero(p.visible)) == parts]
        assert twins, f"no person with the parts {sorted(COCO18.parts[k] for k in parts)}"
        err = min(max(np.hypot(*(p.xy[k] - ref["parts"][k][:2])) for k in parts) for p in twins)
        assert err <= tol


@pytest.mark.parametrize("name", ["one", "two", "five", "crossing", "partial", "border", "ten-touching"])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_fast_parser_finds_what_the_reference_finds(name, seed):
    kp, size = scene(name, seed)
    heat, pafs = render(kp, size)
    _same_people(parse(heat, pafs, COCO18, stride=STRIDE), reference_parse(heat, pafs, COCO18, STRIDE),
                 TOLERANCE.get(name, INSIDE_TOLERANCE))


def test_the_reference_is_itself_right():
    """It finds the rendered people where they were put (within the centroid's bias)."""
    kp, size = scene("five", 3)
    found = reference_parse(*render(kp, size), COCO18, STRIDE)
    assert len(found) == len(kp)
    for person in kp:
        vis = set(np.flatnonzero(person[:, 2] > 0))
        err = min(max(np.hypot(*(person[k, :2] - p["parts"][k][:2])) for k in vis)
                  for p in found if set(p["parts"]) == vis)
        assert err < 1.5


def test_the_parser_docstring_example_runs():
    assert doctest.testmod(posecli.parser).failed == 0
