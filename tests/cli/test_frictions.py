"""What tripped new users up (issue 25), each as the user met it: a real process or CliRunner."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios

import pytest

from tests.helpers import fast, photo, photo_clip, posecli_cmd, run, subprocess_env


def _on_pty(cmd: list[str], rows: int, cols: int, env: dict) -> str:
    """Run ``cmd`` with stderr on a pseudo-terminal of ``rows`` x ``cols``; what it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed its end
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_progress_in_a_terminal_of_size_0x0(tmp_path, tiny_model):
    clip = photo_clip(tmp_path / "c.mp4", photo(tmp_path / "p.jpg", size_hw=(224, 320)), 12)
    env = {**subprocess_env(), "POSECLI_PROGRESS_SECONDS": "0"}
    text = _on_pty(posecli_cmd("video", clip, "--out", tmp_path / "o.json", *fast(tiny_model)), 0, 0, env)
    assert "12/12 frames" in text


def test_final_progress_line_once(capsys):
    from posecli.cli.progress import LogProgress

    bar = LogProgress(3, desc="files", unit="file", interval=0)
    for _ in range(3):
        bar.update(1)
    bar.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if "3/3" in line]
    assert len(lines) == 1, lines


def _checkout(tmp_path, tiny_model):
    """A source checkout as `make demo` leaves it: the package, pyproject.toml and the model in
    models/store (here the tiny model under the default model's name)."""
    import shutil

    from posecli.network.store import DEFAULT_MODEL

    from tests.helpers import REPO

    root = tmp_path / "checkout"
    shutil.copytree(REPO / "posecli", root / "posecli", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "models" / "store").mkdir(parents=True)
    shutil.copy(tiny_model, root / "models" / "store" / f"{DEFAULT_MODEL}.onnx")
    env = {k: v for k, v in os.environ.items() if k != "POSECLI_MODELS"}
    env.update(PYTHONPATH=str(root), HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "home" / ".cache"))
    return root, env


@pytest.mark.slow
def test_checkout_finds_the_model_make_demo_downloaded(tmp_path, tiny_model):
    import sys

    root, env = _checkout(tmp_path, tiny_model)
    image = photo(tmp_path / "x.jpg")
    proc = subprocess.run([sys.executable, "-m", "posecli", "image", str(image), "--device", "cpu", "--height", "64"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    listing = subprocess.run([sys.executable, "-m", "posecli", "models", "list"], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=300, check=False)
    assert f"store: {root / 'models' / 'store'}" in listing.stdout
    assert not (tmp_path / "home").exists()  # HOME stays clean


def test_missing_model_message_names_posecli_models(tmp_path, monkeypatch):
    monkeypatch.setenv("POSECLI_MODELS", str(tmp_path / "empty"))
    result = run("image", photo(tmp_path / "x.jpg"))
    assert result.exit_code == 1 and "POSECLI_MODELS" in result.output


@pytest.mark.slow
def test_models_info_describes_what_the_commands_run(default_model, default_model_int8):
    import json

    from posecli.inference.estimator import PoseEstimator

    info = json.loads(run("models", "info", "--device", "cpu", "--json").output)
    est = PoseEstimator(None, device="cpu")
    assert info["path"] == str(est.model.path) and info["precision"] == est.model.info.precision == "int8"
    assert info["runtime"] == est.model.runtime


def test_evaluate_estimator_names_itself_and_the_eval_extra(monkeypatch, tmp_path):
    import sys

    import posecli
    from posecli.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "pycocotools.coco", None)
    ann = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    with pytest.raises(MissingExtraError, match=r"^evaluate_estimator\(\) needs .*'posecli\[eval\]'"):
        posecli.evaluate_estimator(object(), ann, tmp_path)


def test_several_photos_with_a_file_named_render_is_a_usage_error(tmp_path, tiny_model):
    a, b = photo(tmp_path / "a.jpg"), photo(tmp_path / "b.jpg", seed=1)
    result = run("image", a, b, "--render", tmp_path / "one.jpg", *fast(tiny_model))
    assert result.exit_code == 2 and "give a folder" in result.output
    assert not (tmp_path / "one.jpg").exists()
    result = run("image", a, b, "--format", "openpose", "--out", tmp_path / "p.json", *fast(tiny_model))
    assert result.exit_code == 2 and not (tmp_path / "p.json").exists()
    result = run("image", a, b, "--render", f"{tmp_path / 'shots'}/", *fast(tiny_model))  # a folder: fine
    assert result.exit_code == 0 and len(list((tmp_path / "shots").iterdir())) == 2


def test_a_folder_given_to_image_points_to_batch_or_a_glob(tmp_path, tiny_model):
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "a.jpg")
    result = run("image", folder, *fast(tiny_model))
    assert result.exit_code == 1 and "posecli batch" in result.output and "*.jpg" in result.output


def test_unknown_model_points_to_models_list(tmp_path, tiny_model, monkeypatch):
    import shutil

    store = tmp_path / "store"
    store.mkdir()
    shutil.copy(tiny_model, store / "mine.onnx")
    monkeypatch.setenv("POSECLI_MODELS", str(store))
    result = run("image", photo(tmp_path / "x.jpg"), "-m", "mnie", "--device", "cpu")
    assert result.exit_code == 1 and "posecli models list" in result.output and "mine" in result.output


def _batch_folder(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    p = photo(folder / "a.jpg", size_hw=(224, 320))
    photo_clip(folder / "clip.mp4", p, 6)
    return folder


def test_batch_render_takes_a_folder_like_image_and_video(tmp_path, tiny_model):
    folder = _batch_folder(tmp_path)
    result = run("batch", folder, "--out", tmp_path / "out", "--render", tmp_path / "drawn", "-q", *fast(tiny_model))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["a_rendered.jpg", "clip_rendered.mp4"]
    assert not list((tmp_path / "out").glob("*_rendered*"))
    # the old flag still works: beside the results
    result = run("batch", folder, "--out", tmp_path / "out2", "-q", *fast(tiny_model), "--render")
    assert result.exit_code == 0 and (tmp_path / "out2" / "a_rendered.jpg").exists()


def test_batch_track_takes_online_offline_like_video(tmp_path, tiny_model):
    folder = _batch_folder(tmp_path)
    for i, args in enumerate((["--track", "offline"], ["--track"], ["--no-track"], ["--track", "online"])):
        result = run("batch", folder, "--out", tmp_path / f"o{i}", "-q", *args, *fast(tiny_model))
        assert result.exit_code == 0, (args, result.output)
    result = run("batch", folder, "--out", tmp_path / "x", "--no-track", "--track", "offline", *fast(tiny_model))
    assert result.exit_code == 2


def test_batch_runs_videos_in_video_mode_and_says_frames_per_second(tmp_path, tiny_model):
    folder = _batch_folder(tmp_path)
    result = run("batch", folder, "--out", tmp_path / "o", "--verbose", *fast(tiny_model))
    assert result.exit_code == 0, result.output
    assert "mode balanced" in result.output and "videos: mode fast" in result.output
    assert "videos: 6 frames in" in result.output and "frames/s" in result.output
    result = run("batch", folder, "--out", tmp_path / "o2", "--verbose", "--mode", "balanced", *fast(tiny_model))
    assert "videos: mode" not in result.output  # --mode given: everything in that mode
    assert "fast mode, as posecli video" in " ".join(run("batch", "--help").output.split())
