"""Video frames and folder listings: order, selection, corrupt files, released captures."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from posecli.errors import InputError
from posecli.io import video as video_io
from posecli.io.listing import list_inputs
from posecli.io.video import VideoSource, iter_video

from tests.helpers import FPS, level, truncated_copy, write_video


def test_frames_in_order_with_index_timestamp_and_properties(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 12)
    src = VideoSource(clip)
    assert src.frame_count == 12 and src.fps == FPS and src.size_wh == (96, 64)
    assert src.expected_frames == 12
    got = list(src)
    assert [i for i, _, _ in got] == list(range(12))
    assert [t for _, t, _ in got] == pytest.approx([i / FPS for i in range(12)])
    assert [level(f) for _, _, f in got] == list(range(12))
    assert all(f.shape == (64, 96, 3) and f.dtype == np.uint8 for _, _, f in got)
    assert not src.stopped_early and src.error is None and src.frames_read == 12


def test_start_end_step_select_frames(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 20)
    got = list(iter_video(clip, start=0.5, end=1.5, step=3))  # frames 5..14, every 3rd
    assert [i for i, _, _ in got] == [5, 8, 11, 14]
    assert [level(f) for _, _, f in got] == [5, 8, 11, 14]
    assert VideoSource(clip, start=0.5, end=1.5, step=3).expected_frames == 4
    assert [i for i, _, _ in iter_video(clip, step=7)] == [0, 7, 14]


def test_frame_index_range_selects_exact_frames(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 20)
    src = VideoSource(clip, first_frame=6, stop_frame=11)
    got = list(src)
    assert [i for i, _, _ in got] == [6, 7, 8, 9, 10]
    assert [level(f) for _, _, f in got] == [6, 7, 8, 9, 10]
    assert src.expected_frames == 5 and not src.stopped_early
    assert [i for i, _, _ in VideoSource(clip, first_frame=17)] == [17, 18, 19]
    with pytest.raises(InputError, match="bad frame range"):
        VideoSource(clip, first_frame=-1)


def test_bad_selection_is_an_input_error(tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 5)
    with pytest.raises(InputError, match="past the end"):
        VideoSource(clip, start=10)
    with pytest.raises(InputError, match="after start"):
        VideoSource(clip, start=0.3, end=0.2)
    with pytest.raises(InputError, match="step"):
        VideoSource(clip, step=0)


def test_truncated_video_yields_decodable_frames_and_says_where_it_stopped(tmp_path):
    full = write_video(tmp_path / "full.avi", 30, size_wh=(160, 120))
    cut = truncated_copy(full, tmp_path / "cut.avi", 0.5)
    src = VideoSource(cut)
    got = list(src)  # no exception
    assert 5 <= len(got) < 30
    assert [i for i, _, _ in got] == list(range(len(got)))
    assert src.stopped_early
    assert f"stopped at frame {len(got)} of 30" in src.error


@pytest.mark.parametrize("content, message", [(b"", "empty"), (b"this is not a video\n" * 50, "not a readable video")])
def test_empty_or_unreadable_file_is_a_one_line_input_error(tmp_path, content, message):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        VideoSource(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InputError):
        VideoSource(tmp_path / "missing.mp4")


def test_capture_released_when_iteration_stops_early(tmp_path, monkeypatch):
    clip = write_video(tmp_path / "clip.mp4", 10)
    opened, released = [], []
    real = cv2.VideoCapture

    class Spy:
        def __init__(self, *args):
            self._cap = real(*args)
            opened.append(self)

        def release(self):
            released.append(self)
            self._cap.release()

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr(video_io.cv2, "VideoCapture", Spy)
    it = iter_video(clip)
    next(it)
    next(it)
    it.close()  # what a for loop does on break / exception
    assert len(opened) == 2 and len(released) == 2  # the probe in __init__ and the iteration


def test_list_inputs_sorted_by_kind_recursive_and_skipped(tmp_path):
    for rel in ["b.jpg", "a.PNG", "clip.mp4", "notes.txt", "sub/c.jpg", "sub/d.avi", "sub/deep/e.jpeg",
                ".hidden.jpg", "out/old.jpg", "sub/readme.md"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    flat = list_inputs(tmp_path)
    assert [p.name for p in flat.files] == ["a.PNG", "b.jpg", "clip.mp4"]
    assert [p.name for p in flat.skipped] == ["notes.txt"]
    deep = list_inputs(tmp_path, recursive=True, exclude=tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in deep.files] == [
        "a.PNG", "b.jpg", "clip.mp4", "sub/c.jpg", "sub/d.avi", "sub/deep/e.jpeg"]
    assert [p.name for p in deep.videos] == ["clip.mp4", "d.avi"]
    assert len(deep.images) == 4 and len(deep.skipped) == 2
    with pytest.raises(InputError, match="no such folder"):
        list_inputs(tmp_path / "nope")


def test_one_decoding_thread_gives_the_same_frames(tmp_path, monkeypatch):
    clip = write_video(tmp_path / "clip.mp4", 12, size_wh=(320, 240),
                       frame_fn=lambda i: np.random.default_rng(i).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    threads = []
    real = cv2.VideoCapture

    def spy(*args):
        cap = real(*args)
        threads.append(int(cap.get(cv2.CAP_PROP_N_THREADS)))
        return cap

    default = [f for _, _, f in VideoSource(clip)]
    src = VideoSource(clip)
    src.decode_threads = 1
    monkeypatch.setattr(video_io.cv2, "VideoCapture", spy)
    one = [f for _, _, f in src]
    assert threads == [1]  # the iteration's capture decodes on one thread
    assert len(one) == len(default) == 12
    for a, b in zip(one, default):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("size_wh, on_cpu, expected", [
    ((1280, 720), True, 1), ((1920, 1080), True, 1),  # the network is busy on the cores: one thread
    ((3840, 2160), True, None),  # 4K: FFmpeg's threads, lest decoding be the slowest stage
    ((1280, 720), False, None)])  # a GPU runs the network: decoding may use the cores
def test_decoding_threads_follow_the_frame_size_and_the_device(size_wh, on_cpu, expected):
    assert video_io.decode_threads_for(size_wh, network_on_cpu=on_cpu) == expected
