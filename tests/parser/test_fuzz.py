"""Parser fuzzing beyond tests/test_parser.py: arbitrary shapes and dtypes raise only
ParserError; maps full of extreme values (not just a few) still give valid people.

test_parser.py already covers random finite maps with a few NaN/inf, zero-size maps and
the keypoints-inside/finite-score properties for them.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posecli.errors import ParserError
from posecli.parser import PRESETS, parse
from posecli.skeleton import BODY25, COCO18
from posecli.types import Person

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.uint8, np.int64, np.bool_, np.complex64, object, "U3"]
# Values a broken network or a bad conversion produces, in bulk.
EXTREMES = np.array([np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e30, 1e6, -1e6, 5e5, 1e-45, -0.0, 0.0, 1.0, 0.5])

PERMISSIVE = PRESETS["default"].with_(min_parts=1, min_score=-1e9, peak_threshold=-1.0)


def _array(shape, dtype, rng):
    if dtype == object:
        return np.empty(shape, dtype=object)
    if dtype == "U3":
        return np.full(shape, "abc")
    return rng.uniform(-2, 2, shape).astype(dtype)


@st.composite
def any_maps(draw):
    """Heatmaps and PAFs of any rank, any sizes (often mismatched) and any dtype."""
    def shape():
        return tuple(draw(st.lists(st.integers(0, 45), min_size=0, max_size=4)))

    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    heat = _array(shape(), draw(st.sampled_from(DTYPES)), rng)
    pafs = _array(shape(), draw(st.sampled_from(DTYPES)), rng)
    return heat, pafs


def _check_people(people, h: int, w: int, stride: int) -> None:
    for p in people:
        assert isinstance(p, Person) and np.isfinite(p.score)
        xy = p.xy[p.visible]
        assert np.all((xy >= 0) & (xy <= np.array([w * stride - 1, h * stride - 1])))
        assert np.all(np.isfinite(p.scores)) and np.all((p.scores >= 0) & (p.scores <= 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_maps(), st.sampled_from([COCO18, BODY25]), st.sampled_from(["default", "openpose", "permissive"]))
def test_any_shape_or_dtype_gives_people_or_parser_error(maps, skeleton, preset):
    heat, pafs = maps
    config = PERMISSIVE if preset == "permissive" else PRESETS[preset]
    try:
        people = parse(heat, pafs, skeleton, config, stride=4)
    except ParserError:
        return
    h, w = np.shape(heat)[1:]
    _check_people(people, h, w, 4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    h=st.integers(1, 24), w=st.integers(1, 24), stride=st.sampled_from([1, 8, 32]),
    share=st.floats(0.05, 1.0), dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    preset=st.sampled_from([*PRESETS, "permissive"]), seed=st.integers(0, 2**32 - 1),
)
def test_maps_full_of_extreme_values_give_valid_people(h, w, stride, share, dtype, preset, seed):
    rng = np.random.default_rng(seed)

    def maps(channels, low):
        arr = rng.uniform(low, 1, (channels, h, w))
        wild = rng.uniform(size=arr.shape) < share
        arr[wild] = rng.choice(EXTREMES, size=int(wild.sum()))
        with np.errstate(over="ignore"):
            return arr.astype(dtype)

    heat, pafs = maps(COCO18.num_heatmaps, 0.0), maps(COCO18.num_pafs, -1.0)
    before = heat.copy(), pafs.copy()
    config = PERMISSIVE if preset == "permissive" else PRESETS[preset]
    people = parse(heat, pafs, COCO18, config, stride=stride)
    _check_people(people, h, w, stride)
    np.testing.assert_array_equal(heat, before[0])  # inputs untouched (NaN == NaN here)
    np.testing.assert_array_equal(pafs, before[1])


def test_all_nan_heatmaps_with_good_pafs_and_the_reverse():
    h, w = 16, 20
    good_heat = np.zeros((19, h, w), np.float32)
    good_heat[:, 8, 10] = 1.0
    good_pafs = np.ones((38, h, w), np.float32) * 0.5
    for preset in PRESETS:
        assert parse(np.full((19, h, w), np.nan, np.float32), good_pafs, COCO18, preset) == []
    people = parse(good_heat, np.full((38, h, w), np.nan, np.float32), COCO18, PERMISSIVE)
    _check_people(people, h, w, 8)
