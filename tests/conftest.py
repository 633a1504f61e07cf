"""Shared fixtures: where ../shared is, the real default model, tiny generated models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import IR_XML, MINI, SHARED, make_tiny_model



@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set POSECLI_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def mini_set(shared_dir) -> dict:
    """The COCO val2017 mini set: images dir, annotation file, image list."""
    ann = MINI / "person_keypoints.json"
    if not ann.is_file():
        pytest.skip(f"mini set not found at {MINI}")
    data = json.loads(ann.read_text())
    return {"dir": MINI, "annotations": ann, "images": [MINI / im["file_name"] for im in data["images"]], "coco": data}


@pytest.fixture(scope="session")
def model_store(tmp_path_factory) -> Path:
    """The model store the tests use: $POSECLI_MODELS (make sets it) or a temp dir."""
    env = os.environ.get("POSECLI_MODELS")
    store = Path(env) if env else tmp_path_factory.mktemp("store")
    store.mkdir(parents=True, exist_ok=True)
    os.environ["POSECLI_MODELS"] = str(store)
    return store


def _import_default(store: Path, precision: str) -> Path:
    pytest.importorskip("openvino")
    pytest.importorskip("onnx")
    if not IR_XML.is_file():
        pytest.skip(f"default model IR not found at {IR_XML}")
    from posecli.network.importers.openvino import import_openvino_ir
    from posecli.network.store import DEFAULT_MODEL, model_path

    target = model_path(DEFAULT_MODEL, precision, store)
    if not target.exists():
        import_openvino_ir(IR_XML, target, precision=precision)
    return target


@pytest.fixture(scope="session")
def default_model(model_store) -> Path:
    """The real default model (float32 ONNX), imported into the test store once."""
    return _import_default(model_store, "fp32")


@pytest.fixture(scope="session")
def default_model_int8(model_store) -> Path:
    """The real default model's INT8 variant, imported into the test store once."""
    return _import_default(model_store, "int8")


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    """A tiny generated ONNX model with the default model's layout (:func:`make_tiny_model`)."""
    return make_tiny_model(tmp_path / "tiny.onnx")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An empty model store in a temp dir ($POSECLI_MODELS), with the runtime choices
    remembered in memory forgotten before and after."""
    from posecli.network.backends import choice

    root = tmp_path / "store"
    root.mkdir()
    monkeypatch.setenv("POSECLI_MODELS", str(root))
    choice._memory.clear()
    yield root
    choice._memory.clear()
