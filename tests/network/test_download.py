"""posecli.network.download and ``posecli models download``: the published IR served by a real
HTTP server on 127.0.0.1 (the public URL cannot be reached from the test machines), with the
failures a real network has: a server that stops mid-file, a mirror with a truncated or
altered file, 404, no server, no answer, a full disk, Ctrl-C."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posecli.errors import ModelError
from posecli.network.download import CATALOG, fetch_ir, sources_dir
from posecli.network.store import DEFAULT_MODEL

from tests.helpers import IR_XML, SHARED, FileServer, photo, posecli_cmd, run, subprocess_env


REMOTE = CATALOG[DEFAULT_MODEL]
XML, BIN = (f.name for f in REMOTE.files)


@pytest.fixture(scope="module")
def ir_files() -> dict[str, bytes]:
    if not IR_XML.is_file():
        pytest.skip(f"default model IR not found at {IR_XML}")
    return {p.name: p.read_bytes() for p in (IR_XML, IR_XML.with_suffix(".bin"))}


def _bin_requests(server: FileServer) -> list[str | None]:
    return [rng for name, rng in server.requests if name == BIN]


def test_catalog_matches_the_shared_copy_of_the_published_ir(ir_files):
    """The sizes and sha256 in the catalog (Open Model Zoo's model.yml) are those of the files."""
    for file in REMOTE.files:
        data = ir_files[file.name]
        assert (len(data), hashlib.sha256(data).hexdigest()) == (file.size, file.sha256)
        assert file.url.startswith("https://storage.openvinotoolkit.org/") and file.url.endswith(file.name)


# -- the command, end to end --------------------------------------------------------------
def test_download_imports_and_a_second_run_fetches_nothing(ir_files, store, mini_set):
    with FileServer(ir_files) as server:
        r = run("models", "download", "--from", server.url, "--precision", "int8")
        assert r.exit_code == 0, r.output
        assert sorted(name for name, _ in server.requests) == [BIN, XML]
        assert [p.name for p in store.glob("*.onnx")] == [f"{DEFAULT_MODEL}.int8.onnx"]
        assert f"imported {DEFAULT_MODEL} (int8)" in r.stderr
        r = run("models", "download", "--from", server.url, "--precision", "int8")
        assert r.exit_code == 0 and "already imported" in r.stderr
        assert len(server.requests) == 2  # verified files are not fetched again
    # the downloaded model is the default one now: it finds people in a real photo
    r = run("image", mini_set["images"][0], "--device", "cpu")
    assert r.exit_code == 0, r.output
    assert '"people": [{' in r.stdout


def test_download_from_a_local_folder(store):
    if not IR_XML.is_file():
        pytest.skip("no shared IR")
    r = run("models", "download", "--from", IR_XML.parent, "--precision", "fp32", "-q")
    assert r.exit_code == 0, r.output
    assert (store / f"{DEFAULT_MODEL}.onnx").is_file()
    assert r.stderr == ""


def test_first_run_says_what_to_run(store, tmp_path):
    r = run("image", photo(tmp_path / "x.jpg"))
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "run: posecli models download" in lines[0] and "--from DIR" in lines[0]
    assert "(fp32)" not in lines[0]  # the command would run int8 on the CPU: name no precision


def test_a_missing_precision_names_the_command_that_makes_it(ir_files, store, tmp_path):
    with FileServer(ir_files) as server:
        assert run("models", "download", "--from", server.url, "--precision", "fp32", "-q").exit_code == 0
    r = run("image", photo(tmp_path / "x.jpg"), "--precision", "fp16")
    assert r.exit_code == 1
    assert "(fp16) is not in the model store (make it with: posecli models download --precision fp16)" in r.stderr


# -- failures: one line, exit 1, nothing half-written under the store's names ------------------
def _one_error_line(r) -> str:
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


def _no_models(store: Path) -> None:
    assert not list(store.glob("*.onnx")) if store.exists() else True
    folder = sources_dir(DEFAULT_MODEL, REMOTE.variant, store)
    assert not (folder / BIN).exists()


def test_404(ir_files, store):
    with FileServer(ir_files, faults={BIN: ["404"]}) as server:
        line = _one_error_line(run("models", "download", "--from", server.url))
    assert line == f"Error: {server.url}{BIN}: HTTP error 404 (Not Found)"
    _no_models(store)


def test_altered_file_fails_its_checksum_and_is_deleted(ir_files, store):
    altered = bytearray(ir_files[BIN])
    altered[len(altered) // 2] ^= 0xFF
    with FileServer({**ir_files, BIN: bytes(altered)}) as server:
        line = _one_error_line(run("models", "download", "--from", server.url))
    assert "checksum mismatch for human-pose-estimation-0001.bin" in line and "nothing was imported" in line
    _no_models(store)
    assert not list(sources_dir(DEFAULT_MODEL, REMOTE.variant, store).glob("*.part"))


def test_truncated_file_on_a_mirror(ir_files, store):
    with FileServer({**ir_files, BIN: ir_files[BIN][:1000]}) as server:
        line = _one_error_line(run("models", "download", "--from", server.url))
    assert f"the server offers 1000 bytes, expected {REMOTE.files[1].size}" in line
    _no_models(store)


def test_no_server(store):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    line = _one_error_line(run("models", "download", "--from", f"http://127.0.0.1:{port}/"))
    assert "cannot download (Connection refused); no network?" in line and "--from DIR|URL" in line
    _no_models(store)


def test_a_server_that_never_answers_times_out(ir_files, store):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)  # connections are queued, never served
    try:
        start = time.monotonic()
        with pytest.raises(ModelError, match=r"cannot download \(no answer in time\)"):
            fetch_ir(source=f"http://127.0.0.1:{sock.getsockname()[1]}/", store=store, timeout=0.3, retries=1)
        assert time.monotonic() - start < 10
    finally:
        sock.close()


def test_bad_sources_and_options(store, tmp_path):
    line = _one_error_line(run("models", "download", "--from", tmp_path / "nothere"))
    assert "no such folder" in line
    (tmp_path / "empty").mkdir()
    assert f"{XML} is not in this folder" in _one_error_line(run("models", "download", "--from", tmp_path / "empty"))
    assert "unsupported source 'ftp://x/'" in _one_error_line(run("models", "download", "--from", "ftp://x/"))
    assert "no download known for model 'other'" in _one_error_line(run("models", "download", "other"))
    for bad in ("nan", "inf", "0", "-1"):
        assert run("models", "download", "--timeout", bad).exit_code == 2


# -- resuming ---------------------------------------------------------------------------------
def test_a_transfer_that_breaks_once_resumes_at_once(ir_files, store):
    with FileServer(ir_files, faults={BIN: [("stop", 1_000_000)]}) as server:
        xml = fetch_ir(source=server.url, store=store)
    assert _bin_requests(server) == [None, "bytes=1000000-"]
    assert xml.with_suffix(".bin").read_bytes() == ir_files[BIN]


def test_a_transfer_that_keeps_breaking_is_resumed_by_the_next_run(ir_files, store):
    with FileServer(ir_files, faults={BIN: [("stop", 500_000)] * 4}) as server:
        r = run("models", "download", "--from", server.url, "--precision", "fp32")
        line = _one_error_line(r)
        assert f"the transfer stopped at 2000000 of {len(ir_files[BIN])} bytes, 4 times" in line
        assert "run the same command again to resume" in line
        _no_models(store)
        part = sources_dir(DEFAULT_MODEL, REMOTE.variant, store) / f"{BIN}.part"
        assert part.stat().st_size == 2_000_000
        r = run("models", "download", "--from", server.url, "--precision", "fp32", "-q")
        assert r.exit_code == 0, r.output
    assert _bin_requests(server)[-1] == "bytes=2000000-"
    assert not part.exists() and (store / f"{DEFAULT_MODEL}.onnx").is_file()


def test_a_server_that_ignores_ranges_restarts_from_zero(ir_files, store):
    folder = sources_dir(DEFAULT_MODEL, REMOTE.variant, store)
    folder.mkdir(parents=True)
    (folder / f"{BIN}.part").write_bytes(ir_files[BIN][:700_000])
    with FileServer(ir_files, faults={BIN: ["no-range"]}) as server:
        xml = fetch_ir(source=server.url, store=store)
    assert _bin_requests(server) == ["bytes=700000-"]
    assert xml.with_suffix(".bin").read_bytes() == ir_files[BIN]


def test_a_damaged_partial_file_is_caught_and_the_next_run_recovers(ir_files, store):
    folder = sources_dir(DEFAULT_MODEL, REMOTE.variant, store)
    folder.mkdir(parents=True)
    (folder / f"{BIN}.part").write_bytes(b"\0" * 700_000)  # not a prefix of the file
    with FileServer(ir_files) as server:
        with pytest.raises(ModelError, match="checksum mismatch"):
            fetch_ir(source=server.url, store=store)
        assert not (folder / f"{BIN}.part").exists()
        xml = fetch_ir(source=server.url, store=store)
    assert xml.with_suffix(".bin").read_bytes() == ir_files[BIN]


def test_ctrl_c_keeps_the_partial_file_and_the_next_run_resumes(ir_files, store):
    with FileServer(ir_files, faults={BIN: [("slow", 0.1)]}) as server:
        env = {**subprocess_env(), "POSECLI_MODELS": str(store)}
        proc = subprocess.Popen(posecli_cmd("models", "download", "--from", server.url, "-q"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        part = sources_dir(DEFAULT_MODEL, REMOTE.variant, store) / f"{BIN}.part"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not part.exists() or part.stat().st_size < 300_000):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        kept = part.stat().st_size
        assert 300_000 <= kept < len(ir_files[BIN])
        _no_models(store)
        r = run("models", "download", "--from", server.url, "--precision", "int8", "-q")
        assert r.exit_code == 0, r.output
    assert _bin_requests(server)[-1] == f"bytes={kept}-"


def test_a_full_disk_is_reported_and_leaves_no_model(ir_files, tmp_path):
    """A real full file system: a 1 MB tmpfs as the store (needs root to mount; skipped else)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        with FileServer(ir_files) as server:
            env = {**subprocess_env(), "POSECLI_MODELS": str(mnt / "store")}
            r = subprocess.run(posecli_cmd("models", "download", "--from", server.url, "-q"), env=env,
                               capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 1, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {mnt / 'store'}"), r.stderr
        assert "disk full (No space left on device" in lines[0]
        assert not list((mnt / "store").glob("*.onnx"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_library_rejects_bad_arguments(store):
    for bad in (float("nan"), 0, -1.0, float("inf")):
        with pytest.raises(ModelError, match=r"timeout="):
            fetch_ir(source=os.devnull, store=store, timeout=bad)


def test_without_the_converter_nothing_is_fetched(ir_files, store, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with FileServer(ir_files) as server:
        line = _one_error_line(run("models", "download", "--from", server.url))
    assert line.startswith("Error: converting the downloaded model needs the 'onnx' package: pip install 'openvino>=")
    assert server.requests == []
