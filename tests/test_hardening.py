"""Hardening (issue 7): odd inputs get one clear line or correct results; faults and
interruptions never leave corrupt output nor lose finished results.

Plumbing runs on the tiny generated model; the real default model only where real
detections matter (EXIF rotation, no people, a very large photo).
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from posecli.cli import main
from posecli.errors import InputError
from posecli.inference.preprocess import from_reduced
from posecli.io.images import read_header, read_image, read_image_reduced

from .conftest import make_tiny_model
from .test_sources import truncated_copy, write_video

REPO = Path(__file__).resolve().parents[1]
SKIER = "000000000785.jpg"  # one skier, 640x425


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def fast(model: Path) -> list[str]:
    """The tiny model, quick: small input, and no peaks (its maps are ~0.5 everywhere)."""
    return ["-m", str(model), "--device", "cpu", "--height", "64", "-P", "peak_threshold=0.99"]


def photo(path: Path, size_hw=(120, 160), seed: int = 0) -> Path:
    image = np.random.default_rng(seed).integers(0, 255, (*size_hw, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def temp_files(folder: Path) -> list[Path]:
    """Leftover temporary files of atomic writes (``.NAME.xxxx.tmp``) anywhere under ``folder``."""
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp") or ".posecli-probe-" in p.name]


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def posecli_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "posecli", *[str(a) for a in args]]


# ---------------------------------------------------------------------------------------------
# Image files that are missing, empty, truncated or not images
# ---------------------------------------------------------------------------------------------
def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = photo(tmp / "good.jpg", (200, 300))
    png = photo(tmp / "good.png", (60, 80))
    (tmp / "folder.jpg").mkdir()
    (tmp / "zero.jpg").write_bytes(b"")
    (tmp / "random.jpg").write_bytes(np.random.default_rng(1).bytes(4096))
    (tmp / "notes.mp4").write_text("a text file named like a video\n" * 20)
    return {
        "nonexistent": (tmp / "nope.jpg", "no such file"),
        "directory": (tmp / "folder.jpg", "is a directory, not a file"),
        "zero bytes": (tmp / "zero.jpg", "file is empty (0 bytes)"),
        "truncated JPEG": (truncated_copy(good, tmp / "cut.jpg", 0.6),
                           "truncated JPEG (the file ends before the image data does)"),
        "truncated PNG": (truncated_copy(png, tmp / "cut.png", 0.6),
                          "truncated PNG (the file ends before the image data does)"),
        "random bytes": (tmp / "random.jpg", "not a readable image (corrupt or unsupported format)"),
        "text as .mp4": (tmp / "notes.mp4", "not an image ('.mp4' is a video extension: use 'posecli video')"),
    }


BAD_INPUTS = ["nonexistent", "directory", "zero bytes", "truncated JPEG", "truncated PNG", "random bytes",
              "text as .mp4"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_image_input_is_one_line_exit_1_and_no_output(case, tiny_model, tmp_path):
    path, problem = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.json"
    r = run("image", path, "--out", out, *fast(tiny_model))
    assert r.exit_code == 1
    assert r.stderr == f"Error: {path}: {problem}\n"
    assert not out.exists() and not temp_files(tmp_path)


def test_truncated_jpeg_is_an_error_whatever_opencv_would_decode(tmp_path):
    """Decision: a truncated JPEG is refused, never processed as a partly grey picture
    (OpenCV 4 decodes what it can and greys the rest; posecli checks the markers itself)."""
    data = (photo(tmp_path / "a.jpg", (200, 300))).read_bytes()
    for cut in (len(data) // 3, len(data) - 2):  # mid-scan, and only the end-of-image marker missing
        header = read_header(data[:cut])
        assert header.kind == "JPEG" and header.size_wh == (300, 200) and not header.complete
    assert read_header(data).complete
    assert read_header(data + b"appended video or trailer").complete  # data after EOI is not ours
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) - 2])
    with pytest.raises(InputError, match="truncated JPEG"):
        read_image(path)


def test_good_photos_survive_bad_ones_in_the_same_run(tiny_model, tmp_path):
    cases = _bad_inputs(tmp_path)
    good = tmp_path / "good.jpg"
    out = tmp_path / "out.json"
    bad = [cases[c][0] for c in BAD_INPUTS]
    r = run("image", *bad, good, "--out", out, *fast(tiny_model))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == len(bad)
    doc = json.loads(out.read_text())
    assert doc["complete"] is True and [im["file"] for im in doc["images"]] == [str(good)]


def test_batch_given_a_file_instead_of_a_folder(tiny_model, tmp_path):
    pytest.importorskip("posecli.cli.batch")
    a = photo(tmp_path / "a.jpg")
    r = run("batch", a, "--out", tmp_path / "out", *fast(tiny_model))
    assert r.exit_code == 1 and r.stderr == f"Error: {a}: not a folder\n"


# ---------------------------------------------------------------------------------------------
# Pixel formats
# ---------------------------------------------------------------------------------------------
def test_gray_16_bit_and_alpha_pngs_become_8_bit_bgr(tmp_path):
    rng = np.random.default_rng(2)
    bgr = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    alpha = np.zeros((30, 40), np.uint8)
    alpha[:, 20:] = 255
    alpha[:10, :] = 128
    cases = {
        "gray": (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)),
        "gray16": (bgr[..., 0].astype(np.uint16) * 257, np.repeat(bgr[..., :1], 3, axis=2)),
        "bgr16": (bgr.astype(np.uint16) * 257, bgr),
        "bgra": (np.dstack([bgr, alpha]), None),
        "bgra16": (np.dstack([bgr, alpha]).astype(np.uint16) * 257, None),
    }
    # alpha composited over white: transparent -> 255, opaque -> the colour, half -> between
    a = alpha[..., None].astype(np.float64) / 255
    over_white = np.round(bgr * a + 255 * (1 - a)).astype(np.uint8)
    for name, (pixels, expected) in cases.items():
        path = tmp_path / f"{name}.png"
        assert cv2.imwrite(str(path), pixels)
        got = read_image(path)
        assert got.shape == (30, 40, 3) and got.dtype == np.uint8, name
        want = over_white if expected is None else expected
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, name
    assert (read_image(tmp_path / "bgra.png")[10:, :20] == 255).all()  # transparent is white


@pytest.mark.parametrize("kind", ["gray", "16-bit", "alpha"])
def test_cli_processes_gray_16_bit_and_alpha_pngs(kind, tiny_model, tmp_path):
    base = np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    pixels = {"gray": base[..., 0], "16-bit": base.astype(np.uint16) * 257,
              "alpha": np.dstack([base, np.full((48, 64), 200, np.uint8)])}[kind]
    path = tmp_path / "p.png"
    assert cv2.imwrite(str(path), pixels)
    r = run("image", path, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    im = json.loads(r.stdout)["images"][0]
    assert (im["width"], im["height"]) == (64, 48)


# ---------------------------------------------------------------------------------------------
# EXIF orientation
# ---------------------------------------------------------------------------------------------
def _tiff_with_orientation(orientation: int, big_endian: bool = False) -> bytes:
    """EXIF (TIFF) bytes whose IFD0 holds one entry: Orientation (0x0112), SHORT."""
    e = ">" if big_endian else "<"
    head = b"MM\x00*" if big_endian else b"II*\x00"
    entry = struct.pack(e + "HHI", 0x0112, 3, 1) + struct.pack(e + "HH", orientation, 0)
    return head + struct.pack(e + "I", 8) + struct.pack(e + "H", 1) + entry + struct.pack(e + "I", 0)


def exif_jpeg(stored: np.ndarray, orientation: int, big_endian: bool = False) -> bytes:
    """A JPEG of ``stored`` pixels with an APP1 Exif segment right after SOI."""
    ok, buf = cv2.imencode(".jpg", stored, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    payload = b"Exif\x00\x00" + _tiff_with_orientation(orientation, big_endian)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    data = buf.tobytes()
    return data[:2] + app1 + data[2:]


def exif_png(stored: np.ndarray, orientation: int) -> bytes:
    """A PNG of ``stored`` pixels with an eXIf chunk after IHDR."""
    ok, buf = cv2.imencode(".png", stored)
    assert ok
    data = buf.tobytes()
    body = _tiff_with_orientation(orientation)
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    ihdr_end = 8 + 8 + 13 + 4
    return data[:ihdr_end] + chunk + data[ihdr_end:]


# What a camera stores for an upright scene, per EXIF orientation (the spec's definitions).
STORED_FROM_UPRIGHT = {
    1: lambda im: im,
    2: lambda im: im[:, ::-1],
    3: lambda im: im[::-1, ::-1],
    4: lambda im: im[::-1, :],
    5: lambda im: im.transpose(1, 0, 2),
    6: lambda im: np.rot90(im, 1),  # viewers turn it 90 degrees clockwise
    7: lambda im: im[::-1, ::-1].transpose(1, 0, 2),
    8: lambda im: np.rot90(im, -1),  # viewers turn it 90 degrees anticlockwise
}


def _upright_test_image() -> np.ndarray:
    """An asymmetric 48x80 picture: any flip or turn changes it."""
    im = np.zeros((48, 80, 3), np.uint8)
    im[..., 0] = np.linspace(0, 250, 80, dtype=np.uint8)[None, :]
    im[..., 1] = np.linspace(0, 250, 48, dtype=np.uint8)[:, None]
    im[4:12, 6:30, 2] = 255
    return im


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_picture_viewers_show(orientation, tmp_path):
    upright = _upright_test_image()
    stored = np.ascontiguousarray(STORED_FROM_UPRIGHT[orientation](upright))
    png = tmp_path / "o.png"
    png.write_bytes(exif_png(stored, orientation))
    np.testing.assert_array_equal(read_image(png), upright)  # lossless: exact
    for big_endian in (False, True):
        jpg = tmp_path / "o.jpg"
        jpg.write_bytes(exif_jpeg(stored, orientation, big_endian))
        assert read_header(jpg.read_bytes()).orientation == orientation
        got = read_image(jpg)
        assert got.shape == upright.shape
        assert np.abs(got.astype(int) - upright.astype(int)).mean() < 4
        if _opencv_applies_exif(tmp_path):  # an independent check of our orientation table
            theirs = cv2.imdecode(np.fromfile(jpg, np.uint8), cv2.IMREAD_COLOR)
            assert np.abs(got.astype(int) - theirs.astype(int)).max() <= 1


def _opencv_applies_exif(tmp: Path) -> bool:
    """Whether this OpenCV's imdecode turns an orientation-6 JPEG (OpenCV 5 does)."""
    data = exif_jpeg(np.zeros((8, 16, 3), np.uint8), 6)
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (16, 8)


@pytest.fixture(scope="module")
def real_estimator(default_model):
    from posecli.inference.estimator import PoseEstimator

    return PoseEstimator(str(default_model), device="cpu")


def _main_person(frame) -> np.ndarray:
    assert frame.people, "nobody found"
    return frame.people[0].xy


@pytest.fixture(scope="module")
def skier_keypoints(real_estimator, mini_set) -> np.ndarray:
    """(K, 2) keypoints of the skier in the upright 640x425 photo."""
    return _main_person(real_estimator(read_image(mini_set["dir"] / SKIER)))


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotated_photo_keypoints_land_on_the_body(orientation, real_estimator, skier_keypoints, mini_set,
                                                       tmp_path):
    upright = cv2.imread(str(mini_set["dir"] / SKIER))
    stored = np.ascontiguousarray(STORED_FROM_UPRIGHT[orientation](upright))
    rotated = tmp_path / "rotated.jpg"
    rotated.write_bytes(exif_jpeg(stored, orientation))
    ref = skier_keypoints
    got_frame = real_estimator(read_image(rotated))
    assert got_frame.size_wh == (640, 425)
    got = _main_person(got_frame)
    both = np.isfinite(ref[:, 0]) & np.isfinite(got[:, 0])
    assert both.sum() >= 10
    err = np.linalg.norm(got[both] - ref[both], axis=1)
    assert err.max() < 4.0, f"keypoints off by up to {err.max():.1f} px"


def test_exif_rotated_photo_through_the_cli_reports_the_upright_size(tiny_model, tmp_path):
    stored = np.ascontiguousarray(STORED_FROM_UPRIGHT[6](_upright_test_image()))
    path = tmp_path / "turned.jpg"
    path.write_bytes(exif_jpeg(stored, 6))
    r = run("image", path, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    im = json.loads(r.stdout)["images"][0]
    assert (im["width"], im["height"]) == (80, 48)


# ---------------------------------------------------------------------------------------------
# Tiny, extreme and huge images; no people
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size_hw", [(1, 1), (1, 3000), (3000, 1)])
def test_one_pixel_and_strip_images_are_processed_quickly(size_hw, tiny_model, tmp_path):
    """A 3000x1 strip used to be blown up to a 256 x 768000 input (23 GB, minutes)."""
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), np.full((*size_hw, 3), 128, np.uint8))
    t0 = time.monotonic()
    r = run("image", path, "-m", tiny_model, "--device", "cpu", "-P", "peak_threshold=0.99")
    assert r.exit_code == 0, r.output
    assert time.monotonic() - t0 < 10
    im = json.loads(r.stdout)["images"][0]
    assert (im["height"], im["width"]) == size_hw and im["people"] == []


def test_reduced_decoding_maps_pixels_back_exactly(tmp_path):
    """A dot in a 4000x2400 JPEG, decoded at 1/8 and mapped back, lands where it was drawn."""
    image = np.zeros((2400, 4000, 3), np.uint8)
    cv2.circle(image, (3101, 777), 24, (255, 255, 255), -1)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    reduced = read_image_reduced(path, min_height=256)
    assert reduced.factor == 8 and reduced.size_wh == (4000, 2400) and reduced.image.shape == (300, 500, 3)
    gray = reduced.image[..., 0].astype(float)
    ys, xs = np.nonzero(gray > 0.5 * gray.max())
    w = gray[ys, xs]
    centroid = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    np.testing.assert_allclose(from_reduced(centroid, 8), [3101, 777], atol=1.5)
    assert read_image_reduced(path, min_height=2000).factor == 1  # never below what the network needs
    assert read_image_reduced(path, None).image.shape == (2400, 4000, 3)


@pytest.fixture(scope="module")
def huge_skier(mini_set, tmp_path_factory) -> Path:
    """The skier photo blown up to 12000x8000 (a 96-megapixel JPEG)."""
    path = tmp_path_factory.mktemp("huge") / "huge.jpg"
    image = cv2.resize(cv2.imread(str(mini_set["dir"] / SKIER)), (12000, 8000), interpolation=cv2.INTER_LINEAR)
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return path


def test_huge_photo_runs_at_network_size_with_small_memory(huge_skier, default_model, real_estimator,
                                                           skier_keypoints, tmp_path):
    out = tmp_path / "huge.json"
    # Peak RSS of the posecli process alone, measured by a parent that runs only it.
    probe = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
             "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    cmd = [sys.executable, "-c", probe, *posecli_cmd("image", huge_skier, "--out", out, "-m", default_model,
                                                     "--device", "cpu")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    rc, peak_kib = map(int, proc.stdout.split())
    assert rc == 0, proc.stderr
    decoded_mib = 12000 * 8000 * 3 / 2**20  # 275 MiB: the full image decoded once
    assert peak_kib / 1024 < decoded_mib, f"peak RSS {peak_kib / 1024:.0f} MiB"
    doc = json.loads(out.read_text())["images"][0]
    assert (doc["width"], doc["height"]) == (12000, 8000)
    # Keypoints on the body: those of the 640x425 original, scaled up.
    ref = skier_keypoints
    scale = np.array([12000 / 640, 8000 / 425])
    kps = doc["people"][0]["keypoints"]
    names = real_estimator.skeleton.parts
    got = np.array([kps[n][:2] if kps[n] else [np.nan, np.nan] for n in names], float)
    both = np.isfinite(ref[:, 0]) & np.isfinite(got[:, 0])
    assert both.sum() >= 10
    err = np.linalg.norm(got[both] / scale - ref[both], axis=1)  # in original-photo pixels
    assert np.median(err) < 3 and err.max() < 8


def test_photos_without_people_give_empty_lists(default_model, tmp_path):
    flat = tmp_path / "flat.jpg"
    cv2.imwrite(str(flat), np.full((480, 640, 3), 128, np.uint8))
    ramp = tmp_path / "ramp.png"
    cv2.imwrite(str(ramp), np.dstack([np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))] * 3))
    r = run("image", flat, ramp, "-m", default_model, "--device", "cpu")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["complete"] is True and [im["people"] for im in doc["images"]] == [[], []]


# ---------------------------------------------------------------------------------------------
# File names
# ---------------------------------------------------------------------------------------------
def test_names_with_spaces_unicode_and_leading_dashes(tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("with space.jpg", "ünïcödé 写真.png", "-dash.jpg", "--double.jpg"):
        photo(tmp_path / name, (40, 60))
    r = run("image", "with space.jpg", "ünïcödé 写真.png", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert [im["file"] for im in json.loads(r.stdout)["images"]] == ["with space.jpg", "ünïcödé 写真.png"]
    for args in (["--", "-dash.jpg", "--double.jpg"], ["./-dash.jpg", "./--double.jpg"]):
        r = run("image", *fast(tiny_model), *args)
        assert r.exit_code == 0, r.output
        assert len(json.loads(r.stdout)["images"]) == 2
    r = run("image", *fast(tiny_model), "-dash.jpg")  # without "--" it is an option: usage error
    assert r.exit_code == 2
    out = tmp_path / "pöses out"
    r = run("image", *fast(tiny_model), "--format", "openpose", "--out", out, "--", "ünïcödé 写真.png", "-dash.jpg")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["-dash_keypoints.json", "ünïcödé 写真_keypoints.json"]


# ---------------------------------------------------------------------------------------------
# Models (basic cases are in test_cli.py)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [b"", b"hello world\n" * 10, "truncated"])
def test_model_files_that_are_not_onnx(content, tmp_path):
    model = tmp_path / "m.onnx"
    if content == "truncated":
        make_tiny_model(model)
        model.write_bytes(model.read_bytes()[:3000])
    else:
        model.write_bytes(content)
    a = photo(tmp_path / "a.jpg")
    r = run("image", a, "--model", model)
    assert r.exit_code == 1
    assert r.stderr == f"Error: {model}: not an ONNX model (cannot be parsed)\n"


def test_model_without_metadata_with_a_broken_sidecar_or_wrong_profile(tmp_path):
    a = photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "bare.onnx", metadata=False)
    side = tmp_path / "bare.json"
    side.write_text("{not json")
    r = run("image", a, "--model", model)
    assert r.exit_code == 1 and r.stderr.startswith(f"Error: {side}: metadata is not valid JSON")
    side.unlink()
    r = run("image", a, "--model", model, "--profile", "body25")
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"Error: {model}: ") and "do not match skeleton 'body25'" in r.stderr
    r = run("image", a, "--model", model, "--profile", "nosuch")
    assert r.exit_code == 1 and "unknown skeleton profile 'nosuch'" in r.stderr


def test_model_whose_paf_outputs_do_not_match_the_skeleton(tmp_path):
    a = photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "wrong.onnx", paf_channels=10)
    r = run("image", a, "--model", model)
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"Error: {model}: output 'pafs' has 10 channels")


# ---------------------------------------------------------------------------------------------
# Outputs: atomic, checked before work, disk full
# ---------------------------------------------------------------------------------------------
def test_existing_output_survives_a_failed_run(tiny_model, tmp_path):
    out = tmp_path / "out.json"
    render = tmp_path / "r.jpg"
    out.write_text('{"old": true}\n')
    render.write_bytes(b"old render")
    r = run("image", tmp_path / "missing.jpg", "--out", out, "--render", render, *fast(tiny_model))
    assert r.exit_code == 1
    assert out.read_text() == '{"old": true}\n' and render.read_bytes() == b"old render"
    assert not temp_files(tmp_path)


def test_interrupted_run_leaves_the_old_output_and_no_temporary_file(tiny_model, tmp_path, monkeypatch):
    from posecli.inference.estimator import PoseEstimator

    out = tmp_path / "out.json"
    out.write_text('{"old": true}\n')
    photos = [photo(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    real_call = PoseEstimator.__call__
    calls = []

    def call(self, image, source=""):
        calls.append(source)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_call(self, image, source)

    monkeypatch.setattr(PoseEstimator, "__call__", call)
    r = run("image", *photos, "--out", out, *fast(tiny_model))
    assert r.exit_code == 130 and r.stderr == f"Interrupted: nothing written to {out}.\n"
    assert out.read_text() == '{"old": true}\n' and not temp_files(tmp_path)
    calls.clear()
    folder = tmp_path / "poses"
    r = run("image", *photos, "--out", folder, "--format", "openpose", *fast(tiny_model))
    assert r.exit_code == 130 and r.stderr == f"Interrupted: 1 of 3 photos written to {folder}.\n"
    assert [p.name for p in folder.iterdir()] == ["0_keypoints.json"] and not temp_files(tmp_path)


def test_outputs_get_the_usual_file_mode_not_mkstemps_0600(tiny_model, tmp_path):
    a = photo(tmp_path / "a.jpg")
    r = run("image", a, "--out", tmp_path / "a.json", "--render", tmp_path / "a_pose.jpg", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("a.json", "a_pose.jpg"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask


def test_out_with_a_trailing_slash_is_a_directory(tiny_model, tmp_path):
    a = photo(tmp_path / "a.jpg")
    r = run("image", a, "--out", f"{tmp_path / 'new'}{os.sep}", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert (tmp_path / "new").is_dir() and json.loads((tmp_path / "new" / "a.json").read_text())["complete"]


def test_output_under_a_regular_file_fails_before_any_work(tmp_path):
    a = photo(tmp_path / "a.jpg")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    missing_model = tmp_path / "no-model.onnx"  # the output is checked first, so this is never read
    r = run("image", a, "--out", blocker / "out.json", "--model", missing_model)
    assert r.exit_code == 1 and r.stderr == f"Error: {blocker}: is not a directory\n"
    r = run("image", a, "--out", f"{blocker / 'sub'}{os.sep}", "--model", missing_model)
    assert r.exit_code == 1
    assert r.stderr == f"Error: {blocker / 'sub'}: cannot create output directory (Not a directory)\n"
    r = run("image", a, "--render", blocker / "r.jpg", "--model", missing_model)
    assert r.exit_code == 1 and r.stderr == f"Error: {blocker}: is not a directory\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0o500 directory anyway; "
                    "test_output_under_a_regular_file_fails_before_any_work covers the check")
def test_read_only_output_directory_fails_before_any_work(tmp_path):
    a = photo(tmp_path / "a.jpg")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        r = run("image", a, "--out", locked / "out.json", "--model", tmp_path / "no-model.onnx")
        assert r.exit_code == 1
        assert r.stderr.startswith(f"Error: {locked}: output directory is not writable")
    finally:
        locked.chmod(0o700)


def _file_size_limit(limit: int):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("photos, limit", [(1, 300), (150, 1500)])  # fails at the last flush / while streaming
def test_disk_full_is_one_clear_line_and_leaves_the_old_file(photos, limit, tiny_model, tmp_path):
    a = photo(tmp_path / "a.png", (8, 8))
    out = tmp_path / "out.json"
    out.write_text('{"old": true}\n')
    cmd = posecli_cmd("image", *[a] * photos, "--out", out, *fast(tiny_model))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=60,
                          preexec_fn=_file_size_limit(limit))
    assert proc.returncode == 1
    assert proc.stderr == f"Error: {out}: write failed (File too large)\n"
    assert out.read_text() == '{"old": true}\n' and not temp_files(tmp_path)


def test_disk_full_during_a_video_leaves_no_corrupt_file(tiny_model, tmp_path):
    clip = write_video(tmp_path / "clip.avi", 60, size_wh=(64, 48))
    out = tmp_path / "poses.json"
    cmd = posecli_cmd("video", clip, "--out", out, "-q", *fast(tiny_model))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=60,
                          preexec_fn=_file_size_limit(3000))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(f"Error: {out}: write failed (File too large)")
    assert "Traceback" not in proc.stderr
    if out.exists():  # only as complete-so-far valid JSON
        assert json.loads(out.read_text())["complete"] is False
    assert not temp_files(tmp_path)


# ---------------------------------------------------------------------------------------------
# Videos and folders
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix, problem", [(".mp4", "not a readable video (corrupt or unsupported format)"),
                                             (".avi", "video has no decodable frames")])
def test_video_with_zero_frames(suffix, problem, tiny_model, tmp_path):
    clip = write_video(tmp_path / f"zero{suffix}", 0)
    out = tmp_path / "poses.json"
    r = run("video", clip, "--out", out, "-q", *fast(tiny_model))
    assert r.exit_code == 1 and r.stderr == f"Error: {clip}: {problem}\n"
    assert not out.exists() and not temp_files(tmp_path)


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_whose_later_frames_are_corrupt(suffix, tiny_model, tmp_path):
    clip = write_video(tmp_path / f"clip{suffix}", 40, size_wh=(160, 120))
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(1)
    for off in range(int(len(data) * 0.6), int(len(data) * 0.9), 997):  # garbage over the later frames
        data[off : off + 64] = rng.bytes(64)
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(bytes(data))
    out = tmp_path / "poses.json"
    r = run("video", bad, "--out", out, "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    n = len(doc["frames"])
    assert 10 <= n < 40 and [f["frame"] for f in doc["frames"]] == list(range(n))
    assert f"stopped at frame {n} of 40" in doc["decode_error"]
    assert re.fullmatch(rf"Warning: {re.escape(str(bad))}: stopped at frame {n} of 40: .*\n", r.stderr)


def _mp4_with_variable_frame_rate(src: Path, dst: Path, fast_from: int) -> list[float]:
    """Rewrite the stts box of an OpenCV-written MP4 so frames from ``fast_from`` on last
    half as long; returns every frame's presentation time in seconds.

    OpenCV writes moov after mdat, so growing moov shifts no chunk offset.
    """
    data = bytearray(src.read_bytes())
    containers = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}

    def find(start: int, end: int, chain: list[int]):
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            if kind == b"stts":
                return chain + [pos]
            if kind in containers and (found := find(pos + 8, pos + size, chain + [pos])):
                return found
            pos += max(size, 8)
        return None

    chain = find(0, len(data), [])
    assert chain and data.find(b"mdat") < chain[0], "unexpected MP4 layout"
    stts = chain[-1]
    size, _, _, entries = struct.unpack(">I4sII", data[stts : stts + 16])
    n, delta = struct.unpack(">II", data[stts + 16 : stts + 24])
    assert entries == 1 and delta % 2 == 0
    table = struct.pack(">IIII", fast_from, delta, n - fast_from, delta // 2)
    box = struct.pack(">I4sII", 16 + len(table), b"stts", 0, 2) + table
    for pos in chain[:-1]:
        struct.pack_into(">I", data, pos, struct.unpack(">I", data[pos : pos + 4])[0] + len(box) - size)
    data[stts : stts + size] = box
    dst.write_bytes(bytes(data))
    step = 1 / 10  # write_video's frame rate
    return [i * step if i <= fast_from else fast_from * step + (i - fast_from) * step / 2 for i in range(n)]


def test_variable_frame_rate_video_keeps_each_frames_time(tiny_model, tmp_path):
    cfr = write_video(tmp_path / "cfr.mp4", 20)
    times = _mp4_with_variable_frame_rate(cfr, tmp_path / "vfr.mp4", 10)
    out = tmp_path / "poses.json"
    r = run("video", tmp_path / "vfr.mp4", "--out", out, "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    frames = json.loads(out.read_text())["frames"]
    assert [f["frame"] for f in frames] == list(range(20))
    np.testing.assert_allclose([f["time"] for f in frames], times, atol=0.002)


def test_vfr_helper_really_makes_a_variable_frame_rate_clip(tmp_path):
    cfr = write_video(tmp_path / "cfr.mp4", 20)
    times = _mp4_with_variable_frame_rate(cfr, tmp_path / "vfr.mp4", 10)
    cap = cv2.VideoCapture(str(tmp_path / "vfr.mp4"))
    seen = []
    while cap.read()[0]:
        seen.append(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    cap.release()
    np.testing.assert_allclose(seen, times, atol=0.002)


def test_unsupported_files_in_a_folder_are_skipped_and_counted(tiny_model, tmp_path):
    pytest.importorskip("posecli.cli.batch")
    root = tmp_path / "in"
    root.mkdir()
    photo(root / "a.jpg")
    photo(root / "b.PNG", seed=1)
    (root / "notes.txt").write_text("x")
    (root / "data.csv").write_text("1,2")
    (root / "archive.tar.gz").write_bytes(b"\x1f\x8b")
    (root / ".hidden.jpg").write_bytes(b"ignored, hidden")
    out = tmp_path / "out"
    r = run("batch", root, "--out", out, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert "2 inputs, 2 to do, 3 other files skipped" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json"]


# ---------------------------------------------------------------------------------------------
# SIGINT / SIGTERM to a real process
# ---------------------------------------------------------------------------------------------
def _signal_when(cmd: list[str], cwd: Path, ready, sig: int) -> tuple[int, str, float]:
    """Run ``cmd``; once ``ready()`` is true send ``sig``. Returns (exit code, stderr, seconds to stop)."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=subprocess_env(), cwd=cwd)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read1(4096), b"")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not ready():
            assert proc.poll() is None, "finished before the signal: " + b"".join(chunks).decode(errors="replace")[-300:]
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.005)
        proc.send_signal(sig)
        t0 = time.monotonic()
        code = proc.wait(30)
        stop_s = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    return code, b"".join(chunks).decode(errors="replace"), stop_s


SIGNALS = [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, "Terminated")]


@pytest.mark.parametrize("sig, code, word", SIGNALS)
def test_signal_during_batch_keeps_finished_results_and_a_rerun_resumes(sig, code, word, tiny_model, tmp_path):
    pytest.importorskip("posecli.cli.batch")
    root = tmp_path / "in"
    root.mkdir()
    for i in range(3):
        photo(root / f"a{i}.jpg", seed=i)
    write_video(root / "z.mp4", 250, size_wh=(160, 120))  # sorted last: the signal lands in it
    out = tmp_path / "out"
    opts = ["-m", tiny_model, "--device", "cpu", "--height", "768", "--scales", "1,0.9", "-P", "peak_threshold=0.99"]
    cmd = posecli_cmd("batch", root, "--out", out, *opts)
    images_done = lambda: all((out / f"a{i}.json").exists() for i in range(3))  # noqa: E731
    exit_code, stderr, stop_s = _signal_when(cmd, tmp_path, images_done, sig)
    assert exit_code == code, stderr[-500:]
    assert stop_s < 2.0, f"took {stop_s:.1f} s to stop"
    assert f"{word}: 3 of 4 inputs done" in stderr and "Traceback" not in stderr
    assert sorted(p.name for p in out.iterdir()) == ["a0.json", "a1.json", "a2.json"]  # nothing partial
    for i in range(3):
        doc = json.loads((out / f"a{i}.json").read_text())
        assert doc["complete"] is True and len(doc["images"]) == 1
    if sig != signal.SIGINT:
        return  # one rerun is enough to show resuming
    again = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert again.returncode == 0, again.stderr[-500:]
    assert "4 inputs, 1 to do, 3 already done" in again.stderr
    doc = json.loads((out / "z.json").read_text())
    assert doc["complete"] is True and len(doc["frames"]) == 250
    assert not temp_files(out)


@pytest.mark.parametrize("sig, code, word", SIGNALS)
def test_signal_during_video_stops_fast_keeps_valid_json_and_a_rerun_completes(sig, code, word, tiny_model,
                                                                                tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 250, size_wh=(160, 120))
    out = tmp_path / "poses.json"
    opts = ["-m", tiny_model, "--device", "cpu", "--height", "768", "--scales", "1,0.9", "-P", "peak_threshold=0.99"]
    cmd = posecli_cmd("video", clip, "--out", out, *opts)
    tmp_json = lambda: any(p.stat().st_size > 2000 for p in tmp_path.glob(".poses.json.*.tmp"))  # noqa: E731
    exit_code, stderr, stop_s = _signal_when(cmd, tmp_path, tmp_json, sig)
    assert exit_code == code, stderr[-500:]
    assert stop_s < 2.0, f"took {stop_s:.1f} s to stop"
    doc = json.loads(out.read_text())  # complete-so-far, valid
    n = len(doc["frames"])
    assert doc["complete"] is False and 1 <= n < 250
    assert [f["frame"] for f in doc["frames"]] == list(range(n))
    assert f"{word}: {n} frames written" in stderr and not temp_files(tmp_path)
    if sig == signal.SIGINT:  # the same command again replaces it with the whole clip
        again = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert again.returncode == 0, again.stderr[-500:]
        doc = json.loads(out.read_text())
        assert doc["complete"] is True and len(doc["frames"]) == 250


@pytest.mark.parametrize("sig, code, word", SIGNALS)
def test_signal_during_image_leaves_finished_photos_and_no_temporary_file(sig, code, word, tiny_model, tmp_path):
    photos = [photo(tmp_path / f"p{i:03d}.jpg", (240, 320), seed=i) for i in range(300)]
    out = tmp_path / "poses"
    out.mkdir()
    cmd = posecli_cmd("image", *photos, "--out", out, "-m", tiny_model, "--device", "cpu", "-P", "peak_threshold=0.99")
    exit_code, stderr, stop_s = _signal_when(cmd, tmp_path, lambda: len(list(out.glob("p*.json"))) >= 3, sig)
    assert exit_code == code, stderr[-500:]
    assert stop_s < 2.0, f"took {stop_s:.1f} s to stop"
    n = int(re.search(rf"{word}: (\d+) of 300 photos written".encode(), stderr.encode()).group(1))
    written = sorted(out.iterdir())
    assert 3 <= n < 300 and [p.name for p in written] == [f"p{i:03d}.json" for i in range(n)]
    assert all(json.loads(p.read_text())["complete"] is True for p in written)
    assert not temp_files(tmp_path)
