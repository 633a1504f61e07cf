"""Live capture from real servers on 127.0.0.1 (an MJPEG camera, FFmpeg over TCP and UDP, HTTP
files), reconnection after the server dies, and the newest-frame grabber."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from posecli.errors import InputError
from posecli.io.live import END, LatestFrameFeed
from posecli.io.sources import open_source

from tests.helpers import (
    HttpFiles,
    MjpegCamera,
    ffmpeg_push,
    free_port,
    level,
    mpegts_clip,
    read_stamp,
    write_video,
)


@pytest.fixture(scope="module")
def ts_clip(tmp_path_factory):
    """A 2 s H.264 MPEG-TS clip, 160x120 at 10 fps, frame i a grey of level 10 * i."""
    return mpegts_clip(tmp_path_factory.mktemp("ts") / "clip.ts", 20)


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_mjpeg_camera_frames_arrive_in_order_with_capture_times():
    with MjpegCamera(fps=30, frames=12) as cam:
        src = open_source(cam.url, reconnect=0, timeout_s=5)
        assert src.live and src.size_wh == (160, 120) and src.info()["kind"] == "stream"
        t_before = time.time()
        got = list(src)
    assert [read_stamp(im) for _, _, im, _ in got] == list(range(12))
    assert [i for i, *_ in got] == list(range(12))
    times = [t for _, t, _, _ in got]
    assert times[0] == 0 and all(b > a for a, b in itertools.pairwise(times))
    assert all(t_before - 1 < m["capture_time"] < time.time() for *_, m in got)
    # a live source that stops is reported, not silently complete
    assert src.stopped_early and "ended after 12 frames" in src.error


def test_file_behind_a_url_is_read_like_a_file(tmp_path):
    write_video(tmp_path / "clip.avi", 15)
    with HttpFiles(tmp_path) as server:
        src = open_source(f"{server.url}/clip.avi", timeout_s=5)
        assert not src.live and src.expected_frames == 15
        got = list(src)
    assert [level(im) for _, _, im, _ in got] == list(range(15))
    assert not src.stopped_early


def test_tcp_stream_reconnects_after_the_server_is_killed(ts_clip):
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    server = ffmpeg_push(ts_clip, f"{url}?listen=1")
    notes: list[str] = []
    try:
        time.sleep(0.5)
        src = open_source(url, reconnect=6, timeout_s=5, on_note=notes.append)
        seen, after = [], 0
        for index, _, _, _ in src:
            seen.append(index)
            if len(seen) == 8:  # the server dies mid-stream; another one starts a moment later
                _stop(server)
                server = ffmpeg_push(ts_clip, f"{url}?listen=1")
            after += src.reconnects > 0
            if after == 10 or len(seen) == 500:
                break
    finally:
        _stop(server)
    assert after == 10  # frames came again after the reconnection
    assert seen == list(range(len(seen)))  # indices go on across the reconnection
    assert src.reconnects == 1
    assert notes[0].startswith(f"{url}: stream lost after ") and "reconnecting in 0.5 s (attempt 1 of 6)" in notes[0]
    assert notes[-1] == f"{url}: reconnected"


def test_stream_that_does_not_come_back_ends_with_the_reason(ts_clip):
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    server = ffmpeg_push(ts_clip, f"{url}?listen=1")
    notes: list[str] = []
    try:
        time.sleep(0.5)
        src = open_source(url, reconnect=2, timeout_s=5, on_note=notes.append)
        frames = 0
        for _ in src:
            frames += 1
            if frames == 5:
                _stop(server)
    finally:
        _stop(server)
    assert frames >= 5 and src.stopped_early
    assert "2 reconnection attempts failed" in src.error and "connection refused" in src.error
    assert [n.split("(attempt ")[1] for n in notes] == ["1 of 2)", "2 of 2)"]
    assert "reconnecting in 1 s" in notes[1]  # backoff: 0.5 s, then 1 s


def test_udp_mpegts(ts_clip):
    port = free_port()
    pusher = ffmpeg_push(ts_clip, f"udp://127.0.0.1:{port}?pkt_size=1316")
    try:
        src = open_source(f"udp://127.0.0.1:{port}", reconnect=0, timeout_s=10)
        got = []
        for _, _, image, _ in src:
            got.append(level(image))
            if len(got) == 12:
                break
    finally:
        _stop(pusher)
    assert src.live and src.size_wh == (160, 120)
    # joined mid-stream (the clip loops): consecutive frames, one grey level further each time
    steps = {(b - a) % 20 for a, b in itertools.pairwise(got)}
    assert steps == {1}


def test_errors_say_what_is_wrong(tmp_path):
    (tmp_path / "page.html").write_text("<html><body>" + "not a video " * 300 + "</body></html>")
    refused = f"tcp://127.0.0.1:{free_port()}"
    with HttpFiles(tmp_path) as server:
        cases = [
            (refused, f"connection refused (nothing listening on 127.0.0.1:{refused.rsplit(':', 1)[1]})"),
            (f"{server.url}/missing.mp4", "HTTP 404"),
            (f"{server.url}/page.html", "not a video stream"),
            (f"rtsp://127.0.0.1:{free_port()}/live", "connection refused"),
            (f"udp://127.0.0.1:{free_port()}", "no video arrived within 1 s"),
            ("tcp://127.0.0.1", "the URL needs a port"),
        ]
        for url, message in cases:
            with pytest.raises(InputError) as info:
                open_source(url, timeout_s=1)
            assert str(info.value).startswith(f"{url}: ") and message in str(info.value), (url, str(info.value))


class _Burst:
    """A source that produces ``n`` frames as fast as it can (index stamped in the pixels)."""

    live = True

    def __init__(self, n: int, interval_s: float = 0.0):
        self.n, self.interval_s = n, interval_s

    def __iter__(self):
        for i in range(self.n):
            time.sleep(self.interval_s)
            yield i, i * 0.01, np.full((4, 4, 3), i % 256, np.uint8)


def test_feed_hands_over_the_newest_frame_and_counts_the_dropped():
    feed = LatestFrameFeed(_Burst(300, 0.001)).start()
    taken = []
    while (item := feed.take(5)) is not END:
        assert item is not None
        taken.append(item)
        time.sleep(0.02)  # a consumer far slower than the source
    indices = [i for i, *_ in taken]
    assert indices == sorted(indices) and indices[-1] == 299  # the last frame is not lost
    skipped = [m["skipped"] for *_, m in taken]
    assert sum(skipped) + len(taken) == feed.received == 300
    assert sum(skipped) > 100 and feed.dropped == sum(skipped)
    for (a, *_), (b, *_, m) in itertools.pairwise(taken):
        assert b - a - 1 == m["skipped"]


def test_feed_paces_a_file_at_its_frame_rate(tmp_path):
    clip = write_video(tmp_path / "clip.avi", 10, fps=20)
    feed = LatestFrameFeed(open_source(clip), pace=True)
    t0 = time.monotonic()
    got = list(feed)
    took = time.monotonic() - t0
    assert [i for i, *_ in got] == list(range(10))  # a fast consumer misses nothing
    assert took >= 0.4  # 10 frames at 20 frames/s: released over 0.45 s, not at once


def test_feed_hands_on_the_source_error():
    def broken():
        yield 0, 0.0, np.zeros((2, 2, 3), np.uint8)
        raise InputError("boom", path="cam")

    feed = LatestFrameFeed(broken()).start()
    first = feed.take(5)
    assert first is not None and first[0] == 0
    with pytest.raises(InputError, match="cam: boom"):
        while feed.take(5) is not END:
            pass


def test_closing_the_feed_stops_a_source_that_never_ends():
    stop = threading.Event()

    def endless():
        i = 0
        while not stop.is_set():
            yield i, 0.0, np.zeros((2, 2, 3), np.uint8)
            i += 1
            time.sleep(0.001)

    feed = LatestFrameFeed(endless()).start()
    assert feed.take(5) is not None
    feed.close()
    assert not feed._thread.is_alive()
    stop.set()
