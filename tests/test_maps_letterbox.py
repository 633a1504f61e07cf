import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posecli.errors import InputError
from posecli.maps import Letterbox, fit_size, letterbox
from posecli.network.tensor import to_tensor
from posecli.io.images import as_bgr
from posecli.network.metadata import ModelInfo, OutputSpec
from posecli.skeleton import COCO18


def test_fit_size_keeps_aspect_and_pads_to_stride():
    resized, padded = fit_size((640, 425), 256, 8)
    assert resized == (386, 256)
    assert padded == (392, 256)
    assert padded[0] % 8 == 0 and padded[1] % 8 == 0


def test_letterbox_pads_right_and_bottom_with_pad_value():
    img = np.full((100, 50, 3), 200, np.uint8)
    out, box = letterbox(img, 37, 8, pad_value=(1, 2, 3))
    assert out.shape == (40, 24, 3)
    assert box.resized_wh == (18, 37)
    assert (out[38:, :, :] == [1, 2, 3]).all()
    assert (out[:37, 18:, :] == [1, 2, 3]).all()
    assert (out[:37, :18] == 200).all()


def test_a_bright_pixel_lands_where_the_mapping_says():
    img = np.zeros((300, 500, 3), np.uint8)
    cv2.circle(img, (377, 123), 6, (255, 255, 255), -1)
    out, box = letterbox(img, 150, 8)
    gray = out[..., 0].astype(float)
    ys, xs = np.nonzero(gray > 0.5 * gray.max())
    w = gray[ys, xs]
    centroid = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    np.testing.assert_allclose(box.to_image(centroid), [377, 123], atol=0.5)


@settings(max_examples=200, deadline=None)
@given(
    w=st.integers(1, 5000), h=st.integers(1, 5000), height=st.integers(8, 1024),
    stride=st.sampled_from([1, 4, 8, 16]), fx=st.floats(0, 1), fy=st.floats(0, 1),
)
def test_forward_and_back_is_the_identity(w, h, height, stride, fx, fy):
    resized, padded = fit_size((w, h), height, stride)
    box = Letterbox((w, h), resized, padded)
    pt = np.array([fx * (w - 1), fy * (h - 1)])
    back = box.to_image(box.to_input(pt))
    assert np.abs(back - pt).max() < 0.5
    assert padded[0] % stride == 0 and padded[1] % stride == 0


def test_as_bgr_converts_gray_16bit_and_alpha():
    gray = np.full((4, 5), 7, np.uint8)
    assert as_bgr(gray).shape == (4, 5, 3)
    deep = np.full((4, 5, 3), 65535, np.uint16)
    assert as_bgr(deep).dtype == np.uint8 and as_bgr(deep).max() == 255
    rgba = np.zeros((4, 5, 4), np.uint8)
    assert as_bgr(rgba).shape == (4, 5, 3)
    with pytest.raises(InputError):
        as_bgr(np.zeros((0, 0, 3), np.uint8))


def test_to_tensor_normalises_in_the_model_colour_order():
    info = ModelInfo("m", COCO18, "data", (256, 456), OutputSpec("a"), OutputSpec("b"), color="rgb",
                     mean=(128.0, 128.0, 128.0), scale=(1 / 256,) * 3)
    img = np.zeros((8, 8, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    t = to_tensor(img, info)
    assert t.shape == (1, 3, 8, 8) and t.dtype == np.float32
    np.testing.assert_allclose(t[0, 2], (255 - 128) / 256)  # blue is the last channel in RGB
    np.testing.assert_allclose(t[0, 0], -128 / 256)
