"""Issue 26 case 8: FIFOs never hang posecli. A FIFO named as a photo with no writer is that
photo's one-line error (the others are done); SIGTERM stops a run waiting on one; a FIFO named
``*.jpg`` in a batch folder is that entry's error; a FIFO at the store's ``runtime-choice.json``
is junk: ignored, measured again."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from posecli.io.streams import STREAM_IDLE_S
from tests.helpers import fast, make_tiny_model, photo, posecli_cmd, subprocess_env, temp_files


def _wait_for_reader(fifo, proc, seconds: float = 90) -> int:
    """Once ``proc`` opened ``fifo`` for reading, a write end opened here (kept open, nothing
    written: a writer that never sends). Returns its descriptor."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            assert exc.errno == errno.ENXIO, exc  # no reader yet
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "posecli never opened the FIFO"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_fifo_photo_with_no_writer_is_that_photos_error(tiny_model, tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    good = photo(tmp_path / "good.jpg")
    out = tmp_path / "o.json"
    done = subprocess.run(posecli_cmd("image", fifo, good, "--out", out, *fast(tiny_model)), capture_output=True,
                          text=True, env=subprocess_env(), timeout=STREAM_IDLE_S + 60, check=False)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: {fifo}: is a stream (FIFO, pipe or device) and no writer came in {STREAM_IDLE_S:.0f} s"]
    assert [im["file"] for im in json.loads(out.read_text())["images"]] == [str(good)]


@pytest.mark.slow
def test_sigterm_stops_a_run_waiting_on_a_fifo(tiny_model, tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    out = tmp_path / "o.json"
    proc = subprocess.Popen(posecli_cmd("image", photo(tmp_path / "a.jpg"), fifo, "--out", out, *fast(tiny_model)),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=subprocess_env())
    writer = None
    try:
        writer = _wait_for_reader(fifo, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if writer is not None:
            os.close(writer)
    stderr = proc.stderr.read()
    assert "Terminated: 1 of 2 photos written" in stderr and "Traceback" not in stderr, stderr
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and len(doc["images"]) == 1
    assert not temp_files(tmp_path)


def test_a_fifo_named_like_a_photo_in_a_batch_folder_is_that_entrys_error(tiny_model, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    photo(root / "a.jpg")
    os.mkfifo(root / "b.jpg")
    photo(root / "c.jpg", seed=1)
    out = tmp_path / "out"
    done = subprocess.run(posecli_cmd("batch", root, "--out", out, *fast(tiny_model)), capture_output=True,
                          text=True, env=subprocess_env(), timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    assert f"Error: {root / 'b.jpg'}: is a FIFO (named pipe), not a regular file\n" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "c.json"]


_LOAD = textwrap.dedent("""
    from posecli.network.session import PoseModel
    print(PoseModel.load("tiny-pose", device="cpu").runtime_note)
""")


def test_a_fifo_at_the_runtime_choice_file_is_ignored_and_measured_again(tmp_path):
    pytest.importorskip("openvino")
    from posecli.network.backends import choice
    from posecli.network.store import model_path

    store = tmp_path / "store"
    store.mkdir()
    make_tiny_model(model_path("tiny-pose", "fp32", store))
    os.mkfifo(store / choice.CHOICE_FILE)
    for _ in range(2):  # each command measures again; none hangs
        done = subprocess.run([sys.executable, "-c", _LOAD], capture_output=True, text=True, timeout=120,
                              env={**subprocess_env(), "POSECLI_MODELS": str(store)}, check=False)
        assert done.returncode == 0, done.stderr
        assert "measured on this CPU" in done.stdout
    assert (store / choice.CHOICE_FILE).is_fifo()  # left as it was: writing to it would block too
