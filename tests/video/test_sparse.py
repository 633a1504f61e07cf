"""--mode fastest's schedule (posecli.video.sparse): key frames, the flow carrier, scene cuts,
lost people, counts; on rendered textured scenes with people moving (no network)."""

import cv2
import numpy as np
import pytest

from posecli.errors import InputError
from posecli.skeleton import COCO18
from posecli.types import Frame, Person
from posecli.video.sparse import SparseConfig, SparseRunner, carry, flow_image

from tests.helpers import make_person

SIZE_WH = (640, 360)


def _texture(seed: int, size_wh=SIZE_WH) -> np.ndarray:
    """(H, W, 3) uint8 blurred noise: corners everywhere for the flow to follow."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 255, (size_wh[1] // 4, size_wh[0] // 4, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(noise, size_wh, interpolation=cv2.INTER_CUBIC), (3, 3), 0)


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (image.shape[1], image.shape[0]), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


class _Scene:
    """People painted on a texture that moves by ``step_xy`` per frame; ``detect`` returns the
    truth (as a whole-frame pass would) and counts its calls."""

    def __init__(self, n_people=3, step_xy=(2.5, -1.0), seed=0):
        rng = np.random.default_rng(seed)
        self.base = _texture(seed)
        self.people = [make_person(rng, (120 + 180 * i, 110), 160)[:, :2] for i in range(n_people)]
        self.step = np.asarray(step_xy)
        self.calls = []

    def image(self, i: int) -> np.ndarray:
        return _shifted(self.base, *(self.step * i))

    def truth(self, i: int) -> list[Person]:
        return [Person(xy + self.step * i, np.full(18, 0.8), 1.2, COCO18) for xy in self.people]

    def detect(self, image: np.ndarray) -> Frame:
        i = self.current
        self.calls.append(i)
        return Frame(self.truth(i), (image.shape[1], image.shape[0]))

    def run(self, runner: SparseRunner, n: int, fps: float | None = None, image_fn=None):
        out = []
        for i in range(n):
            self.current = i
            image = image_fn(i) if image_fn else self.image(i)
            out.append(runner(image, None if fps is None else i / fps))
        return out


def test_the_flow_carrier_recovers_a_translated_skeleton():
    scene = _Scene(n_people=2)
    before, after = scene.base, _shifted(scene.base, 3.5, -2.25)
    _, g0, s = flow_image(before, 640)
    _, g1, _ = flow_image(after, 640)
    carried, lost = carry(scene.truth(0), g0, g1, s, SIZE_WH, SparseConfig())
    assert not lost and len(carried) == 2
    for p, q in zip(scene.truth(0), carried):
        err = np.linalg.norm(q.xy - (p.xy + [3.5, -2.25]), axis=1)
        assert np.nanmax(err) < 0.5
        assert np.allclose(q.scores, p.scores * 0.97)  # a carried keypoint is less sure


def test_the_flow_carrier_works_on_a_scaled_down_copy_of_a_large_frame():
    big = cv2.resize(_texture(3), (1920, 1080), interpolation=cv2.INTER_CUBIC)
    xy = np.random.default_rng(1).uniform([200, 200], [1700, 900], (18, 2))
    person = Person(xy, np.ones(18), 1.0, COCO18)
    _, g0, s = flow_image(big, 640)
    _, g1, _ = flow_image(_shifted(big, -7.0, 4.0), 640)
    assert s == pytest.approx(1 / 3)
    (q,), lost = carry([person], g0, g1, s, (1920, 1080), SparseConfig())
    assert not lost
    assert np.nanmedian(np.linalg.norm(q.xy - (xy + [-7.0, 4.0]), axis=1)) < 1.0


def test_whole_frames_every_key_frames_others_carried_and_counted():
    scene = _Scene()
    runner = SparseRunner(scene.detect, SparseConfig(key_frames=4, key_s=100.0))
    out = scene.run(runner, 12)
    assert scene.calls == [0, 4, 8]
    assert [kind for _, kind in out] == (["whole"] + ["none"] * 3) * 3
    assert runner.counts == {"whole": 3, "crops": 0, "none": 9}
    # carried people stay on the truth while the picture moves
    for i, (frame, _) in enumerate(out):
        assert len(frame.people) == 3
        for p, t in zip(frame.people, scene.truth(i)):
            assert np.nanmax(np.linalg.norm(p.xy - t.xy, axis=1)) < 1.0


def test_key_s_makes_key_frames_by_time_as_well():
    scene = _Scene()
    runner = SparseRunner(scene.detect, SparseConfig(key_frames=10, key_s=0.1))
    scene.run(runner, 9, fps=25.0)
    assert scene.calls == [0, 3, 6]  # 0.12 s apart: the first frame 0.1 s or more after the key


def test_a_scene_cut_is_a_key_frame():
    scene = _Scene()
    other = (_texture(99) // 3 + np.array([150, 40, 0], np.uint8)).astype(np.uint8)  # another place, other colours
    runner = SparseRunner(scene.detect, SparseConfig(key_frames=50, key_s=100.0))
    scene.run(runner, 10, image_fn=lambda i: scene.image(i) if i < 6 else _shifted(other, i, 0))
    assert scene.calls == [0, 6]


def test_a_person_the_flow_loses_makes_the_next_frame_a_key_frame():
    scene = _Scene(n_people=1, step_xy=(0.0, 0.0))

    def image(i):
        im = scene.image(i).copy()
        if i == 3:  # the person's area goes flat: nothing for the flow to follow
            lo = np.nanmin(scene.people[0], axis=0).astype(int) - 30
            hi = np.nanmax(scene.people[0], axis=0).astype(int) + 30
            im[max(lo[1], 0):hi[1], max(lo[0], 0):hi[0]] = 128
        return im

    runner = SparseRunner(scene.detect, SparseConfig(key_frames=50, key_s=100.0, scene_cut=0.0))
    out = scene.run(runner, 6, image_fn=image)
    assert out[3][0].people == []  # lost at frame 3 ...
    assert scene.calls == [0, 4]  # ... found again by the whole-frame pass at frame 4


def test_keypoints_that_leave_the_picture_are_dropped():
    scene = _Scene(n_people=1, step_xy=(0.0, 0.0))
    person = scene.truth(0)[0]
    xy = person.xy.copy()
    xy[0] = (639.5, 100.0)  # at the right edge
    _, g0, s = flow_image(scene.base, 640)
    _, g1, _ = flow_image(_shifted(scene.base, 3.0, 0.0), 640)
    (q,), _ = carry([Person(xy, person.scores, 1.0, COCO18)], g0, g1, s, SIZE_WH, SparseConfig())
    assert not np.isfinite(q.xy[0]).any() and q.scores[0] == 0.0
    assert np.isfinite(q.xy[1:]).all()


def test_a_new_frame_size_is_a_key_frame():
    scene = _Scene()
    runner = SparseRunner(scene.detect, SparseConfig(key_frames=50, key_s=100.0, scene_cut=0.0))
    scene.run(runner, 4, image_fn=lambda i: scene.image(i) if i < 2 else cv2.resize(scene.image(i), (320, 180)))
    assert scene.calls == [0, 2]


@pytest.mark.parametrize("field, value", [("key_frames", 0), ("key_frames", 2.5), ("key_frames", True),
                                          ("key_s", float("nan")), ("decay", 1.5), ("decay", float("inf")),
                                          ("flow_side", 8), ("min_followed", -0.1), ("fb_error", -1.0)])
def test_bad_settings_are_input_errors_naming_the_field(field, value):
    with pytest.raises(InputError, match=field):
        SparseConfig(**{field: value})


@pytest.mark.parametrize("size_wh", [(1, 1), (5, 3), (24, 16)])
def test_tiny_frames_are_carried_without_errors(size_wh):
    scene = _Scene(n_people=1)
    runner = SparseRunner(lambda im: Frame([Person(np.full((18, 2), 0.5), np.full(18, 0.5), 1.0, COCO18)],
                                           (im.shape[1], im.shape[0])),
                          SparseConfig(key_frames=3, key_s=100.0))
    for i in range(5):
        frame, _ = runner(cv2.resize(scene.image(i), size_wh), None)
        assert frame.size_wh == size_wh
    assert runner.counts["whole"] >= 2 and sum(runner.counts.values()) == 5  # a lost person: a key frame sooner


@pytest.mark.parametrize("channels", [None, 4])
def test_grey_and_bgra_frames_are_followed(channels):
    scene = _Scene(n_people=1)
    convert = (lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)) if channels is None else \
        (lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA))
    runner = SparseRunner(scene.detect, SparseConfig(key_frames=4, key_s=100.0))
    out = scene.run(runner, 4, image_fn=lambda i: convert(scene.image(i)))
    assert [k for _, k in out] == ["whole", "none", "none", "none"]
    assert np.nanmax(np.linalg.norm(out[3][0].people[0].xy - scene.truth(3)[0].xy, axis=1)) < 1.0
