"""Credentials in URLs (issue 26, case 4): a password or token in a stream or mirror URL is used
to connect and appears nowhere posecli writes: stdout, stderr, result files, file names.
Real MJPEG cameras and HTTP servers on 127.0.0.1, real subprocesses."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from posecli.io.sources import parse_source
from posecli.io.urls import redact, split_credentials, url_stem
from tests.helpers import MjpegCamera, free_port, posecli_cmd, run, subprocess_env

SECRETS = ("PASSWORD", "SECRET")


def _with_secrets(url: str) -> str:
    """``url`` with a user name, a password and a token in its query."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://admin:PASSWORD@{rest}?token=SECRET&size=1"


def _leaks(*texts: str, folder: Path | None = None) -> list[str]:
    """Where a secret shows: in the given texts, or in any file name or file's bytes under ``folder``."""
    found = [f"text {i}" for i, t in enumerate(texts) if any(s in t for s in SECRETS)]
    for path in (folder.rglob("*") if folder else []):
        if any(s in path.name for s in SECRETS):
            found.append(f"name {path}")
        elif path.is_file() and any(s.encode() in path.read_bytes() for s in SECRETS):
            found.append(f"bytes of {path}")
    return found


# -- the redaction itself -------------------------------------------------------------------
@pytest.mark.parametrize("text, shown", [
    ("rtsp://admin:PASSWORD@192.168.1.5:554/live", "rtsp://admin:***@192.168.1.5:554/live"),
    ("rtsp://admin:p@ss@cam/live", "rtsp://admin:***@cam/live"),  # an unescaped @ in the password
    ("http://me@host/x", "http://me@host/x"),
    ("https://host/v.mp4?token=SECRET&w=3", "https://host/v.mp4?token=***&w=3"),
    ("https://host/v?X-Amz-Signature=SECRET&api_key=SECRET&password=SECRET&keyframe=2",
     "https://host/v?X-Amz-Signature=***&api_key=***&password=***&keyframe=2"),
    ("Error: tcp://u:PASSWORD@h:5000: connection refused", "Error: tcp://u:***@h:5000: connection refused"),
    ("clip.mp4: no such file", "clip.mp4: no such file"),
    ("http:/u:PASSWORD@h/x.jpg: no such file", "http:/u:***@h/x.jpg: no such file"),  # through a Path
    ("C:/Users/me/x.jpg?token=1", "C:/Users/me/x.jpg?token=1"),
])
def test_redact(text, shown):
    assert redact(text) == shown


def test_the_real_url_is_kept_to_connect_and_names_have_no_user_info():
    spec = parse_source("rtsp://admin:PASSWORD@192.168.1.5:554/live?token=SECRET")
    assert spec.url == "rtsp://admin:PASSWORD@192.168.1.5:554/live?token=SECRET"
    assert spec.text == "rtsp://admin:***@192.168.1.5:554/live?token=***"
    assert spec.stem == url_stem(spec.url) == "192.168.1.5_554_live"
    assert split_credentials("http://me:p%40ss@h:8/x") == ("http://h:8/x", ("me", "p@ss"))


# -- posecli video on a live camera whose URL holds a password ------------------------------
@pytest.mark.slow  # a real process
def test_a_stream_with_a_password_leaves_it_nowhere(tmp_path, tiny_model):
    """Results, maps, OpenPose file names, Note lines (a reconnection), the Warning (the camera
    is gone), progress lines and the error of a stream that cannot be opened."""
    out = tmp_path / "out"
    out.mkdir()
    model = ["-m", tiny_model, "--device", "cpu", "--height", "64"]
    with MjpegCamera(fps=20, frames=8) as cam:
        url = _with_secrets(cam.url)
        proc = subprocess.Popen(posecli_cmd("video", url, "--out", out / "p.json", "--write-maps", out / "maps",
                                            "--reconnect", "1", "--timeout", "3", *model),
                                env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while 7 not in cam.sent and proc.poll() is None and time.monotonic() < deadline:  # the camera sends its 8 frames ...
            time.sleep(0.02)
    # ... and is gone before the first reconnection attempt (0.5 s after the end)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "Note: http://admin:***@127.0.0.1" in stderr and "reconnecting" in stderr, stderr
    assert "Warning: http://admin:***@127.0.0.1" in stderr, stderr
    doc = json.loads((out / "p.json").read_text())
    assert doc["video"]["file"].startswith("http://admin:***@127.0.0.1:") and doc["frames"]
    assert {f["file"] for f in doc["frames"]} == {doc["video"]["file"]}
    assert list((out / "maps").glob("127.0.0.1_*_video.mjpg_000000000*.npz"))  # realtime: frame 0 may be dropped

    with MjpegCamera(fps=20) as cam:
        r = subprocess.run(posecli_cmd("video", _with_secrets(cam.url), "--format", "openpose", "--out", out / "op",
                                       "--max-frames", "3", *model),
                           check=False, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (out / "op").iterdir())
    assert len(names) == 3 and names[0].startswith("127.0.0.1_") and "admin" not in names[0]

    assert not _leaks(stdout, stderr, r.stdout, r.stderr, folder=out)


@pytest.mark.slow  # a real process
@pytest.mark.parametrize("scheme", ["tcp", "rtsp", "http"])
def test_a_stream_that_cannot_be_opened_is_named_without_its_password(tmp_path, tiny_model, scheme):
    """A real process: FFmpeg's own log lines (written to the process's stderr) count too."""
    url = f"{scheme}://u:PASSWORD@127.0.0.1:{free_port()}/live?token=SECRET"
    r = subprocess.run(posecli_cmd("video", url, "--timeout", "1", "--out", tmp_path / "p.json", "-m", tiny_model,
                                   "--device", "cpu", "--height", "64"),
                       check=False, env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert f"Error: {scheme}://u:***@127.0.0.1:" in r.stderr and "token=***" in r.stderr, r.stderr
    assert not _leaks(r.stdout, r.stderr, folder=tmp_path)


@pytest.mark.parametrize("args", [
    ("image", "http://u:PASSWORD@127.0.0.1/x.jpg"),
    ("eval", "-a", "http://u:PASSWORD@127.0.0.1/a.json", "-i", "."),
    ("models", "import", "http://u:PASSWORD@127.0.0.1/x.xml"),
    ("image", "x.jpg", "-m", "http://u:PASSWORD@127.0.0.1/m.onnx"),
])
def test_a_url_given_where_a_file_goes_is_named_without_its_password(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    r = run(*args)
    assert r.exit_code in (1, 2) and "u:***@127.0.0.1" in r.stderr, r.output
    assert not _leaks(r.output)


def test_batch_says_it_takes_no_url_and_hides_the_password(tmp_path):
    r = run("batch", "rtsp://u:PASSWORD@127.0.0.1/live", "--out", tmp_path / "out")
    assert r.exit_code == 2
    assert "batch takes a folder, not a URL (rtsp://u:***@127.0.0.1/live)" in r.stderr
    assert "posecli video" in r.stderr and not _leaks(r.output)


# -- models download from a mirror that wants basic authentication --------------------------
class AuthMirror:
    """An HTTP server on 127.0.0.1 answering 401 unless the request carries ``user:password``
    as basic authentication; then 404 (no files: the test is about the answer to the door)."""

    def __init__(self, user: str, password: str):
        import base64

        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.seen: list[str | None] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                auth = self.headers.get("Authorization")
                mirror.seen.append(auth)
                if auth != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="models"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_error(404)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("userinfo, said", [
    ("admin:PASSWORD@", "HTTP error 404"),  # the right password reaches the server: it opens the door
    ("admin:WRONGPASSWORD@", "the server refused the user name and password given in the URL (HTTP 401"),
    ("", "the server wants a user name and password"),
])
def test_a_mirror_that_wants_credentials(tmp_path, monkeypatch, userinfo, said):
    pytest.importorskip("openvino")
    monkeypatch.setenv("POSECLI_MODELS", str(tmp_path / "store"))
    with AuthMirror("admin", "PASSWORD") as mirror:
        r = run("models", "download", "--from", f"http://{userinfo}127.0.0.1:{mirror.port}/", "--timeout", "5")
    assert r.exit_code == 1 and said in r.stderr, r.stderr
    assert "host name not found" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not _leaks(r.output, folder=tmp_path)
    if userinfo:
        assert f"http://{userinfo.replace(userinfo.split(':')[1][:-1], '***')}127.0.0.1" in r.stderr
