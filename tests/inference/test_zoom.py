"""The zoom-in pass: real photos with the skier made small, and the merge rules on literal people."""

import json

import cv2
import numpy as np
import pytest

from posecli.errors import ConfigError, InputError
from posecli.inference.estimator import PoseEstimator
from posecli.inference.zoom import Crop, ZoomConfig, cut, merge, plan_crops, sigmas, similarity
from posecli.io.images import read_image
from posecli.network.session import PoseModel
from posecli.skeleton import COCO18
from posecli.types import Person


@pytest.fixture(scope="module")
def model(default_model):
    return PoseModel.load(str(default_model), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def skier(mini_set):
    """The skier photo (one annotated person, about 300 px tall) and its COCO keypoints (17, 3)."""
    image = read_image(mini_set["dir"] / "000000000785.jpg")
    (ann,) = [a for a in mini_set["coco"]["annotations"] if a["image_id"] == 785]
    return image, np.array(ann["keypoints"], float).reshape(17, 3)


def _small_skier(skier, factor: float, at=(700, 500), canvas_hw=(960, 1280)):
    """The skier shrunk by ``factor`` on a grey canvas; the annotation moved with it."""
    image, gt = skier
    small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    canvas = np.full((*canvas_hw, 3), 120, np.uint8)
    x, y = at
    h, w = small.shape[:2]
    canvas[y:y + h, x:x + w] = small[: canvas_hw[0] - y, : canvas_hw[1] - x]
    gxy = (gt[:, :2] + 0.5) * factor - 0.5 + np.array(at)
    return canvas, gxy, gt[:, 2] > 0


def _median_error(person: Person, gxy, visible) -> float:
    k = person.to_coco17()
    both = visible & np.isfinite(k[:, 0])
    return float(np.median(np.hypot(*(k[both, :2] - gxy[both]).T)))


def test_a_small_person_is_localised_from_a_zoomed_crop(model, skier):
    # The skier 128 px tall in a 1280x960 photo is 34 px in the first pass's input.
    canvas, gxy, visible = _small_skier(skier, 0.3)
    plain = PoseEstimator(model)(canvas)
    est = PoseEstimator(model, zoom=True)
    zoomed = est(canvas)
    assert len(plain.people) == 1 and len(zoomed.people) == 1  # replaced, not duplicated
    before, after = _median_error(plain.people[0], gxy, visible), _median_error(zoomed.people[0], gxy, visible)
    # measured 8.7 -> 1.6 px: mapped back through the crop's inverse transform
    assert after < 3.0 and after < 0.5 * before, (before, after)
    assert zoomed.people[0].num_visible >= 16
    assert (est.zoom_stats.images, est.zoom_stats.crops, est.zoom_stats.runs) == (1, 1, 1)


def test_crops_reaching_past_the_image_are_padded_and_unshifted():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    # scale 1, the crop's top-left at image (50, 30): 10 x 10 pixels inside, the rest padding
    (out,) = cut(image, [Crop(1.0, (-50.0, -30.0))], 16, (7, 8, 9))
    np.testing.assert_array_equal(out[:10, :10], image[30:, 50:])
    assert (out[10:] == (7, 8, 9)).all() and (out[:, 10:] == (7, 8, 9)).all()
    # and a point maps back through the one inverse transform
    np.testing.assert_allclose(Crop(1.0, (-50.0, -30.0)).to_image(np.array([3.0, 4.0])), (53.0, 34.0))


def test_large_people_are_never_cropped(model, skier):
    image, _ = skier
    plain = PoseEstimator(model)(image)
    est = PoseEstimator(model, zoom=True)
    zoomed = est(image)
    assert est.zoom_stats.crops == 0 and est.zoom_stats.runs == 0
    assert len(zoomed.people) == len(plain.people) == 1
    np.testing.assert_array_equal(zoomed.people[0].xy, plain.people[0].xy)


def test_crops_are_capped_and_run_as_one_batch(model, skier):
    image, _ = skier
    small = cv2.resize(image, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    canvas = np.full((960, 1280, 3), 120, np.uint8)
    for i in range(12):  # a crowd of twelve small skiers
        y, x = 100 + (i // 6) * 400, 20 + (i % 6) * 210
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    est = PoseEstimator(model, zoom=ZoomConfig(max_crops=3))
    frame = est(canvas)
    assert est.zoom_stats.crops == 3 and est.zoom_stats.runs == 1
    assert len(frame.people) >= len(PoseEstimator(model)(canvas).people)


def test_estimate_file_zooms_on_full_resolution_pixels(model, skier, tmp_path):
    """A big JPEG is not decoded reduced when the zoom-in pass needs its pixels."""
    canvas, gxy, visible = _small_skier(skier, 0.3)
    big = cv2.resize(canvas, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)  # 2560x1920
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    est = PoseEstimator(model, zoom=True)
    assert est.read_file(path).factor == 1
    assert PoseEstimator(model).read_file(path).factor > 1
    # a 96-megapixel photo keeps only what zooming its smallest findable person needs
    assert est.zoom.decode_height(256) == 1878
    frame, _ = est.estimate_file(path)
    assert len(frame.people) == 1
    assert _median_error(frame.people[0], (gxy + 0.5) * 2 - 0.5, visible) < 6.0


# -- planning and merging on literal people ------------------------------------------------------
def _person(xy_by_name: dict, score: float = 1.0) -> Person:
    xy = np.full((COCO18.num_parts, 2), np.nan)
    for name, p in xy_by_name.items():
        xy[COCO18.index(name)] = p
    return Person(xy, np.where(np.isfinite(xy[:, 0]), 0.9, 0.0), score, COCO18)


def _figure(x: float, y: float, h: float, score: float = 1.0) -> Person:
    """A standing person with the neck at (x, y) and the ankles ``h`` below."""
    s = h / 4
    return _person({
        "nose": (x, y - 0.4 * s), "neck": (x, y), "r_shoulder": (x - 0.5 * s, y), "l_shoulder": (x + 0.5 * s, y),
        "r_hip": (x - 0.3 * s, y + 1.6 * s), "l_hip": (x + 0.3 * s, y + 1.6 * s),
        "r_knee": (x - 0.3 * s, y + 2.8 * s), "l_knee": (x + 0.3 * s, y + 2.8 * s),
        "r_ankle": (x - 0.3 * s, y + 4 * s), "l_ankle": (x + 0.3 * s, y + 4 * s),
    }, score)


def test_plan_crops_scales_small_people_to_the_target_height():
    cfg = ZoomConfig()
    small, large = _figure(100, 100, 40), _figure(400, 100, 300)
    crops = plan_crops([small, large], [], first_scale=0.5, config=cfg)
    assert len(crops) == 1
    (crop,) = crops
    box_h = 44 * cfg.size_factor  # nose to ankles
    assert crop.scale == pytest.approx(cfg.person_height / box_h)
    centre = crop.to_image(np.array([cfg.crop_size / 2, cfg.crop_size / 2]))
    np.testing.assert_allclose(centre, (100, 100 - 0.4 * 10 + 22), atol=1e-9)


def test_crop_transform_round_trips():
    crop = Crop(3.25, (-120.5, 40.0))
    pts = np.array([[10.0, 20.0], [300.0, -5.0]])
    there = np.c_[pts, np.ones(2)] @ crop.matrix.T
    np.testing.assert_allclose(crop.to_image(there), pts)


def test_plan_crops_never_exceeds_the_cap_and_prefers_kept_people():
    cfg = ZoomConfig(max_crops=2)
    kept = [_figure(100 + 300 * i, 100, 40, score=0.5 + 0.1 * i) for i in range(3)]
    weak = [_figure(100, 600, 40, score=2.0)]
    crops = plan_crops(kept, weak, 0.5, cfg)
    assert len(crops) == 2
    xs = sorted(float(c.to_image(np.array([128.0, 128.0]))[0]) for c in crops)
    assert xs == pytest.approx([400, 700])  # the two strongest kept people, not the weak cluster


def test_merge_replaces_matches_adds_new_and_drops_duplicates():
    cfg = ZoomConfig()
    coarse = [_figure(100, 100, 40, score=0.6), _figure(300, 100, 40, score=0.7)]
    refined = _figure(100.5, 100.3, 40, score=0.9)
    duplicate = _figure(100.8, 100.1, 40, score=0.8)
    new = _figure(600, 100, 40, score=0.5)
    new_twice = _figure(600.4, 100, 40, score=0.4)
    out = merge(coarse, [refined, duplicate, new, new_twice], cfg)
    assert [p.score for p in out] == [0.9, 0.7, 0.5]
    assert out[0] is refined and out[2] is new


def test_a_first_pass_person_known_to_a_coarse_grid_still_matches_its_zoomed_copy():
    """A person 40 px tall found on a grid of 30 px cells (a small person in a big photo):
    its keypoints are off by a few pixels, which COCO's similarity at its small scale reads
    as a different person (0.43 here) and the zoomed copy came back twice; allowed the grid's
    error, it is the same person."""
    cfg = ZoomConfig()
    coarse = [_figure(100, 100, 40, score=0.6), _figure(300, 100, 40, score=0.7)]
    zoomed = _figure(103, 104, 40, score=0.9)
    k2 = (2.0 * sigmas(COCO18)) ** 2
    assert similarity(zoomed, coarse[0], k2) < cfg.match_oks <= similarity(zoomed, coarse[0], k2, 30.0**2 / 12)
    assert len(merge(coarse, [zoomed], cfg)) == 3  # without the grid: twice
    out = merge(coarse, [zoomed], cfg, first_cell=30.0)
    assert [p.score for p in out] == [0.9, 0.7] and out[0] is zoomed
    # the grid's allowance does not join people a cell and more apart
    assert len(merge(coarse, [_figure(140, 100, 40, score=0.9)], cfg, first_cell=30.0)) == 3


def test_merge_without_zoomed_people_keeps_the_first_pass():
    coarse = [_figure(100, 100, 40)]
    assert merge(coarse, [], ZoomConfig()) is coarse


# -- hostile settings ----------------------------------------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("person_height", float("nan")), ("below", float("inf")), ("crop_size", 0), ("max_crops", -1),
    ("max_upscale", -2.0), ("edge", 0.5), ("match_oks", float("nan")), ("candidate_threshold", 0.0),
])
def test_zoom_config_rejects_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        ZoomConfig(**{field: value})


def test_estimator_rejects_a_crop_size_off_the_stride_and_odd_zoom_values(model):
    with pytest.raises(InputError, match="crop_size"):
        PoseEstimator(model, zoom=ZoomConfig(crop_size=250))
    with pytest.raises(InputError, match="zoom="):
        PoseEstimator(model, zoom="yes")


def test_tiny_and_blank_images_pass_through_the_zoom(model):
    est = PoseEstimator(model, zoom=True)
    assert est(np.zeros((1, 1, 3), np.uint8)).people == []
    assert est(np.full((480, 640, 3), 200, np.uint8)).people == []


def test_zoom_runs_in_video_pipelines_when_the_mode_asks(model, skier, tmp_path):
    from posecli.video.run import iter_video_poses
    from tests.helpers import write_video

    canvas, _, _ = _small_skier(skier, 0.3, canvas_hw=(480, 640), at=(300, 200))
    clip = write_video(tmp_path / "small.mp4", 2, size_wh=(640, 480), frame_fn=lambda i: canvas)
    est = PoseEstimator(model, mode="balanced")
    results = list(iter_video_poses(est, clip, track=False))
    assert len(results) == 2 and est.zoom_stats.images == 2
    assert json.dumps([len(r.frame.people) for r in results]) == "[1, 1]"
