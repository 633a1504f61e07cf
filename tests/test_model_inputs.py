"""Model files that are not what they claim (network.session, network.metadata).
"""

from __future__ import annotations

import pytest

from .conftest import make_tiny_model
from .helpers import (
    photo,
    run,
)


@pytest.mark.parametrize("content", [b"", b"hello world\n" * 10, "truncated"])
def test_model_files_that_are_not_onnx(content, tmp_path):
    model = tmp_path / "m.onnx"
    if content == "truncated":
        make_tiny_model(model)
        model.write_bytes(model.read_bytes()[:3000])
    else:
        model.write_bytes(content)
    a = photo(tmp_path / "a.jpg")
    r = run("image", a, "--model", model)
    assert r.exit_code == 1
    assert r.stderr == f"Error: {model}: not an ONNX model (cannot be parsed)\n"


def test_model_without_metadata_with_a_broken_sidecar_or_wrong_profile(tmp_path):
    a = photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "bare.onnx", metadata=False)
    side = tmp_path / "bare.json"
    side.write_text("{not json")
    r = run("image", a, "--model", model)
    assert r.exit_code == 1 and r.stderr.startswith(f"Error: {side}: metadata is not valid JSON")
    side.unlink()
    r = run("image", a, "--model", model, "--profile", "body25")
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"Error: {model}: ") and "do not match skeleton 'body25'" in r.stderr
    r = run("image", a, "--model", model, "--profile", "nosuch")
    assert r.exit_code == 1 and "unknown skeleton profile 'nosuch'" in r.stderr


def test_model_whose_paf_outputs_do_not_match_the_skeleton(tmp_path):
    a = photo(tmp_path / "a.jpg")
    model = make_tiny_model(tmp_path / "wrong.onnx", paf_channels=10)
    r = run("image", a, "--model", model)
    assert r.exit_code == 1 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"Error: {model}: output 'pafs' has 10 channels")
