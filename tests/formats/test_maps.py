"""``--write-maps``: float16 heatmaps and PAFs per image or frame, with their letterbox; read back,
they give the parser the same people as the run that saved them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posecli.errors import InputError
from posecli.formats.maps import read_maps, write_maps
from posecli.inference.estimator import PoseEstimator

from tests.helpers import fast, invoke, photo, write_video


@pytest.fixture(scope="module")
def estimator(default_model):
    return PoseEstimator(str(default_model), device="cpu")


def test_real_photo_maps_reparse_to_the_same_people(mini_set, default_model, estimator, tmp_path):
    photos = mini_set["images"]
    # the maps are the first pass's: without the zoom-in pass they are all the people came from
    r = invoke("image", *photos, "--out", tmp_path / "p.json", "--write-maps", tmp_path / "maps",
               "-m", default_model, "--device", "cpu", "--no-zoom")
    assert r.exit_code == 0, r.output
    native = json.loads((tmp_path / "p.json").read_text())["images"]
    # the parser as `posecli image` set it (its default mode, accurate, keeps weaker peaks)
    same_settings = PoseEstimator(estimator.model, mode="accurate", zoom=False)
    for path, rec in zip(photos, native):
        saved = tmp_path / "maps" / f"{path.stem}.npz"
        with np.load(saved) as data:
            assert data["heatmaps"].dtype == np.float16 and data["pafs"].dtype == np.float16
            h, w = data["heatmaps"].shape[1:]
            assert data["heatmaps"].shape == (19, h, w) and data["pafs"].shape == (38, h, w)
            assert int(data["stride"]) == 8 and tuple(data["input_wh"]) == (8 * w, 8 * h)
            assert tuple(data["image_wh"]) == (rec["width"], rec["height"])
            assert tuple(data["parts"]) == estimator.skeleton.parts
        maps = read_maps(saved)
        assert maps.heatmaps.dtype == np.float32
        # the stored affine and the Maps method agree, and cell (0, 0) lands near the image's corner
        uv = np.array([[0.0, 0.0], [w - 1.0, h - 1.0], [3.5, 7.25]])
        affine = np.load(saved)["cell_to_image"]
        assert np.allclose(maps.cells_to_image(uv), uv @ affine[:, :2].T + affine[:, 2])
        assert np.all(np.abs(maps.cells_to_image([0, 0])) < 8)
        again = same_settings.parse(maps, source=str(path))
        assert len(again.people) == len(rec["people"])
        for p, want in zip(again.people, rec["people"]):
            assert p.score == pytest.approx(want["score"], abs=0.02)
            for name, kp in want["keypoints"].items():
                got = p.keypoint(name)
                assert (got is None) == (kp is None), name
                if kp is not None:
                    assert np.hypot(got[0] - kp[0], got[1] - kp[1]) < 0.5  # float16 rounding only


def test_video_frames_get_one_file_each(tiny_model, tmp_path):
    clip = write_video(tmp_path / "walk.mp4", 5)
    r = invoke("video", clip, "--out", tmp_path / "p.json", "--write-maps", tmp_path / "m", "--step", "2", "-q",
               *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [f"walk_{i:012d}.npz" for i in (0, 2, 4)]
    assert "Warning" not in r.stderr  # a few MB per minute


def test_warning_when_a_video_would_get_more_than_a_gigabyte_per_minute(tiny_model, tmp_path):
    clip = write_video(tmp_path / "hd.mp4", 2, size_wh=(192, 128), fps=30)
    opts = ["-m", tiny_model, "--device", "cpu", "--height", "512", "-P", "peak_threshold=0.99"]
    r = invoke("video", clip, "--out", tmp_path / "p.json", "--write-maps", tmp_path / "m", "-q", *opts)
    assert r.exit_code == 0, r.output
    assert "Warning: --write-maps writes about 1.3 GB per minute" in r.stderr  # 6144 cells x 57 x 2 B x 30/s
    assert len(list((tmp_path / "m").iterdir())) == 2


def test_maps_round_trip_exactly_in_float16(tmp_path, estimator):
    from posecli.maps import Letterbox, Maps

    rng = np.random.default_rng(0)
    box = Letterbox((500, 333), (384, 256), (384, 256))
    maps = Maps(rng.random((19, 32, 48), np.float32), rng.standard_normal((38, 32, 48)).astype(np.float32), box, 8)
    write_maps(tmp_path / "m.npz", maps, estimator.skeleton)
    back = read_maps(tmp_path / "m.npz")
    assert back.box == box and back.stride == 8
    assert np.array_equal(back.heatmaps, maps.heatmaps.astype(np.float16).astype(np.float32))
    # a cell centre maps to the image pixel the letterbox says
    assert np.allclose(maps.cell_to_image_affine() @ [2, 3, 1], box.to_image(np.array([2 * 8 + 3.5, 3 * 8 + 3.5])))


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"hello"])
def test_reading_something_else_is_an_input_error(tmp_path, content):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_maps(bad)
    assert str(bad) in str(info.value)


def test_unwritable_maps_folder_fails_before_any_work(tiny_model, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    a = photo(tmp_path / "a.jpg")
    r = invoke("image", a, "--out", tmp_path / "a.json", "--write-maps", blocker, *fast(tiny_model))
    assert r.exit_code == 2 and "--write-maps" in r.output  # a file where a folder belongs: usage
    r = invoke("image", a, "--out", tmp_path / "a.json", "--write-maps", blocker / "sub", *fast(tiny_model))
    assert r.exit_code == 1 and r.stderr.startswith(f"Error: {blocker / 'sub'}: ")
    assert not (tmp_path / "a.json").exists()


def test_batch_writes_maps_mirroring_the_folder_and_they_reparse(mini_set, default_model, estimator, tmp_path):
    import shutil

    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    photo_path = shutil.copy(mini_set["images"][0], root / "sub" / "a.jpg")
    write_video(root / "clip.mp4", 3)
    out, maps = tmp_path / "out", tmp_path / "maps"
    r = invoke("batch", root, "--out", out, "-R", "--write-maps", maps, "-q", "--no-zoom",
               "-m", default_model, "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert sorted(p.relative_to(maps).as_posix() for p in maps.rglob("*.npz")) == [
        "clip.mp4/clip_000000000000.npz", "clip.mp4/clip_000000000001.npz", "clip.mp4/clip_000000000002.npz",
        "sub/a.jpg.npz"]
    rec = json.loads((out / "sub" / "a.json").read_text())["images"][0]
    again = estimator.parse(read_maps(maps / "sub" / "a.jpg.npz"), source=str(photo_path))
    assert len(again.people) == len(rec["people"]) > 0
    rerun = invoke("batch", root, "--out", out, "-R", "--write-maps", maps, "-m", default_model, "--device", "cpu")
    assert rerun.exit_code == 0 and "0 to do" in rerun.stderr


def test_batch_maps_on_ray_is_a_usage_error(tiny_model, tmp_path):
    (tmp_path / "in").mkdir()
    photo(tmp_path / "in" / "a.jpg")
    r = invoke("batch", tmp_path / "in", "--out", tmp_path / "out", "--write-maps", tmp_path / "m",
               "--engine", "ray", *fast(tiny_model))
    assert r.exit_code == 2 and "--write-maps goes with --engine local" in r.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "m").exists()
