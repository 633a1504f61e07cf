"""Outputs (io.atomic and the writers): atomic, checked before work, disk full.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess

import pytest

from .helpers import (
    fast,
    photo,
    posecli_cmd,
    run,
    subprocess_env,
    temp_files,
    write_video,
)


def test_existing_output_survives_a_failed_run(tiny_model, tmp_path):
    out = tmp_path / "out.json"
    render = tmp_path / "r.jpg"
    out.write_text('{"old": true}\n')
    render.write_bytes(b"old render")
    r = run("image", tmp_path / "missing.jpg", "--out", out, "--render", render, *fast(tiny_model))
    assert r.exit_code == 1
    assert out.read_text() == '{"old": true}\n' and render.read_bytes() == b"old render"
    assert not temp_files(tmp_path)


def test_interrupted_run_keeps_finished_photos_marked_incomplete_and_no_temporary_file(tiny_model, tmp_path,
                                                                                       monkeypatch):
    from posecli.inference.estimator import PoseEstimator

    out = tmp_path / "out.json"
    out.write_text('{"old": true}\n')
    photos = [photo(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    real_call = PoseEstimator.__call__
    calls = []
    stop_at = [1]

    def call(self, image, source=""):
        calls.append(source)
        if len(calls) == stop_at[0]:
            raise KeyboardInterrupt
        return real_call(self, image, source)

    monkeypatch.setattr(PoseEstimator, "__call__", call)
    r = run("image", *photos, "--out", out, *fast(tiny_model))  # before the first photo is done
    assert r.exit_code == 130 and r.stderr == f"Interrupted: nothing written to {out}.\n"
    assert out.read_text() == '{"old": true}\n' and not temp_files(tmp_path)
    calls.clear()
    stop_at[0] = 2
    r = run("image", *photos, "--out", out, *fast(tiny_model))
    assert r.exit_code == 130
    assert r.stderr == f'Interrupted: 1 of 3 photos written to {out} (marked "complete": false).\n'
    doc = json.loads(out.read_text())
    assert doc["complete"] is False and [im["file"] for im in doc["images"]] == [str(photos[0])]
    assert not temp_files(tmp_path)
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
