"""Odd image inputs (io.images and `posecli image`): missing, empty, truncated, pixel
formats, EXIF orientation, tiny, strip and huge photos, file names. One clear line or correct results.

Plumbing runs on the tiny generated model; the real default model only where real detections matter.
"""

from __future__ import annotations

import json
import os
import resource
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

from posecli.errors import InputError
from posecli.inference.preprocess import from_reduced
from posecli.io.images import read_header, read_image, read_image_reduced

from tests.helpers import (
    fast,
    not_utf8,
    photo,
    posecli_cmd,
    run,
    subprocess_env,
    temp_files,
    truncated_copy,
    without_file_powers,
)

SKIER = "000000000785.jpg"  # one skier, 640x425


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
        "directory": (tmp / "folder.jpg", "is a directory, not a file (for a folder: posecli batch {path} --out "
                                          "poses/, or a glob: posecli image {path}/*.jpg)"),
        "zero bytes": (tmp / "zero.jpg", "file is empty (0 bytes)"),
        "truncated JPEG": (truncated_copy(good, tmp / "cut.jpg", 0.6),
                           "truncated JPEG (the file ends before the image data does)"),
        "truncated PNG": (truncated_copy(png, tmp / "cut.png", 0.6),
                          "truncated PNG (the file ends before the image data does)"),
        "random bytes": (tmp / "random.jpg", "not a readable image (corrupt or unsupported format)"),
        "text as .mp4": (tmp / "notes.mp4", "not an image ('.mp4' is a video extension: use posecli video)"),
    }


def test_the_folder_hint_is_a_command_that_works_in_a_shell(tiny_model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        photo(folder / name)
    r = run("image", folder, *fast(tiny_model))
    assert r.exit_code == 1
    hint = r.stderr.strip().rsplit("or a glob: posecli image ", 1)[1].rstrip(")")
    out = tmp_path / "out"
    words = " ".join(posecli_cmd("image")) + f" {hint} --out {out}/ -q " + " ".join(fast(tiny_model))
    done = subprocess.run(["sh", "-c", words], capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "b.json"]


BAD_INPUTS = ["nonexistent", "directory", "zero bytes", "truncated JPEG", "truncated PNG", "random bytes",
              "text as .mp4"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_image_input_is_one_line_exit_1_and_no_output(case, tiny_model, tmp_path):
    path, problem = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.json"
    r = run("image", path, "--out", out, *fast(tiny_model))
    assert r.exit_code == 1
    assert r.stderr == f"Error: {path}: {problem.format(path=path)}\n"
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
                                                           mini_set, tmp_path):
    out = tmp_path / "huge.json"

    def peak_mib(photo: Path, result: Path) -> float:
        """Peak RSS of one ``posecli image`` process alone, measured by a parent that runs only it."""
        probe = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
                 "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        cmd = [sys.executable, "-c", probe, *posecli_cmd("image", photo, "--out", result, "-m", default_model,
                                                         "--device", "cpu")]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120)
        rc, peak_kib = map(int, proc.stdout.split())
        assert rc == 0, proc.stderr
        return peak_kib / 1024

    # What the process costs on the 640x425 original (runtimes, model, libraries: 230-250 MiB here,
    # more in a freshly installed venv whose libraries map in larger pages) is the baseline; the
    # 96-megapixel photo may add a fraction of its full decode (measured: 27 MiB), never all of it.
    baseline = peak_mib(mini_set["dir"] / SKIER, tmp_path / "small.json")
    huge = peak_mib(huge_skier, out)
    decoded_mib = 12000 * 8000 * 3 / 2**20  # 275 MiB: the full image decoded once
    assert huge - baseline < decoded_mib / 4, f"peak RSS {huge:.0f} MiB against {baseline:.0f} MiB for the original"
    doc = json.loads(out.read_text())["images"][0]
    assert (doc["width"], doc["height"]) == (12000, 8000)
    # Keypoints on the body: those of the 640x425 original, scaled up (same mode as `posecli image`).
    from posecli.inference.estimator import PoseEstimator

    ref = _main_person(PoseEstimator(real_estimator.model, mode="accurate")(read_image(mini_set["dir"] / SKIER)))
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
# Issue 19: hostile photos and names; one bad photo never stops the others
# ---------------------------------------------------------------------------------------------
def _png_declaring(path: Path, width: int, height: int) -> Path:
    """A small, well-formed PNG whose header declares ``width`` x ``height`` (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 2_000_000, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.slow
def test_bombs_and_huge_files_are_refused_before_decoding_and_the_rest_processed(tiny_model, tmp_path):
    bomb = _png_declaring(tmp_path / "bomb.png", 40000, 40000)
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(3 * 2**30)  # sparse: 3 GiB of nothing on disk
    good = photo(tmp_path / "good.jpg")
    out = tmp_path / "o.json"
    cmd = posecli_cmd("image", bomb, huge, good, "--out", out, *fast(tiny_model))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), check=False, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30)))
    assert proc.returncode == 1
    assert proc.stderr == (f"Error: {bomb}: PNG declares 40000 x 40000 pixels (1600 megapixels), over the limit "
                           f"of 268 megapixels\n"
                           f"Error: {huge}: file is 3.0 GiB, over the limit of 1 GiB for an image\n")
    assert [im["file"] for im in json.loads(out.read_text())["images"]] == [str(good)]


def test_names_that_are_not_utf8_work_and_newlines_stay_on_one_line(tiny_model, tmp_path):
    odd = photo(tmp_path / "plain.jpg").rename(not_utf8(tmp_path, b"caf\xe9", ".jpg"))  # cv2.imwrite cannot
    good = photo(tmp_path / "ok.jpg", seed=1)
    out = tmp_path / "o.json"
    r = run("image", good, odd, "--out", out, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    files = [im["file"] for im in json.loads(out.read_text(encoding="utf-8"))["images"]]
    assert files == [str(good), str(odd)]  # JSON keeps the undecodable byte as a \udcXX escape
    assert os.fsencode(files[1]) == os.fsencode(str(odd))
    newline = tmp_path / "two\nlines.jpg"
    r = run("image", newline, good, "--out", out, *fast(tiny_model))
    assert r.exit_code == 1
    assert r.stderr == f"Error: {tmp_path}/two\\nlines.jpg: no such file\n"


@pytest.mark.slow
def test_an_unreadable_photo_is_that_photos_error_not_a_usage_error(tiny_model, tmp_path):
    prefix = without_file_powers()
    if prefix is None:
        pytest.skip("root without setpriv cannot make a file unreadable to itself")
    good = photo(tmp_path / "ok.jpg")
    secret = photo(tmp_path / "secret.jpg", seed=1)
    secret.chmod(0)
    out = tmp_path / "o.json"
    proc = subprocess.run([*prefix, *posecli_cmd("image", secret, good, "--out", out, *fast(tiny_model))],
                          capture_output=True, text=True, env=subprocess_env(), check=False, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == f"Error: {secret}: permission denied\n"
    assert [im["file"] for im in json.loads(out.read_text())["images"]] == [str(good)]


@pytest.mark.slow
def test_a_fifo_and_dev_stdin_are_read_as_streams(tiny_model, tmp_path):
    src = photo(tmp_path / "src.jpg")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(src.read_bytes()), daemon=True)
    writer.start()
    r = run("image", fifo, *fast(tiny_model))
    writer.join(30)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["images"][0]["width"] == 160
    proc = subprocess.run(posecli_cmd("image", "/dev/stdin", *fast(tiny_model)), input=src.read_bytes(),
                          capture_output=True, env=subprocess_env(), check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["images"][0]["height"] == 120


def test_progress_for_many_photos_in_a_log_is_plain_lines(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("POSECLI_PROGRESS_SECONDS", "0")  # a line per photo; stderr is no terminal here
    photos = [photo(tmp_path / f"p{i}.jpg", seed=i) for i in range(3)]
    r = run("image", *photos, "--out", tmp_path / "o.json", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert [line.split(",")[0] for line in lines] == ["photos: 1/3 photos (33%)", "photos: 2/3 photos (67%)",
                                                     "photos: 3/3 photos (100%)"]  # the last line once
    assert "\r" not in r.stderr and "\x1b" not in r.stderr
    quiet = run("image", *photos, "--out", tmp_path / "o.json", "-q", *fast(tiny_model))
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_keypoints_stay_inside_the_image(tiny_model, tmp_path):
    """People cut by the image's edges: peaks found in the letterbox padding or past the edge
    land on the edge pixels, never outside (x in [0, W - 1], y in [0, H - 1])."""
    from posecli.inference.estimator import PoseEstimator
    from posecli.maps import Letterbox, Maps

    from tests.helpers import render, scene

    kp, size_hw = scene("border", seed=3)
    heat, pafs = render(kp, size_hw)
    est = PoseEstimator(tiny_model, device="cpu", parser_options={"min_parts": 1, "min_score": 0.0})
    input_wh = (size_hw[1] * 8, size_hw[0] * 8)
    box = Letterbox(image_wh=(400, 220), resized_wh=(400, 220), input_wh=input_wh)  # the rest is padding
    frame = est.parse(Maps(heat, pafs, box, 8))
    xy = np.concatenate([p.xy[p.visible] for p in frame.people])
    assert len(frame.people) >= 3 and len(xy) > 20
    assert (xy[:, 0] >= 0).all() and (xy[:, 0] <= 399).all() and (xy[:, 1] >= 0).all() and (xy[:, 1] <= 219).all()
    assert (xy[:, 0] == 399).any() or (xy[:, 1] == 219).any()  # some were past the edge
