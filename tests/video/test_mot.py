"""MOT metrics on sequences small enough to count by hand."""

from __future__ import annotations

import numpy as np
import pytest

from posecli.video.mot import MotAccumulator, track_statistics


def eye(g: int, h: int, pairs) -> np.ndarray:
    """(g, h) similarity with 1 at the given (row, col) pairs, 0 elsewhere."""
    s = np.zeros((g, h))
    for r, c in pairs:
        s[r, c] = 1.0
    return s


def test_perfect_tracking_scores_one():
    acc = MotAccumulator()
    for _ in range(5):
        acc.update(["a", "b"], [7, 8], eye(2, 2, [(0, 0), (1, 1)]))
    s = acc.summary()
    assert (s["mota"], s["idf1"], s["id_switches"], s["fragmentations"]) == (1.0, 1.0, 0, 0)
    assert (s["gt_ids"], s["hyp_ids"], s["matches"]) == (2, 2, 10)


def test_an_id_switch_halfway():
    """One person, 4 frames: id 1 twice, then id 2 twice.
    MOTA = 1 - 1 switch / 4; IDF1: gt pairs with one id for 2 frames: 2*2 / (4 + 4)."""
    acc = MotAccumulator()
    for h in (1, 1, 2, 2):
        acc.update(["g"], [h], [[1.0]])
    s = acc.summary()
    assert s["id_switches"] == 1 and s["mota"] == pytest.approx(0.75)
    assert s["idf1"] == pytest.approx(0.5) and s["hyp_ids"] == 2


def test_misses_false_positives_and_a_fragmentation():
    """Frames: matched, missed (FN), matched again (one fragmentation), plus a false person
    in the last frame (FP). GT 3, FN 1, FP 1: MOTA 1/3; IDTP 2: IDF1 2*2/(3+3)."""
    acc = MotAccumulator()
    acc.update(["g"], [1], [[0.9]])
    acc.update(["g"], [], np.zeros((1, 0)))
    acc.update(["g"], [1, 5], [[0.9, 0.1]])
    s = acc.summary()
    assert (s["fn"], s["fp"], s["fragmentations"], s["id_switches"]) == (1, 1, 1, 0)
    assert s["mota"] == pytest.approx(1 / 3)
    assert s["idf1"] == pytest.approx(4 / 6)


def test_weak_pairs_do_not_match_and_last_pairs_are_kept():
    """Below min_similarity is no match; a pair still alike is kept even when swapping
    would score a little higher (CLEAR MOT's rule), so no switch is counted."""
    acc = MotAccumulator(min_similarity=0.5)
    acc.update(["a", "b"], [1, 2], [[0.9, 0.0], [0.0, 0.9]])
    m = acc.update(["a", "b"], [1, 2], [[0.6, 0.7], [0.7, 0.6]])
    assert m == {"a": 1, "b": 2}
    acc.update(["a"], [1], [[0.4]])
    s = acc.summary()
    assert s["id_switches"] == 0 and s["fn"] == 1 and s["fp"] == 1


def test_ignored_ground_truth_counts_neither_way():
    acc = MotAccumulator()
    acc.update(["a", "hidden"], [1, 2], eye(2, 2, [(0, 0), (1, 1)]), ignore=[False, True])
    acc.update(["a", "hidden"], [1], eye(2, 1, [(0, 0)]), ignore=[False, True])
    s = acc.summary()
    assert (s["gt_dets"], s["hyp_dets"], s["fp"], s["fn"]) == (2, 2, 0, 0)
    assert s["mota"] == 1.0 and s["idf1"] == 1.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="min_similarity"):
        MotAccumulator(float("nan"))
    with pytest.raises(ValueError, match="unique"):
        MotAccumulator().update(["a", "a"], [1], [[1.0], [1.0]])


def test_track_statistics_without_ground_truth():
    """10 frames at 10 fps (1 s): id 1 in all, id 2 in the last 5, one person without id."""
    frames = [[1] + ([2] if n >= 5 else []) + ([None] if n == 3 else []) for n in range(10)]
    s = track_statistics(frames, [n / 10 for n in range(10)])
    assert s["ids"] == 2 and s["people"] == 16 and s["without_id"] == 1
    assert s["ids_per_minute"] == pytest.approx(120.0)
    assert s["in_tracks_1s"] == pytest.approx(10 / 16) and s["in_tracks_2s"] == 0.0
    assert s["track_s_p50"] == pytest.approx(0.75)
