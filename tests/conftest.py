"""Shared fixtures: where ../shared is, the real default model, tiny generated models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POSECLI_SHARED", REPO.parent / "shared")).resolve()
MINI = SHARED / "data" / "coco-val2017-mini"
IR_XML = SHARED / "models" / "human-pose-estimation-0001" / "FP16-INT8" / "human-pose-estimation-0001.xml"


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


def make_tiny_model(path: Path, *, metadata: bool = True, heatmap_channels: int = 19, paf_channels: int = 38,
                    seed: int = 0) -> Path:
    """A tiny fully convolutional ONNX network with the default model's I/O layout.

    One 8x8 stride-8 convolution from the image to 19 + 38 channels (sigmoid / tanh), so it
    runs in microseconds and gives maps of the right size for any input.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from posecli.network.metadata import ModelInfo, OutputSpec, embed_metadata
    from posecli.skeleton import COCO18

    rng = np.random.default_rng(seed)
    w_h = numpy_helper.from_array((rng.standard_normal((heatmap_channels, 3, 8, 8)) * 0.01).astype(np.float32), "w_h")
    w_p = numpy_helper.from_array((rng.standard_normal((paf_channels, 3, 8, 8)) * 0.01).astype(np.float32), "w_p")
    conv = dict(kernel_shape=[8, 8], strides=[8, 8])
    nodes = [
        helper.make_node("Conv", ["data", "w_h"], ["h_raw"], **conv),
        helper.make_node("Sigmoid", ["h_raw"], ["heatmaps"]),
        helper.make_node("Conv", ["data", "w_p"], ["p_raw"], **conv),
        helper.make_node("Tanh", ["p_raw"], ["pafs"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [
            helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", heatmap_channels, "h", "w"]),
            helper.make_tensor_value_info("pafs", TensorProto.FLOAT, ["N", paf_channels, "h", "w"]),
        ],
        initializer=[w_h, w_p],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        info = ModelInfo("tiny", COCO18, "data", (256, 456), OutputSpec("heatmaps"), OutputSpec("pafs"),
                         pad_value=(128.0, 128.0, 128.0), scale=(1 / 256,) * 3, mean=(128.0,) * 3)
        embed_metadata(model, info)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    return make_tiny_model(tmp_path / "tiny.onnx")
