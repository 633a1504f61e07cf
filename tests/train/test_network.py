"""The PyTorch networks: Lightweight OpenPose with the imported weights, the OpenPose design."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # small CPU work; extra threads only spin on a busy machine

from posecli.train.network import (  # noqa: E402
    ConvBlock,
    InferenceWrapper,
    LightweightOpenPose,
    OpenPoseNet,
    final_maps,
)
from posecli.train.weights import load_pretrained, read_weights  # noqa: E402

from tests.helpers import SHARED

# Measured: max |torch - onnxruntime| 1.3e-6 on maps of magnitude ~1 (float32, CPU).
ATOL = 1e-4


def _photo(mini_set, hw=(256, 456)) -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    image = cv2.imread(str(mini_set["images"][0]))
    image = cv2.resize(image, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)


def test_lightweight_with_imported_weights_reproduces_the_onnx_model(default_model, mini_set):
    ort = pytest.importorskip("onnxruntime")
    x = _photo(mini_set)
    net = LightweightOpenPose()
    missing = load_pretrained(net, read_weights(default_model))
    assert missing == []
    net.eval()
    with torch.no_grad():
        hm, paf = InferenceWrapper(net)(torch.from_numpy(x))
    session = ort.InferenceSession(str(default_model), providers=["CPUExecutionProvider"])
    want_hm, want_paf = session.run(["Mconv7_stage2_L2", "Mconv7_stage2_L1"], {"data": x})
    assert hm.shape == (1, 19, 32, 57) and paf.shape == (1, 38, 32, 57)
    np.testing.assert_allclose(hm.numpy(), want_hm, atol=ATOL)
    np.testing.assert_allclose(paf.numpy(), want_paf, atol=ATOL)
    assert float(np.abs(want_hm[:, :18]).max()) > 0.5  # the photo has people: maps are not trivial


def test_ir_and_onnx_weights_agree(default_model):
    pytest.importorskip("openvino")
    shared = SHARED
    ir_xml = shared / "models" / "human-pose-estimation-0001" / "FP16-INT8" / "human-pose-estimation-0001.xml"
    onnx_w, ir_w = read_weights(default_model), read_weights(ir_xml)
    assert set(onnx_w.convs) >= {m.source for m in LightweightOpenPose().modules() if isinstance(m, ConvBlock)}
    for name, (kernel, bias) in ir_w.convs.items():
        np.testing.assert_allclose(onnx_w.convs[name][0], kernel, atol=1e-7)
        np.testing.assert_allclose(onnx_w.convs[name][1], bias, atol=1e-7)
    np.testing.assert_allclose(onnx_w.scale, ir_w.scale, rtol=1e-6)
    np.testing.assert_allclose(onnx_w.offset, ir_w.offset, rtol=1e-6)


def test_lightweight_shapes_and_stride():
    net = LightweightOpenPose(refinement_stages=2, bn=True).eval()
    with torch.no_grad():
        stages = net(torch.zeros(2, 3, 64, 96))
    assert len(stages) == 3
    for hm, paf in stages:
        assert hm.shape == (2, 19, 8, 12) and paf.shape == (2, 38, 8, 12)


def test_openpose_design_has_paf_stages_then_confidence_stages():
    net = OpenPoseNet(paf_stages=3, cm_stages=2, backbone_widths=(8, 8, 16), features=16,
                      width=8, blocks=2, hidden=16).eval()
    with torch.no_grad():
        stages = net(torch.zeros(1, 3, 64, 64))
    kinds = [(hm is not None, paf is not None) for hm, paf in stages]
    assert kinds == [(False, True)] * 3 + [(True, False)] * 2
    hm, paf = final_maps(stages)
    assert hm.shape == (1, 19, 8, 8) and paf.shape == (1, 38, 8, 8)
    # Three 3x3 convs per block stand in for a 7x7; none larger than 3x3 in the stages.
    kernels = {m.kernel_size for m in net.paf_stages.modules() if isinstance(m, torch.nn.Conv2d)}
    assert kernels == {(3, 3), (1, 1)}
    # Later PAF stages see the previous PAFs, confidence stages the last PAFs (+ previous maps).
    first = lambda stage: next(m for m in stage.modules() if isinstance(m, torch.nn.Conv2d))  # noqa: E731
    assert first(net.paf_stages[0]).in_channels == 16
    assert first(net.paf_stages[1]).in_channels == 16 + 38
    assert first(net.cm_stages[0]).in_channels == 16 + 38
    assert first(net.cm_stages[1]).in_channels == 16 + 38 + 19
