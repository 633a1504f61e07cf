"""The mixed session's dynamic route (posecli.network.backends.mixed): photos of many sizes run
on OpenVINO's network with dynamic height and width, padded to a few widths.

Real runtimes throughout: the tiny generated model (one 8x8 stride-8 convolution, so padded
columns cannot reach the image's own: its maps must come back exactly) and the real default
model on the real photos.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from posecli.network.backends import choice
from posecli.network.backends.mixed import MAX_AFTER, NEVER, WIDTH_STEP, MixedSession, dynamic_after
from posecli.network.session import PoseModel, cpu_signature
from posecli.network.store import model_path
from posecli.network.tensor import pad_input_value

from tests.helpers import make_tiny_model

pytest.importorskip("openvino")

NAME = "tiny-pose"


def test_a_bucket_goes_dynamic_after_the_break_even_of_a_new_sizes_extra_time():
    assert dynamic_after(0.0, 20.0, 8.0) == 1  # a new size costs no more than onnxruntime: at once
    assert dynamic_after(12.0, 20.0, 8.0) == 1  # 8 + 12 ms: still no more than onnxruntime's 20
    assert dynamic_after(40.0, 20.0, 8.0) == 4  # 28 ms lost once, 12 saved a frame: after 3 frames
    assert dynamic_after(-3.0, 20.0, 8.0) == 1  # timing noise below zero counts as no extra
    assert dynamic_after(1e9, 20.0, 8.0) == MAX_AFTER
    for extra, ort, ov in ((None, 20.0, 8.0), (float("nan"), 20.0, 8.0), (5.0, 8.0, 8.0), (5.0, 8.0, 9.0)):
        assert dynamic_after(extra, ort, ov) == NEVER  # unknown extra, or nothing saved: never


def _mixed(path, dynamic: int, after: int = NEVER):
    """PoseModel on a MixedSession over the tiny model; and a plain onnxruntime one to compare."""
    from posecli.network.backends.choice import open_openvino

    model = PoseModel.load(str(path), device="cpu", runtime="onnxruntime")
    model.session = MixedSession(model.session, lambda: open_openvino(path, None), after, dynamic_after=dynamic)
    model.session.pad_with(pad_input_value(model.info), model.info.stride)
    model.runtime = "openvino+onnxruntime"
    return model, PoseModel.load(str(path), device="cpu", runtime="onnxruntime")


def _input(width: int, height: int = 64, n: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 3, height, width)).astype(np.float32)


def test_sizes_of_one_width_bucket_share_the_count_and_come_back_unpadded(store):
    path = make_tiny_model(model_path(NAME, "fp32", store), seed=1)
    model, ref = _mixed(path, dynamic=2)
    assert model.session._bucket((1, 3, 64, 96)) == (1, 3, 64, 128) == model.session._bucket((1, 3, 64, 104))
    model.run(_input(96))  # the bucket's first sight: onnxruntime, OpenVINO not even opened
    assert model.session._ov is None
    for width, seed in ((104, 1), (120, 2), (128, 3)):  # the bucket's 2nd, 3rd, 4th sights: dynamic
        x = _input(width, seed=seed)
        hm, paf = model.run(x)
        want_hm, want_paf = ref.run(x)
        assert hm.shape == want_hm.shape and paf.shape == want_paf.shape  # cut back to its own columns
        np.testing.assert_allclose(hm, want_hm, atol=1e-5)
        np.testing.assert_allclose(paf, want_paf, atol=1e-5)
    desc = model.session.describe()
    assert desc["sizes_on_dynamic_openvino"] == [[1, 3, 64, 128]] and desc["sizes_on_openvino"] == []
    compiled = desc["compiled"]
    assert [c["shape"] for c in compiled] == ["dynamic"]  # one network for every width, no compilation per size
    model.run(_input(136))  # another bucket's first sight: onnxruntime again
    assert model.session.describe()["sizes_on_dynamic_openvino"] == [[1, 3, 64, 128]]


def test_submit_on_the_dynamic_route_gives_what_run_gives(store):
    path = make_tiny_model(model_path(NAME, "fp32", store), seed=2)
    model, ref = _mixed(path, dynamic=1)
    batches = [_input(72, n=2, seed=4), _input(200, n=3, seed=5)]
    pending = [model.submit(b) for b in batches]  # both in flight
    for b, wait in zip(batches, pending):
        hm, paf = wait()
        want_hm, want_paf = ref.run(b)
        np.testing.assert_allclose(hm, want_hm, atol=1e-5)
        np.testing.assert_allclose(paf, want_paf, atol=1e-5)
    assert model.session.describe()["sizes_on_dynamic_openvino"] == [[2, 3, 64, 128], [3, 3, 64, 256]]


def test_the_padding_is_the_letterbox_colour_and_only_where_the_stride_allows(store):
    path = make_tiny_model(model_path(NAME, "fp32", store))
    model, _ = _mixed(path, dynamic=1)
    x = _input(72)
    padded, width = model.session._padded(x)
    assert width == 72 and padded.shape == (1, 3, 64, WIDTH_STEP * 2)
    np.testing.assert_array_equal(padded[..., :72], x)
    np.testing.assert_array_equal(padded[0, :, :, 72:], np.broadcast_to(pad_input_value(model.info)[:, None, None],
                                                                         (3, 64, 128 - 72)))
    assert model.session._bucket((1, 3, 64, 71)) == (1, 3, 64, 71)  # not a multiple of the stride: as it is
    model.session.pad_with(pad_input_value(model.info), 48)  # a stride the step is no multiple of: no padding
    assert model.session._bucket((1, 3, 64, 96)) == (1, 3, 64, 96)


def test_a_recurring_size_still_gets_a_network_of_its_own(store):
    path = make_tiny_model(model_path(NAME, "fp32", store))
    model, _ = _mixed(path, dynamic=1, after=3)
    for _ in range(3):
        model.run(_input(96))
    desc = model.session.describe()
    assert desc["sizes_on_openvino"] == [[1, 3, 64, 96]]  # its own network from the 3rd sight
    assert sorted(str(c["shape"]) for c in desc["compiled"]) == ["[1, 3, 64, 96]", "dynamic"]


def test_the_new_size_cost_is_timed_on_widths_the_network_has_not_seen(store):
    from posecli.network.backends.choice import open_openvino

    path = make_tiny_model(model_path(NAME, "fp32", store))
    session = open_openvino(path, None)
    ran: list[int] = []
    now = [0.0]
    seen: set = set()

    def run_dynamic(x):
        ran.append(x.shape[3])
        session.run(["heatmaps", "pafs"], {"data": x}, dynamic=True)
        now[0] += 1.0 + (5.0 if x.shape not in seen else 0.0)  # a size's first run: 5 s more
        seen.add(x.shape)

    extra = choice.new_size_extra(run_dynamic, _input(96), clock=lambda: now[0])
    assert extra == 5.0
    assert ran == [96, 160, 160, 224, 224, 288, 288]  # opened on one width, then 3 new ones twice each


def _plant(store, path, **fields) -> None:
    key = choice.choice_key(path, None, cpu_signature())
    verdict = {"runtime": "openvino", "onnxruntime_ms": 20.0, "openvino_ms": 8.0, "size_hw": [256, 456],
               "compile_s": 0.12, **fields}
    (store / choice.CHOICE_FILE).write_text(json.dumps({key: verdict}))


def test_auto_takes_the_dynamic_route_from_the_remembered_verdict(store):
    path = make_tiny_model(model_path(NAME, "fp32", store))
    _plant(store, path, openvino_new_size_extra_ms=40.0)
    model = PoseModel.load(NAME, device="cpu")
    assert model.session.dynamic_after == 4 and "dynamic network from their 4th sight" in model.runtime_note
    assert model.session._bucket((1, 3, 64, 96)) == (1, 3, 64, 128)  # the model's pad colour and stride given
    choice._memory.clear()
    _plant(store, path)  # a verdict without the new size's cost: photos stay on onnxruntime
    model = PoseModel.load(NAME, device="cpu")
    assert model.session.dynamic_after == NEVER and "dynamic" not in model.runtime_note


@pytest.mark.parametrize("bad", ["slow", float("inf"), True])
def test_a_remembered_new_size_cost_that_is_nonsense_is_measured_again(store, bad):
    path = make_tiny_model(model_path(NAME, "fp32", store))
    _plant(store, path, openvino_new_size_extra_ms=bad)
    model = PoseModel.load(NAME, device="cpu")
    assert "measured on this CPU" in model.runtime_note
    (verdict,) = json.loads((store / choice.CHOICE_FILE).read_text()).values()
    if verdict["runtime"] == "openvino":  # measured again, with its own cost of a new size
        assert math.isfinite(verdict["openvino_new_size_extra_ms"])


@pytest.mark.slow
def test_photos_on_the_dynamic_route_find_the_people_onnxruntime_finds(default_model_int8, mini_set):
    from posecli.inference.estimator import PoseEstimator

    model, _ = _mixed(default_model_int8, dynamic=1)
    mixed = PoseEstimator(model, mode="accurate")
    plain = PoseEstimator(str(default_model_int8), device="cpu", runtime="onnxruntime", mode="accurate")
    for path in mini_set["images"]:
        got, want = mixed(path), plain(path)
        assert len(got.people) == len(want.people) > 0
        for a, b in zip(sorted(got.people, key=lambda p: -p.score), sorted(want.people, key=lambda p: -p.score)):
            both = ~np.isnan(a.xy[:, 0]) & ~np.isnan(b.xy[:, 0])
            assert both.sum() >= 0.8 * (~np.isnan(b.xy[:, 0])).sum()
            assert np.median(np.linalg.norm(a.xy[both] - b.xy[both], axis=1)) < 2.0
    assert model.session.describe()["sizes_on_dynamic_openvino"]  # they did run there
