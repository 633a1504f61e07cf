"""``python -m bench.variant``: one setting's AP over network heights (docs/accuracy.md's
sweeps). Real model, real photos, real subprocesses; its figures agree with ``posecli eval``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("pycocotools")


def _variant(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bench.variant", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env or subprocess_env(), timeout=600)


@pytest.mark.parametrize("args, code, message", [
    (["-Z", "tallest=3"], 2, "-Z tallest: not a zoom-in option (choose from "),
    (["-P", "min_parts"], 2, "-P min_parts: expected KEY=VALUE"),
    (["--heights", "240,x"], 2, "'240,x': expected heights like 240,256,272"),
    (["--heights", "99999999"], 2, "'99999999': heights from 16 to 4096"),
    (["-P", "peak_offset_y=NaN", "--heights", "64"], 1, "Error: peak_offset_y must be a finite number, got nan"),
    (["-Z", "below=Infinity"], 1, "Error: zoom below=inf: must be a positive number"),
    (["-Z", "below=-5"], 1, "Error: zoom below=-5: must be a positive number"),
    (["-P", "min_parts=\"many\"", "--heights", "64"], 1, "Error: "),
])
def test_bad_settings_are_one_line(args, code, message, default_model_int8):
    env = {**subprocess_env(), "POSECLI_MODELS": os.environ["POSECLI_MODELS"]}
    done = _variant(*args, env=env)
    assert done.returncode == code, done.stderr
    assert message in done.stderr.strip().splitlines()[-1] and "Traceback" not in done.stderr


@pytest.mark.slow
def test_its_figure_is_what_posecli_eval_says(default_model_int8, shared_dir):
    env = {**subprocess_env(), "POSECLI_MODELS": os.environ["POSECLI_MODELS"]}
    env.pop("POSECLI_MAP_CACHE", None)
    done = _variant("--mode", "fast", "--heights", "256", env=env)
    assert done.returncode == 0, done.stderr
    figures = dict(zip(done.stdout.split()[0::2], map(float, done.stdout.split()[1::2])))
    assert set(figures) >= {"mini", "train80", "train80-A", "train80-B", "crowded", "train80-AP75", "train80@256"}
    train = shared_dir / "data" / "coco-train2017-mini80"
    ev = subprocess.run([sys.executable, "-m", "posecli", "eval", "-a", str(train / "person_keypoints.json"),
                         "-i", str(train), "--mode", "fast", "--runtime", "onnxruntime", "--json", "-q"],
                        capture_output=True, text=True, env=env, timeout=600)
    assert ev.returncode == 0, ev.stderr
    assert figures["train80"] == figures["train80@256"] == pytest.approx(json.loads(ev.stdout)["ap"], abs=5e-4)
