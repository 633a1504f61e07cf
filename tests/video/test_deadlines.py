"""Issue 26 case 9 (and 11's redirect): no wait longer than the time asked for. A live source
that stalls ends at ``--duration`` (its JSON says "stalled", not "duration"); a download mirror
that trickles bytes is given up; a mirror redirecting to ftp:// is refused, not followed."""

from __future__ import annotations

import http.server
import json
import signal
import socket
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest

from posecli.errors import ModelError
from posecli.network.download import CATALOG, fetch_ir
from posecli.network.store import DEFAULT_MODEL
from tests.helpers import (
    IR_XML,
    MJPEG_HEADER,
    LocalServer,
    fast,
    mjpeg_part,
    posecli_cmd,
    stamp,
    subprocess_env,
)

XML, BIN = (f.name for f in CATALOG[DEFAULT_MODEL].files)


class StallingCamera(LocalServer):
    """An MJPEG camera on 127.0.0.1 that sends ``frames`` frames at ``fps``, then keeps the
    connection open and sends nothing more (a stalled network, a frozen camera). Unlike
    :class:`tests.helpers.MjpegCamera` it serves every client at once: a stalled client must
    not keep the next connection waiting."""

    def __init__(self, frames: int, fps: float = 10.0, size_wh=(160, 120)):
        super().__init__()
        self.frames, self.fps, self.size_wh = frames, fps, size_wh

    def _serve(self) -> None:
        while not self._stop.is_set():
            conn = self.accept()
            if conn is None:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn) -> None:
        w, h = self.size_wh
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(MJPEG_HEADER)
                for n in range(self.frames):
                    jpg = cv2.imencode(".jpg", stamp(np.full((h, w, 3), 90, np.uint8), n))[1].tobytes()
                    conn.sendall(mjpeg_part(jpg))
                    time.sleep(1 / self.fps)
                self._stop.wait()  # stalled: the connection stays open, silent
            except OSError:
                return


@pytest.mark.slow
def test_a_live_source_that_stalls_ends_at_the_duration(tiny_model, tmp_path):
    out = tmp_path / "live.json"
    with StallingCamera(frames=15) as camera:  # 1.5 s of frames, then silence
        started = time.monotonic()
        done = subprocess.run(posecli_cmd("video", camera.url, "--duration", "6", "--timeout", "60", "--out", out,
                                          "-q", *fast(tiny_model)),
                              capture_output=True, text=True, env=subprocess_env(), timeout=45, check=False)
        took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["complete"] is True and 0 < len(doc["frames"]) <= 15
    assert doc["stopped"] == "stalled" and doc["stalled_s"] >= 3  # not "duration": no frame came for seconds
    assert "no frame came in the last" in done.stderr and "of --duration" in done.stderr
    assert took < 45  # bounded by the duration (a 60 s read timeout used to run it past 60 s)


@pytest.mark.slow
def test_sigterm_stops_a_run_whose_live_source_stalls(tiny_model, tmp_path):
    """No --duration, a long --timeout: the stop is not held until a frame that never comes."""
    out = tmp_path / "live.json"
    with StallingCamera(frames=10) as camera:
        proc = subprocess.Popen(posecli_cmd("video", camera.url, "--timeout", "120", "--out", out, *fast(tiny_model)),
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                env={**subprocess_env(), "POSECLI_PROGRESS_SECONDS": "0"})
        try:
            while " frames, " not in proc.stderr.readline() and proc.poll() is None:  # the first frame is in
                pass
            time.sleep(3.0)  # 10 frames at 10 fps, then stalled
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 143
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and 1 <= len(doc["frames"]) <= 10


@pytest.mark.slow
def test_a_live_source_that_keeps_sending_still_stops_for_the_duration(tiny_model, tmp_path):
    out = tmp_path / "live.json"
    with StallingCamera(frames=10_000) as camera:
        done = subprocess.run(posecli_cmd("video", camera.url, "--duration", "3", "--out", out, "-q",
                                          *fast(tiny_model)),
                              capture_output=True, text=True, env=subprocess_env(), timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["stopped"] == "duration" and "stalled_s" not in doc and len(doc["frames"]) > 3


# -- downloads --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ir_files() -> dict[str, bytes]:
    if not IR_XML.is_file():
        pytest.skip(f"default model IR not found at {IR_XML}")
    return {p.name: p.read_bytes() for p in (IR_XML, IR_XML.with_suffix(".bin"))}


class Mirror:
    """A mirror on 127.0.0.1 serving ``files``; ``trickle``: names sent one byte every
    ``gap_s`` seconds; ``redirect``: {name: URL} answered with a 302 to that URL."""

    def __init__(self, files: dict[str, bytes], trickle=(), redirect=None, gap_s: float = 0.5):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                if name in (redirect or {}):
                    self.send_response(302)
                    self.send_header("Location", redirect[name])
                    self.end_headers()
                    return
                if name not in files:
                    self.send_error(404)
                    return
                body = files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if name not in trickle:
                        self.wfile.write(body)
                        return
                    for i in range(len(body)):
                        if server.closing.wait(gap_s):
                            return
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                except OSError:
                    return

        self.closing = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.slow
def test_a_mirror_that_trickles_is_given_up(ir_files, tmp_path):
    store = tmp_path / "store"
    with Mirror(ir_files, trickle={BIN}) as mirror:
        done = subprocess.run(posecli_cmd("models", "download", "--from", mirror.url, "--timeout", "2", "-q"),
                              capture_output=True, text=True, timeout=60,
                              env={**subprocess_env(), "POSECLI_MODELS": str(store)}, check=False)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"Error: {mirror.url}{BIN}: the transfer crawled at ") and "bytes/s" in line
    assert "run the same command again to resume" in line
    assert not list(store.glob("*.onnx"))


def test_a_redirect_to_ftp_is_refused_not_followed(ir_files, tmp_path):
    ftp = socket.socket()  # where the redirect points: nothing may connect to it
    ftp.bind(("127.0.0.1", 0))
    ftp.listen(1)
    ftp.settimeout(0.5)
    target = f"ftp://127.0.0.1:{ftp.getsockname()[1]}/{XML}"
    try:
        refused = pytest.raises(ModelError, match=r"redirects to ftp:// \(posecli follows http and https only\)")
        with Mirror(ir_files, redirect={XML: target}) as mirror, refused:
            fetch_ir(source=mirror.url, store=tmp_path / "store", timeout=5)
        with pytest.raises(socket.timeout):
            ftp.accept()  # never contacted
    finally:
        ftp.close()
