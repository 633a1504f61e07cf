"""Render styles, checked on the pixels: plain background, score threshold, thickness, ids, alpha."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posecli.errors import InputError
from posecli.formats.render import Renderer, id_color, parse_color

from tests.helpers import person
from tests.helpers import fast, invoke, photo

# A horizontal right upper arm (shoulder -> elbow) and the neck: limbs neck-shoulder, shoulder-elbow.
ARM = {"neck": (100, 60), "r_shoulder": (60, 60), "r_elbow": (60, 140)}


def _noise(h=200, w=200, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(30, 220, (h, w, 3), dtype=np.uint8)


def _width_at(mask: np.ndarray, row: int, cols: slice) -> int:
    """Drawn pixels across a vertical limb at ``row``."""
    return int(mask[row, cols].sum())


def test_skeleton_alone_on_black_leaves_black_where_nothing_is_drawn():
    out = Renderer(background=(0, 0, 0), show_ids=False)(_noise(), [person(ARM)])
    drawn = out.any(axis=2)
    assert drawn[100, 60]  # on the shoulder-elbow limb
    assert not drawn[150:, 120:].any() and not drawn[:40].any()  # far from it: untouched black
    assert drawn.mean() < 0.1
    tinted = Renderer(background=parse_color("#102030"), show_ids=False)(_noise(), [person(ARM)])
    assert tuple(tinted[190, 190]) == (0x30, 0x20, 0x10)  # BGR


def test_a_limb_below_the_score_threshold_is_not_drawn():
    p = person(ARM, kp_score=0.8)
    p.scores[p.skeleton.index("r_elbow")] = 0.3
    black = np.zeros((200, 200, 3), np.uint8)
    shown = Renderer(background=(0, 0, 0), min_score=0.2)(black, [p]).any(axis=2)
    hidden = Renderer(background=(0, 0, 0), min_score=0.5)(black, [p]).any(axis=2)
    assert shown[100, 60] and not hidden[100, 60]  # the shoulder-elbow limb's middle
    assert hidden[60, 80]  # the neck-shoulder limb (both ends 0.8) is still there


def test_thickness_changes_the_limb_width_and_scales_with_the_image_by_default():
    black = np.zeros((200, 200, 3), np.uint8)
    thin = Renderer(background=(0, 0, 0), thickness=3, radius=2)(black, [person(ARM)]).max(axis=2) > 128
    thick = Renderer(background=(0, 0, 0), thickness=11, radius=2)(black, [person(ARM)]).max(axis=2) > 128
    w_thin, w_thick = _width_at(thin, 100, slice(40, 80)), _width_at(thick, 100, slice(40, 80))
    assert 3 <= w_thin <= 6 and w_thick - w_thin == 8  # OpenCV's anti-aliased lines: about thickness + 2
    # default sizes follow the image: 4x the side, 4x the line
    small = Renderer().sizes((400, 400))
    large = Renderer().sizes((1600, 1600))
    assert large[0] == 4 * small[0] and large[1] == 4 * small[1]
    widths = []
    for side in (400, 1600):  # default line widths 2 and 8 px
        k = side / 200
        arm = person({name: (k * x, k * y) for name, (x, y) in ARM.items()})
        drawn = Renderer(background=(0, 0, 0), radius=2)(np.zeros((side, side, 3), np.uint8), [arm]).max(axis=2)
        widths.append(_width_at(drawn > 128, int(100 * k), slice(int(40 * k), int(80 * k))))
    assert widths[1] - widths[0] == 6


def test_ids_and_boxes_in_a_colour_that_stays_with_the_track():
    assert id_color(7) == id_color(7) and id_color(7) != id_color(8)
    assert len({id_color(i) for i in range(12)}) == 12
    black = np.zeros((200, 200, 3), np.uint8)
    for tid in (3, 4):
        out = Renderer(background=(0, 0, 0), show_boxes=True)(black, [person(ARM, track_id=tid)])
        assert tuple(int(v) for v in out[140, 80]) == id_color(tid)  # the box's bottom edge
    off = Renderer(background=(0, 0, 0), show_boxes=False, show_ids=False)(black, [person(ARM, track_id=3)])
    assert not off[140, 80].any() and not off[40:54, 60:80].any()  # no box, no id label


def test_original_alpha_is_kept_and_made_opaque_under_the_drawing():
    bgra = np.dstack([_noise(), np.zeros((200, 200), np.uint8)])
    bgra[:, :100, 3] = 128
    out = Renderer(show_ids=False)(bgra, [person(ARM)])
    assert out.shape == (200, 200, 4)
    assert out[100, 60, 3] == 255  # drawn: opaque
    assert out[190, 190, 3] == 0 and out[190, 10, 3] == 128  # elsewhere: as it was
    assert np.array_equal(out[190, 190, :3], bgra[190, 190, :3])


@pytest.mark.parametrize("bad", [{"thickness": 0}, {"radius": True}, {"min_score": float("nan")},
                                 {"alpha": 2.0}, {"background": (0, 0, 300)}])
def test_bad_settings_are_input_errors(bad):
    with pytest.raises(InputError):
        Renderer(**bad)


@pytest.mark.parametrize("text, bgr", [("black", (0, 0, 0)), ("#FF8000", (0, 128, 255)), ("255,0,10", (10, 0, 255))])
def test_colours(text, bgr):
    assert parse_color(text) == bgr


def test_cli_styles_and_their_usage_errors(tiny_model, tmp_path):
    a = photo(tmp_path / "a.png")
    out = tmp_path / "skel.png"
    r = invoke("image", a, "--render", out, "--background", "black", "--thickness", "5", "--boxes",
               "--no-ids", "--min-score", "0.3", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert not cv2.imread(str(out)).any()  # nobody found by the tiny model: all background
    for args, word in [(["--background", "plaid"], "--background"), (["--thickness", "0"], "--thickness"),
                       (["--min-score", "nan"], "--min-score"), (["--keep-alpha"], "--keep-alpha")]:
        bad = invoke("image", a, "--render", tmp_path / "x.jpg", *args, *fast(tiny_model))
        assert bad.exit_code == 2 and word in bad.output, (args, bad.output)
    assert not (tmp_path / "x.jpg").exists()


def test_cli_keep_alpha_writes_the_photo_transparency(tiny_model, tmp_path):
    bgra = np.dstack([_noise(120, 160), np.full((120, 160), 255, np.uint8)])
    bgra[:60, :, 3] = 0
    assert cv2.imwrite(str(tmp_path / "cut.png"), bgra)
    r = invoke("image", tmp_path / "cut.png", "--render", tmp_path / "o.png", "--keep-alpha", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    got = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    assert got.shape == (120, 160, 4) and np.array_equal(got[:, :, 3], bgra[:, :, 3])
