"""Hostile files (issue 26, case 10): every read of a user file has limits (size, depth, shape)
and a file over them is reported by name, never a raw MemoryError, RecursionError, IndexError
or ValueError. Real files written here; the library and the CLI read them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from posecli.errors import InputError
from posecli.formats.maps import MAX_MAPS_BYTES, read_maps, write_maps
from posecli.maps import Letterbox, Maps
from posecli.skeleton import COCO18
from tests.helpers import make_tiny_model, photo, run, subprocess_env

BOX = Letterbox((500, 333), (384, 256), (384, 256))


def _maps(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    maps = Maps(rng.random((19, 32, 48), np.float32), rng.random((38, 32, 48), np.float32), BOX, 8)
    return write_maps(folder / "m.npz", maps, COCO18)


def _npy(array_or_header) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array_or_header)
    return buf.getvalue()


def _replace(src: Path, dst: Path, members: dict[str, bytes], compress: bool = False) -> Path:
    """``src`` (an .npz) with some members replaced by the given .npy bytes."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            name = info.filename[:-4]
            if name not in members:
                zout.writestr(info, zin.read(info))
        for name, data in members.items():
            zout.writestr(name + ".npy", data, zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED)
    return dst


def _lying_header(shape, dtype="<f2") -> bytes:
    """An .npy header declaring ``shape`` and no data after it."""
    header = {"descr": dtype, "fortran_order": False, "shape": tuple(shape)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


# -- read_maps -------------------------------------------------------------------------------
def test_a_valid_maps_file_still_reads(tmp_path):
    back = read_maps(_maps(tmp_path))
    assert back.box == BOX and back.stride == 8 and back.heatmaps.shape == (19, 32, 48)


@pytest.mark.parametrize("shape", [(19, 10**6, 10**6), (2**62, 2**62, 4)])
def test_maps_declaring_a_huge_shape_are_refused_before_loading(tmp_path, shape):
    bad = _replace(_maps(tmp_path), tmp_path / "huge.npz", {"heatmaps": _lying_header(shape)})
    with pytest.raises(InputError, match=r"'heatmaps' declares shape") as err:
        read_maps(bad)
    assert err.value.path == str(bad)


@pytest.mark.slow  # a real process
def test_a_zip_bomb_is_refused_without_inflating_it(tmp_path):
    """600 MB of zeros deflated to well under a megabyte: refused on the zip's declared size, and
    the reading process stays small."""
    n = MAX_MAPS_BYTES // 2 + 2**20
    header = _lying_header((n,))
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(_maps(tmp_path)) as zin, zipfile.ZipFile(bomb, "w") as zout:
        for info in zin.infolist():
            if info.filename != "heatmaps.npy":
                zout.writestr(info, zin.read(info))
        member = zipfile.ZipInfo("heatmaps.npy")
        member.compress_type = zipfile.ZIP_DEFLATED
        with zout.open(member, "w", force_zip64=True) as f:
            f.write(header)
            zero = bytes(2**24)
            for _ in range(2 * n // len(zero) + 1):
                f.write(zero)
    assert bomb.stat().st_size < 5e6
    # VmHWM: this process's peak resident memory (ru_maxrss would count the parent's at fork)
    code = ("import re, sys\nfrom posecli.formats.maps import read_maps\nfrom posecli.errors import InputError\n"
            "try:\n    read_maps(sys.argv[1])\nexcept InputError as e:\n    print(e)\n"
            "print(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1])\n")
    done = subprocess.run([sys.executable, "-c", code, str(bomb)], check=False, env=subprocess_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    message, peak_kb = done.stdout.strip().splitlines()
    assert message.startswith(f"{bomb}: 'heatmaps' inflates to"), message
    assert int(peak_kb) < 400_000  # python, numpy and OpenCV: far below the 600 MB it would inflate to


@pytest.mark.parametrize("member, value, said", [
    ("stride", np.array(2**62), "'stride'"),
    ("stride", np.array(0), "'stride'"),
    ("stride", np.array(8.5), "'stride'"),
    ("image_wh", np.array([500, 333, 1]), "'image_wh'"),
    ("image_wh", np.array([0, 333]), "'image_wh'"),
    ("image_wh", np.array([-5, 333]), "'image_wh'"),
    ("image_wh", np.array(["a", "b"]), "'image_wh'"),
    ("input_wh", np.array([384, 2**40]), "'input_wh'"),
    ("input_wh", np.array([392, 256]), "inconsistent maps"),  # the grid is 48 cells, not 49
    ("resized_wh", np.array([400, 256]), "inconsistent maps"),  # larger than the input
    ("heatmaps", np.zeros((19, 32, 48), np.int32), "inconsistent maps"),
    ("version", np.array([1, 1]), "'version'"),
])
def test_a_malformed_maps_record_is_refused_at_read_time(tmp_path, member, value, said):
    bad = _replace(_maps(tmp_path), tmp_path / "bad.npz", {member: _npy(value)})
    with pytest.raises(InputError) as err:
        read_maps(bad)
    assert said in str(err.value) and err.value.path == str(bad)


# -- model metadata and IR -------------------------------------------------------------------
def test_metadata_stride_of_5000_digits_is_a_model_error_naming_the_file(tmp_path):
    import onnx

    from posecli.network.metadata import METADATA_KEY

    path = make_tiny_model(tmp_path / "tiny.onnx")
    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            record = json.loads(prop.value)
            prop.value = json.dumps(record)[:-1] + ', "stride": ' + "9" * 5000 + "}"
    onnx.save(model, str(path))
    r = run("image", photo(tmp_path / "p.jpg"), "-m", path, "--device", "cpu", "--height", "64")
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(f"Error: {path}: malformed posecli metadata"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_an_ir_with_an_empty_net_is_a_one_line_error(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    xml = tmp_path / "empty.xml"
    xml.write_text('<?xml version="1.0"?>\n<net name="empty" version="11">\n<layers>\n</layers>\n'
                   "<edges>\n</edges>\n</net>\n")
    xml.with_suffix(".bin").write_bytes(b"")
    monkeypatch.setenv("POSECLI_MODELS", str(tmp_path / "store"))
    r = run("models", "import", xml)
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(f"Error: {xml}: the IR has 0 inputs and 0 outputs"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# -- the runtime verdict file ----------------------------------------------------------------
def test_a_deeply_nested_verdict_file_is_measured_again_and_rewritten(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    from posecli.network.backends import choice
    from posecli.network.session import PoseModel
    from posecli.network.store import model_path

    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setenv("POSECLI_MODELS", str(store))
    monkeypatch.setattr(choice, "_memory", {})
    make_tiny_model(model_path("tiny-pose", "fp32", store))
    (store / choice.CHOICE_FILE).write_text("[" * 100_000 + "]" * 100_000)
    model = PoseModel.load("tiny-pose", device="cpu")
    assert "measured on this CPU" in model.runtime_note
    table = json.loads((store / choice.CHOICE_FILE).read_text())
    assert isinstance(table, dict) and len(table) == 1


# -- the Python API ----------------------------------------------------------------------------
def test_the_estimator_takes_a_path_or_a_list_and_names_the_parameter_otherwise(tmp_path, tiny_model):
    from posecli.inference.estimator import PoseEstimator

    est = PoseEstimator(tiny_model, device="cpu", height=64)
    path = photo(tmp_path / "photo.jpg")
    array = est(__import__("cv2").imread(str(path)))
    by_str, by_path = est(str(path)), est(path)
    assert by_str.source == str(path) and by_str.size_wh == array.size_wh == (160, 120)
    assert len(by_str.people) == len(array.people) and by_path.source == str(path)
    frames = est([path, str(path)])
    assert isinstance(frames, list) and [f.source for f in frames] == [str(path)] * 2
    for bad in (42, None, b"photo.jpg", [[path]]):
        with pytest.raises(InputError) as err:
            est(bad)
        assert err.value.param == "image" and "image" in str(err.value)
    with pytest.raises(InputError, match="no such file|not found|does not exist"):
        est(tmp_path / "missing.jpg")


# -- results read back -------------------------------------------------------------------------
@pytest.mark.parametrize("reader", ["load_posecli_json", "load_openpose_json"])
def test_a_deeply_nested_result_file_is_an_input_error_naming_it(tmp_path, reader):
    from posecli.formats import readers

    deep = tmp_path / "deep.json"
    deep.write_text('{"frames": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(InputError, match="nested more than 64 levels deep") as err:
        getattr(readers, reader)(deep)
    assert err.value.path == str(deep)
