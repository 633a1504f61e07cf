"""Outputs (io.atomic and the writers): atomic, checked before work, disk full.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from tests.helpers import (
    device_node,
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


def test_temp_names_are_hidden_fresh_and_keep_the_suffix_when_asked(tmp_path):
    from posecli.io.atomic import temp_name

    target = tmp_path / "clip.mp4"
    a, b = temp_name(target), temp_name(target)
    assert a != b and a.parent == b.parent == tmp_path
    assert a.name.startswith(".clip.mp4.") and a.name.endswith(".tmp")
    kept = temp_name(target, keep_suffix=True)
    assert kept.name.startswith(".clip.") and kept.name.endswith(".tmp.mp4")
    assert temp_name(target, "old").name.endswith(".old")


def test_a_folder_result_replaces_the_old_one_only_when_complete(tmp_path):
    from posecli.io.atomic import atomic_dir

    result = tmp_path / "frames"
    result.mkdir()
    (result / "old.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(result) as tmp:
        tmp.mkdir()
        (tmp / "new.json").write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in result.iterdir()] == ["old.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
    with atomic_dir(result) as tmp:
        tmp.mkdir()
        (tmp / "new.json").write_text("new")
    assert [p.name for p in result.iterdir()] == ["new.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


# ---------------------------------------------------------------------------------------------
# Issue 19: devices, outputs on inputs, outputs on each other, stdout closed, killed runs
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_outputs_are_written_to_never_replaced(tiny_model, tmp_path):
    a = photo(tmp_path / "a.jpg")
    null = device_node(tmp_path / "null", 3)
    full = device_node(tmp_path / "full", 7)
    r = run("image", a, "--out", null, "--render", null, *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(null.stat().st_mode)
    r = run("image", a, "--out", full, *fast(tiny_model))
    assert r.exit_code == 1 and r.stderr == f"Error: {full}: write failed (No space left on device)\n"
    assert stat.S_ISCHR(full.stat().st_mode) and not temp_files(tmp_path)
    clip = write_video(tmp_path / "c.avi", 3)
    r = run("video", clip, "--out", null, "--render", tmp_path / "null.mp4", "-q", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert stat.S_ISCHR(null.stat().st_mode)


def test_a_link_to_stdout_and_a_fifo_receive_the_json(tiny_model, tmp_path):
    a = photo(tmp_path / "a.jpg")
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")  # what /dev/stdout is, made here so /dev stays untouched
    proc = subprocess.run(posecli_cmd("image", a, "--out", stdout, *fast(tiny_model)), capture_output=True,
                          text=True, env=subprocess_env(), check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["complete"] is True
    assert stdout.is_symlink() and os.readlink(stdout) == "/proc/self/fd/1"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()), daemon=True)
    reader.start()
    r = run("image", a, "--out", fifo, *fast(tiny_model))
    reader.join(30)
    assert r.exit_code == 0, r.output
    assert json.loads(got[0])["images"][0]["file"] == str(a) and stat.S_ISFIFO(fifo.stat().st_mode)


def test_an_output_that_is_an_input_is_a_usage_error_before_any_work(tiny_model, tmp_path):
    a = photo(tmp_path / "in.jpg")
    before = a.read_bytes()
    (tmp_path / "sub").mkdir()
    for option, value in (("--out", a), ("--render", a), ("--out", tmp_path / "sub" / ".." / "in.jpg")):
        r = run("image", a, option, value, *fast(tiny_model))
        assert r.exit_code == 2 and f"{option} would overwrite" in r.stderr, r.output
        assert a.read_bytes() == before
    clip = write_video(tmp_path / "c.mp4", 3)
    video_bytes = clip.read_bytes()
    for option in ("--out", "--render"):
        r = run("video", clip, option, clip, "-q", *fast(tiny_model))
        assert r.exit_code == 2 and f"Error: {clip}: is an input; {option} would overwrite it" in r.stderr
        assert clip.read_bytes() == video_bytes
    assert not temp_files(tmp_path)


def test_outputs_never_overwrite_each_other(tiny_model, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    photos = [photo(tmp_path / "a" / "x.jpg", seed=1), photo(tmp_path / "b" / "x.jpg", seed=2),
              photo(tmp_path / "a" / "x.png", seed=3)]
    out, rendered = tmp_path / "o", tmp_path / "r"
    r = run("image", *photos, "--out", f"{out}{os.sep}", "--render", f"{rendered}{os.sep}", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    names = {"x.jpg": photos[0], "x.jpg-2": photos[1], "x.png": photos[2]}
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.json" for n in names)
    assert sorted(p.name for p in rendered.iterdir()) == sorted(f"{n}_rendered.jpg" for n in names)
    for name, source in names.items():
        assert json.loads((out / f"{name}.json").read_text())["images"][0]["file"] == str(source)
    same = tmp_path / "o.jpg"
    r = run("image", photos[0], "--out", same, "--render", same, *fast(tiny_model))
    assert r.exit_code == 2 and "both --out and --render would be written here" in r.stderr
    assert not same.exists()


def test_stdout_closed_is_one_clear_line(tiny_model, tmp_path):
    a = photo(tmp_path / "a.jpg")
    proc = subprocess.run(posecli_cmd("image", a, *fast(tiny_model)), capture_output=False, stderr=subprocess.PIPE,
                          text=True, env=subprocess_env(), check=False, timeout=60, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 1
    assert proc.stderr == "Error: stdout is closed; give an output file\n"


def test_leftovers_of_a_killed_run_are_removed_by_the_next_run(tiny_model, tmp_path):
    clip = write_video(tmp_path / "clip.mp4", 250, size_wh=(160, 120))
    out = tmp_path / "poses.json"
    cmd = posecli_cmd("video", clip, "--out", out, "--render", tmp_path / "r.mp4", "-q", "-m", tiny_model,
                      "--device", "cpu", "--height", "768", "-P", "peak_threshold=0.99")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env())
    try:
        deadline = time.monotonic() + 60
        while len(temp_files(tmp_path)) < 2:  # the JSON's and the video's temporary files
            assert proc.poll() is None and time.monotonic() < deadline, "the run never got going"
            time.sleep(0.01)
        proc.kill()  # SIGKILL: no cleanup at all
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(temp_files(tmp_path)) == 2 and not out.exists()
    again = subprocess.run([*cmd[:4], str(clip), "--out", str(out), "--render", str(tmp_path / "r.mp4"), "-q",
                            "-m", str(tiny_model), "--device", "cpu", "--height", "64", "-P", "peak_threshold=0.99"],
                           capture_output=True, text=True, env=subprocess_env(), check=False, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(out.read_text())["complete"] is True
    assert not temp_files(tmp_path)


def test_sweep_removes_only_leftovers_of_dead_processes(tmp_path):
    target = tmp_path / "poses.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".poses.json.{dead_pid}-abcdef12.tmp"
    stale.write_text("partial")
    stale_dir = tmp_path / f".poses.json.{dead_pid}-abcdef13.tmp"
    stale_dir.mkdir()
    (stale_dir / "x").write_text("1")
    from posecli.io.atomic import sweep_stale, temp_name

    mine = temp_name(target)
    mine.write_text("in progress")  # this process is alive: kept
    other = tmp_path / ".other.json.1-abcdef12.tmp"  # another output's: kept
    other.write_text("x")
    removed = sweep_stale(target)
    assert sorted(removed) == sorted([stale, stale_dir])
    assert mine.exists() and other.exists() and not stale.exists() and not stale_dir.exists()
