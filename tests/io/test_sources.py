"""SOURCE strings (cameras, URLs, folders, globs, files) and folders of frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from posecli.errors import ConfigError, InputError
from posecli.io.source_spec import parse_source
from posecli.io.sources import FrameFolder, natural_key, open_source

from tests.helpers import write_video


@pytest.mark.parametrize("text, kind, camera", [("0", "camera", 0), ("12", "camera", 12),
                                                 ("/dev/video2", "camera", "/dev/video2")])
def test_numbers_and_video_devices_are_cameras(text, kind, camera):
    spec = parse_source(text)
    assert (spec.kind, spec.camera, spec.live) == (kind, camera, True)
    assert parse_source(0).kind == "camera"


@pytest.mark.parametrize("url", ["rtsp://10.0.0.2:554/live", "RTMP://host/app/key", "http://127.0.0.1:8080/v.mjpg",
                                 "https://example.org/a.m3u8", "udp://127.0.0.1:5000", "tcp://127.0.0.1:9000"])
def test_stream_urls(url):
    spec = parse_source(url)
    assert spec.kind == "stream" and spec.live
    assert spec.url.split("://")[0] == url.split("://")[0].lower()


@pytest.mark.parametrize("url, message", [("ftp://host/clip.mp4", "unsupported scheme 'ftp://'"),
                                          ("file:///tmp/clip.mp4", "unsupported scheme 'file://'"),
                                          ("rtsp:///path", "no host in the URL"), ("  ", "empty source")])
def test_bad_urls_are_input_errors(url, message):
    with pytest.raises(InputError, match=message):
        parse_source(url)


def test_files_folders_and_globs(tmp_path, monkeypatch):
    (tmp_path / "frames").mkdir()
    assert parse_source(tmp_path / "frames").kind == "frames"
    assert parse_source(str(tmp_path / "frames" / "*.png")).kind == "frames"
    assert parse_source(tmp_path / "clip.mp4").kind == "file"
    monkeypatch.chdir(tmp_path)
    assert parse_source("./0").kind == "file"  # a video file named 0
    # a file whose name has glob characters is that file
    odd = write_video(tmp_path / "take[1].avi", 2)
    assert parse_source(str(odd)).kind == "file"


def test_stems_name_outputs():
    assert parse_source("0").stem == "camera0"
    assert parse_source("/dev/video1").stem == "video1"
    assert parse_source("rtsp://10.0.0.2:554/live?user=a").stem == "10.0.0.2_554_live"
    assert parse_source("clips/a.mp4").stem == "a"


def test_natural_order():
    names = ["frame_10.png", "frame_2.png", "frame_1.png", "Frame_3.png", "frame_100.png"]
    assert sorted(names, key=natural_key) == ["frame_1.png", "frame_2.png", "Frame_3.png", "frame_10.png",
                                              "frame_100.png"]


def _frames(folder: Path, sizes: dict[int, tuple[int, int]]) -> None:
    folder.mkdir(exist_ok=True)
    for i, (w, h) in sizes.items():
        assert cv2.imwrite(str(folder / f"frame_{i}.png"), np.full((h, w, 3), 10 * i, np.uint8))


def test_folder_of_frames_in_natural_order_with_mixed_sizes_and_junk(tmp_path):
    folder = tmp_path / "frames"
    _frames(folder, {i: (64, 48) if i % 2 else (80, 60) for i in (1, 2, 3, 10, 11)})
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "frame_4.png").write_bytes(b"\x89PNG broken")  # an image by name that does not decode
    src = open_source(folder, fps=5)
    assert not src.live and src.expected_frames == 6 and src.size_wh == (64, 48)
    got = list(src)
    names = [Path(meta["source"]).name for _, _, _, meta in got]
    assert names == ["frame_1.png", "frame_2.png", "frame_3.png", "frame_10.png", "frame_11.png"]
    assert [i for i, *_ in got] == [0, 1, 2, 4, 5]  # frame_4.png keeps its place
    assert [t for _, t, _, _ in got] == pytest.approx([0, 0.2, 0.4, 0.8, 1.0])
    assert [im.shape[:2] for _, _, im, _ in got] == [(48, 64), (60, 80), (48, 64), (60, 80), (48, 64)]
    assert [round(im.mean() / 10) for _, _, im, _ in got] == [1, 2, 3, 10, 11]
    assert [p.name for p, _ in src.unreadable] == ["frame_4.png"]
    assert [p.name for p in src.skipped] == ["notes.txt"]
    assert src.info()["frame_count"] == 6


def test_glob_and_selection(tmp_path):
    _frames(tmp_path / "a", {i: (32, 32) for i in range(12)})
    src = open_source(str(tmp_path / "a" / "frame_*.png"), start=0.2, end=1.0, step=3, fps=10)
    assert [i for i, *_ in src] == [2, 5, 8]
    assert src.expected_frames == 3
    assert FrameFolder(parse_source(tmp_path / "a")).fps == 25.0  # the stated default


@pytest.mark.parametrize("make, message", [
    (lambda d: d, "no image files"),
    (lambda d: d / "*.jpg", "no files match this pattern"),
])
def test_empty_folders_and_globs(tmp_path, make, message):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(InputError, match=message):
        open_source(str(make(tmp_path)))


def test_options_that_do_not_fit_the_source(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 3)
    with pytest.raises(ConfigError, match="fps=30 is for folders of frames"):
        open_source(clip, fps=30)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="fps must be a positive number"):
            open_source(tmp_path, fps=bad)
    with pytest.raises(ConfigError, match="a live source has none"):
        open_source("udp://127.0.0.1:9", start=3)


@pytest.mark.parametrize("camera", ["0", "7", "/dev/video9"])
def test_no_such_camera(camera):
    if Path("/dev/video0").exists():
        pytest.skip("this machine has a camera")
    with pytest.raises(InputError, match=r"no such camera \(/dev/video\d does not exist\)"):
        open_source(camera)
