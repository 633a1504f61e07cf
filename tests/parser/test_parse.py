"""The parser: round trips through rendered maps for every preset, robustness, presets."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.optimize import linear_sum_assignment

from posecli.errors import ConfigError, ParserError
from posecli.parser import PRESETS, ParserConfig, get_preset, parse
from posecli.parser.assemble import redundant_limbs
from posecli.parser.limbs import LimbPairs, match_greedy
from posecli.parser.peaks import Peaks
from posecli.skeleton import BODY25, COCO18
from posecli.types import Person

from tests.helpers import SCENES, STRIDE, render, scene

# Round-trip tolerance (input pixels, stride 8) and border margin per preset. The
# default preset refines peaks on the map grid and meets 1 px everywhere, borders included.
# The reference presets localise on bicubically upsampled maps (no or centroid refinement):
# cubic interpolation of a peak sampled every 8 px is itself off by up to ~1.5 px, plus
# the grid step (2 px for lightweight), and near the edges the replicated border flattens
# peaks, so they are tested at their achievable tolerance with keypoints >= 12 px inside.
TOLERANCE = {"default": 1.0, "lightweight": 3.0, "openpose": 2.5, "cmu-python": 2.0}
MARGIN = {"default": 0.0, "lightweight": 12.0, "openpose": 12.0, "cmu-python": 12.0}


def match_people(expected: np.ndarray, people: list[Person]) -> list[tuple[int, int]]:
    """Optimal assignment of expected (N, K, 3) people to found ones by mean keypoint distance."""
    found = np.stack([p.xy for p in people])
    d = np.linalg.norm(expected[:, None, :, :2] - found[None, :, :, :], axis=-1)
    cost = np.nanmean(np.where(np.isnan(d), 1e4, d), axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist()))


def assert_round_trip(kp: np.ndarray, people: list[Person], config: ParserConfig, tol: float) -> None:
    """Same people, same visible keypoints, each within ``tol`` pixels."""
    expected = kp[(kp[:, :, 2] > 0).sum(axis=1) >= config.min_parts]
    assert len(people) == len(expected)
    if not people:
        return
    for i, j in match_people(expected, people):
        vis = expected[i, :, 2] > 0
        np.testing.assert_array_equal(people[j].visible, vis, err_msg=f"person {i}: visible parts")
        err = np.linalg.norm(people[j].xy[vis] - expected[i, vis, :2], axis=1)
        assert err.max() <= tol, f"person {i}: {COCO18.parts[int(np.argmax(err))]} off by {err.max():.2f} px"
        assert np.isfinite(people[j].score) and people[j].score >= config.min_score


# The fifty-person scenes take seconds each: they run in `make test`, the rest in the quick loop too.
CASES = [pytest.param(p, s, seed, marks=[pytest.mark.slow] if s == "fifty" else [])
         for p in PRESETS for s in SCENES for seed in ((0, 1) if p == "default" else (0,))]


@pytest.mark.parametrize("preset,name,seed", CASES)
def test_round_trip(preset, name, seed):
    kp, size = scene(name, seed, margin=MARGIN[preset])
    heat, pafs = render(kp, size)
    config = get_preset(preset)
    people = parse(heat, pafs, COCO18, config, stride=STRIDE)
    assert_round_trip(kp, people, config, TOLERANCE[preset])


def test_round_trip_at_the_very_edge_with_the_default_preset():
    """Keypoints on the outermost input pixels (outside the cell-centre hull) are still found."""
    kp, size = scene("one", 3)
    h, w = size[0] * STRIDE, size[1] * STRIDE
    kp = kp.copy()
    vis = np.flatnonzero(kp[0, :, 2] > 0)
    kp[0, vis, :2] -= kp[0, vis, :2].min(axis=0)  # leftmost part at x=0, topmost at y=0
    assert kp[0, vis, 0].max() < w and kp[0, vis, 1].max() < h
    heat, pafs = render(kp, size)
    assert_round_trip(kp, parse(heat, pafs, COCO18), PRESETS["default"], 1.0)


def test_the_models_keypoint_offset_moves_every_part_and_nothing_else():
    """A network whose peaks sit ``offset`` above its labels: rendered 0.32 px too high, the
    parts come back where the labels were once the offset is given."""
    kp, size = scene("five", 1)
    shown = kp.copy()
    shown[..., 1] -= 0.32 * (kp[..., 2] > 0)
    heat, pafs = render(shown, size)
    plain = parse(heat, pafs, COCO18, stride=STRIDE)
    moved = parse(heat, pafs, COCO18, PRESETS["default"].with_(peak_offset_y=0.32), stride=STRIDE)
    assert len(moved) == len(plain) > 0
    for a, b in zip(plain, moved):
        vis = a.visible
        np.testing.assert_array_equal(b.visible, vis)
        np.testing.assert_allclose(b.xy[vis, 0], a.xy[vis, 0], atol=1e-9)
        np.testing.assert_allclose(b.xy[vis, 1] - a.xy[vis, 1], 0.32, atol=1e-9)
    assert_round_trip(kp, moved, PRESETS["default"], TOLERANCE["default"])
    with pytest.raises(ConfigError, match="peak_offset_y must be between -64.0 and 64.0"):
        PRESETS["default"].with_(peak_offset_y=100.0)


def test_person_records_and_scores():
    kp, size = scene("two", 0)
    heat, pafs = render(kp, size)
    people = parse(heat, pafs, COCO18)
    assert [type(p) for p in people] == [Person, Person]
    assert people[0].score >= people[1].score
    for p in people:
        assert p.skeleton is COCO18 and p.xy.shape == (18, 2)
        assert np.all((p.scores[p.visible] > 0.9) & (p.scores[p.visible] <= 1.0))
        assert np.all(p.scores[~p.visible] == 0)


def test_parse_does_not_mutate_its_inputs():
    kp, size = scene("five", 0)
    heat, pafs = render(kp, size)
    heat[3, 0, 0], pafs[5, 1, 1] = np.nan, np.inf
    before = heat.copy(), pafs.copy()
    heat.flags.writeable = False
    pafs.flags.writeable = False
    for preset in PRESETS:
        parse(heat, pafs, COCO18, preset)
    np.testing.assert_array_equal(heat, before[0])
    np.testing.assert_array_equal(pafs, before[1])


@pytest.mark.parametrize("preset", list(PRESETS))
def test_empty_and_degenerate_maps(preset):
    assert parse(np.zeros((19, 32, 57)), np.zeros((38, 32, 57)), COCO18, preset) == []
    assert parse(np.zeros((19, 0, 0)), np.zeros((38, 0, 0)), COCO18, preset) == []
    assert parse(np.zeros((19, 0, 5)), np.zeros((38, 0, 5)), COCO18, preset) == []
    assert parse(np.full((19, 8, 8), np.nan), np.full((38, 8, 8), np.inf), COCO18, preset) == []
    assert parse(np.ones((19, 6, 6)), np.ones((38, 6, 6)), COCO18, preset) is not None
    assert parse(np.ones((19, 1, 1)), np.ones((38, 1, 1)), COCO18, preset, stride=1) is not None


def test_nan_and_inf_patches_are_ignored():
    kp, size = scene("two", 2)
    heat, pafs = render(kp, size)
    heat[:, :3, :3], pafs[:, -3:, -3:] = np.nan, -np.inf
    heat[:, 0, -1] = np.inf
    assert_round_trip(kp, parse(heat, pafs, COCO18), PRESETS["default"], 1.0)


def test_extra_channels_are_ignored_and_lists_accepted():
    kp, size = scene("one", 0)
    heat, pafs = render(kp, size)
    heat = np.concatenate([heat, np.ones((2, *size), np.float32)])
    pafs = np.concatenate([pafs, np.ones((4, *size), np.float32)])
    assert len(parse(heat.tolist(), pafs.astype(np.float64), COCO18)) == 1


def test_single_part():
    heat = np.zeros((19, 16, 16), np.float32)
    heat[4, 7, 9] = 0.8
    pafs = np.zeros((38, 16, 16), np.float32)
    assert parse(heat, pafs, COCO18) == []  # one part is not a person by default
    (person,) = parse(heat, pafs, COCO18, PRESETS["default"].with_(min_parts=1, min_score=0.0))
    assert person.num_visible == 1 and person.visible[4]
    assert person.keypoint("r_wrist")[:2] == pytest.approx((9 * 8 + 3.5, 7 * 8 + 3.5))
    assert person.score == pytest.approx(0.8)


@pytest.mark.parametrize(
    "heat_shape,paf_shape",
    [
        ((18 - 1, 8, 8), (38, 8, 8)),  # too few heatmaps
        ((19, 8, 8), (37, 8, 8)),  # too few PAFs
        ((19, 8, 8), (38, 8, 9)),  # sizes differ
        ((19, 8), (38, 8)),  # 2-D
        ((1, 19, 8, 8), (1, 38, 8, 8)),  # batch axis left in
    ],
)
def test_wrong_shapes_raise_parser_error(heat_shape, paf_shape):
    with pytest.raises(ParserError):
        parse(np.zeros(heat_shape), np.zeros(paf_shape), COCO18)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stride": 0},
        {"stride": 2.5},
        {"config": "no-such-preset"},
        {"config": 3},
    ],
)
def test_bad_arguments_raise_parser_error(kwargs):
    with pytest.raises(ParserError):
        parse(np.zeros((19, 4, 4)), np.zeros((38, 4, 4)), COCO18, **kwargs)


def test_non_numeric_maps_raise_parser_error():
    with pytest.raises(ParserError):
        parse(np.full((19, 4, 4), "a"), np.zeros((38, 4, 4)), COCO18)
    with pytest.raises(ParserError):
        parse(np.zeros((19, 4, 4), complex), np.zeros((38, 4, 4)), COCO18)


def test_presets_and_config_validation():
    assert set(PRESETS) == {"default", "lightweight", "openpose", "cmu-python"}
    assert get_preset("OpenPose") is PRESETS["openpose"]
    assert PRESETS["default"] == ParserConfig()
    assert PRESETS["openpose"].min_above_fraction == 0.95 and PRESETS["openpose"].paf_samples == 0
    assert PRESETS["lightweight"].upsample == 4 and PRESETS["lightweight"].min_score == 0.2
    assert PRESETS["cmu-python"].nms_connectivity == 4 and PRESETS["cmu-python"].min_parts == 4
    with pytest.raises(ConfigError):
        ParserConfig(refine="magic")
    with pytest.raises(ConfigError):
        ParserConfig(upsample=0)
    with pytest.raises(ConfigError):
        PRESETS["default"].with_(no_such_field=1)
    with pytest.raises(Exception):
        PRESETS["default"].min_parts = 1  # frozen


def test_redundant_limbs_are_the_cycle_closing_ones():
    assert [i for i, r in enumerate(redundant_limbs(COCO18)) if r] == [17, 18]
    assert [i for i, r in enumerate(redundant_limbs(BODY25)) if r] == [18, 19]


def _greedy_reference(score: np.ndarray) -> set[tuple[int, int]]:
    """Sorted greedy matching with a Python loop, for comparison."""
    used_a, used_b, out = set(), set(), set()
    for flat in np.argsort(-score, axis=None, kind="stable"):
        a, b = np.unravel_index(flat, score.shape)
        if np.isfinite(score[a, b]) and a not in used_a and b not in used_b:
            used_a.add(a), used_b.add(b), out.add((int(a), int(b)))
    return out


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
               elements=st.floats(-1, 1, allow_nan=False), unique=True),
    st.floats(0, 1),
)
def test_vectorised_matching_equals_sorted_greedy(score, drop):
    na, nb = score.shape
    valid = np.abs(score) >= drop * 0.5
    peaks = Peaks(np.zeros((na + nb, 2)), np.ones(na + nb), np.repeat([0, 1], [na, nb]),
                  np.array([0, na, na + nb]))
    a, b = np.meshgrid(np.arange(na), na + np.arange(nb), indexing="ij")
    pairs = LimbPairs(np.zeros(na * nb, int), a.ravel(), b.ravel(), score.ravel(),
                      np.ones(na * nb), valid.ravel())
    m = match_greedy(pairs, peaks)
    got = {(int(x), int(y) - na) for x, y in zip(m.a, m.b)}
    assert got == _greedy_reference(np.where(valid, score, -np.inf))
    assert np.all(np.diff(m.score) <= 0)


_finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def random_maps(draw):
    h, w = draw(st.integers(0, 12)), draw(st.integers(0, 12))
    skeleton = draw(st.sampled_from([COCO18, BODY25]))
    base = draw(st.sampled_from(["uniform", "sparse", "wild"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    heat = rng.uniform(0, 1, (skeleton.num_heatmaps, h, w)).astype(np.float32)
    pafs = rng.uniform(-1, 1, (skeleton.num_pafs, h, w)).astype(np.float32)
    if base == "sparse":
        heat *= rng.uniform(size=heat.shape) > 0.9
    if base == "wild" and heat.size:
        for arr in (heat, pafs):
            idx = rng.integers(0, arr.size, size=5)
            arr.flat[idx] = [draw(_finite_or_not) for _ in range(5)]
    stride = draw(st.sampled_from([1, 4, 8]))
    return heat, pafs, skeleton, stride


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_maps(), st.sampled_from([*PRESETS, "permissive"]))
def test_random_maps_never_break_the_parser(maps, preset):
    heat, pafs, skeleton, stride = maps
    config = (PRESETS["default"].with_(min_parts=1, min_score=-1e9, peak_threshold=-1.0)
              if preset == "permissive" else PRESETS[preset])
    h, w = heat.shape[1:]
    people = parse(heat, pafs, skeleton, config, stride=stride)
    for p in people:
        assert isinstance(p, Person) and np.isfinite(p.score)
        xy = p.xy[p.visible]
        assert p.num_visible >= 1
        assert np.all((xy >= 0) & (xy <= np.array([w * stride - 1, h * stride - 1])))
        assert np.all(np.isfinite(p.scores)) and np.all((p.scores >= 0) & (p.scores <= 1))


# -- the fast paths are exact ----------------------------------------------------------------
def _pairs_without_screens(monkeypatch, heat, pafs, config):
    """score_pairs' result with the early screens switched off (every pair fully scored)."""
    import importlib

    limbs_mod = importlib.import_module("posecli.parser.limbs")
    seen = {}
    real = limbs_mod.score_pairs

    def spy(*args, **kwargs):
        seen["pairs"] = real(*args, **kwargs)
        return seen["pairs"]

    monkeypatch.setattr(limbs_mod, "score_pairs", spy)
    monkeypatch.setattr(importlib.import_module("posecli.parser"), "score_pairs", spy)
    screened_people = parse(heat, pafs, COCO18, config, stride=STRIDE)
    screened = seen["pairs"]
    monkeypatch.setattr(limbs_mod, "_SUPPORT_SCREEN_MIN", 10**9)
    monkeypatch.setattr(limbs_mod, "_FIELD_SCREEN_MIN", 10**9)
    full_people = parse(heat, pafs, COCO18, config, stride=STRIDE)
    return screened, seen["pairs"], screened_people, full_people


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("name", ["ten-touching", "crossing", pytest.param("fifty", marks=pytest.mark.slow)])
def test_early_screens_drop_only_failing_pairs(monkeypatch, preset, name):
    kp, size = scene(name, 0, margin=MARGIN[preset])
    heat, pafs = render(kp, size)
    rng = np.random.default_rng(0)
    pafs = pafs + rng.normal(0, 0.03, pafs.shape).astype(np.float32)  # near-threshold samples
    screened, full, people_a, people_b = _pairs_without_screens(monkeypatch, heat, pafs, get_preset(preset))
    key = lambda p: {(int(l), int(a), int(b)): s for l, a, b, s, v in
                     zip(p.limb, p.a, p.b, p.score, p.valid) if v}
    got, want = key(screened), key(full)
    assert got.keys() == want.keys() and len(want) > 0
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-6)
    assert screened.limb.size < full.limb.size or name == "crossing"
    assert len(people_a) == len(people_b)
    for p, q in zip(people_a, people_b):
        np.testing.assert_array_equal(p.xy, q.xy)


def test_parse_results_survive_the_next_parse():
    """Scratch buffers are reused between frames; returned people never point into them."""
    kp, size = scene("five", 0)
    heat, pafs = render(kp, size)
    first = parse(heat, pafs, COCO18)
    kept = [(p.xy.copy(), p.scores.copy(), p.score) for p in first]
    kp2, _ = scene("ten-touching", 1)
    parse(*render(kp2, size), COCO18)
    for p, (xy, scores, score) in zip(first, kept):
        np.testing.assert_array_equal(p.xy, xy)
        np.testing.assert_array_equal(p.scores, scores)
        assert p.score == score


# -- sub-pixel refinement ------------------------------------------------------------------------
def _tilted_peak(centre_xy, sigmas, angle, size=(16, 16)):
    """(19, H, W) heatmaps with one anisotropic, rotated Gaussian in channel 0 (map pixels)."""
    yy, xx = np.mgrid[: size[0], : size[1]].astype(float)
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = xx - centre_xy[0], yy - centre_xy[1]
    a, b = (c * dx + s * dy) / sigmas[0], (-s * dx + c * dy) / sigmas[1]
    heat = np.zeros((19, *size), np.float32)
    heat[0] = np.exp(-(a**2 + b**2) / 2)
    return heat


@pytest.mark.parametrize("seed", range(5))
def test_log_hessian_is_exact_for_tilted_gaussians(seed):
    rng = np.random.default_rng(seed)
    centre = rng.uniform(6, 9, 2)
    heat = _tilted_peak(centre, (rng.uniform(1.2, 2.5), rng.uniform(0.7, 1.0)), rng.uniform(0.3, 1.2))
    pafs = np.zeros((38, 16, 16), np.float32)
    errors = {}
    for refine in ("log_quadratic", "log_hessian"):
        cfg = PRESETS["default"].with_(refine=refine, smooth_sigma=0.0, min_parts=1, min_score=0.0)
        (person,) = parse(heat, pafs, COCO18, cfg, stride=1)
        errors[refine] = float(np.linalg.norm(person.xy[0] - centre))
        assert person.scores[0] == pytest.approx(1.0, abs=0.05 if refine == "log_hessian" else 0.3)
    assert errors["log_hessian"] < 1e-3
    assert errors["log_hessian"] <= errors["log_quadratic"]


@pytest.mark.parametrize("name", ["five", "border", "crossing"])
def test_round_trip_with_log_hessian_refinement(name):
    kp, size = scene(name, 0)
    heat, pafs = render(kp, size)
    config = PRESETS["default"].with_(refine="log_hessian")
    assert_round_trip(kp, parse(heat, pafs, COCO18, config, stride=STRIDE), config, 1.0)


@pytest.mark.parametrize("changes", [
    {"smooth_sigma": float("nan")}, {"peak_threshold": float("inf")}, {"upsample_pafs": "banana"},
    {"paf_samples": 10**9}, {"upsample": 10**6}, {"nms_radius": 10**6}, {"max_peaks": 0}, {"min_parts": 1.5},
    {"paf_samples_gain": float("nan")}, {"length_prior": -1.0},
])
def test_config_refuses_non_finite_mistyped_and_unbounded_values(changes):
    with pytest.raises(ConfigError):
        PRESETS["default"].with_(**changes)


def test_config_takes_numpy_numbers_and_stride():
    cfg = PRESETS["default"].with_(smooth_sigma=np.float32(2.0), min_parts=np.int64(3), upsample="stride")
    assert cfg.upsample_factor(8) == 8 and cfg.min_parts == 3
