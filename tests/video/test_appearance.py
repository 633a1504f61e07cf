"""Torso colours: the same clothes look alike, other clothes do not, hidden torsos are unknown."""

from __future__ import annotations

import numpy as np

from posecli.skeleton import COCO18
from posecli.types import Person
from posecli.video.appearance import SIZE, histogram_similarity, torso_histograms

from tests import helpers as synthetic


def test_torso_colours_tell_clothes_apart_and_missing_torsos_are_nan():
    rng = np.random.default_rng(0)
    image = np.full((300, 600, 3), 90, np.uint8)
    image[:, :200] = (0, 0, 200)  # red shirt region (BGR)
    image[:, 200:400] = (200, 60, 0)  # blue
    image[:, 400:] = (0, 0, 190)  # red again, a little darker
    people = []
    for cx in (100, 300, 500):
        kp = synthetic.make_person(rng, (cx, 60), 200)
        people.append(Person(kp[:, :2], np.full(18, 0.9), 1.0, COCO18))
    shoulderless = people[0].xy.copy()
    shoulderless[[COCO18.index("r_shoulder"), COCO18.index("l_shoulder")]] = np.nan
    people.append(Person(shoulderless, np.full(18, 0.9), 1.0, COCO18))
    hist = torso_histograms(people, image)
    assert hist.shape == (4, SIZE) and np.allclose(hist[:3].sum(axis=1), 1.0)
    assert np.isnan(hist[3]).all()
    sim = histogram_similarity(hist[:3], hist[:3])
    assert sim[0, 2] > 0.9 and sim[0, 1] < 0.3 and np.allclose(np.diag(sim), 1.0, atol=1e-5)
    assert torso_histograms(people, None).shape == (4, SIZE)
