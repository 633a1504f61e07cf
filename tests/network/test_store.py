"""Names that become paths in the model store (issue 26, case 5): a model name is a plain file
name (one check, :func:`posecli.network.store.check_model_name`, used by every store path), and
a download never writes through a symbolic link put at its ``.part`` name."""

from __future__ import annotations

import pytest

from posecli.errors import ModelError
from posecli.network.download import CATALOG, fetch_ir, sources_dir
from posecli.network.store import DEFAULT_MODEL, check_model_name, model_path, resolve_model
from tests.helpers import IR_XML, FileServer, run

IR_DIR = IR_XML.parent
BAD_NAMES = ["../../../../ESCAPED", "/tmp/ABSOLUTE", "a/b", "a\\b", "..", ".", "", "a\x00b", "a\nb", "x" * 300]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_that_are_not_plain_are_refused_everywhere_a_name_becomes_a_path(tmp_path, name):
    with pytest.raises(ModelError, match="is not a plain name"):
        model_path(name, "fp32", tmp_path)
    with pytest.raises(ModelError, match="is not a plain name"):
        sources_dir(name, "FP16-INT8", tmp_path)
    if "/" not in name and "\x00" not in name and name not in ("", ".", ".."):  # else --model reads it as a path
        with pytest.raises(ModelError, match="is not a plain name"):
            resolve_model(name, "fp32", tmp_path)


def test_plain_names_are_kept(tmp_path):
    for name in ("hpe", "human-pose-estimation-0001", "café v2", "..hidden-but-plain"):
        assert check_model_name(name) == name
        assert model_path(name, "int8", tmp_path).parent == tmp_path


@pytest.mark.parametrize("name", ["../../../../ESCAPED", "ABSOLUTE"])
def test_import_with_a_name_outside_the_store_writes_nothing(tmp_path, monkeypatch, name):
    if not (IR_DIR / f"{DEFAULT_MODEL}.xml").is_file():
        pytest.skip(f"no IR at {IR_DIR}")
    store = tmp_path / "a" / "b" / "c" / "store"
    monkeypatch.setenv("POSECLI_MODELS", str(store))
    if name == "ABSOLUTE":
        name = str(tmp_path / "ABSOLUTE")
    r = run("models", "import", IR_DIR, "--name", name, "--precision", "fp32")
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("Error: model name ") and "is not a plain name" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not [p for p in tmp_path.rglob("*.onnx")]


@pytest.mark.parametrize("how", ["http", "folder"])
def test_a_part_file_that_is_a_link_is_never_written_through(tmp_path, how):
    if not (IR_DIR / f"{DEFAULT_MODEL}.xml").is_file():
        pytest.skip(f"no IR at {IR_DIR}")
    remote = CATALOG[DEFAULT_MODEL]
    store = tmp_path / "store"
    folder = sources_dir(remote.name, remote.variant, store)
    folder.mkdir(parents=True)
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"the user's own file\n")
    (folder / f"{remote.xml.name}.part").symlink_to(victim)
    files = {p.name: p.read_bytes() for p in IR_DIR.iterdir() if p.suffix in (".xml", ".bin")}
    with FileServer(files) as server, pytest.raises(ModelError, match="is a symbolic link") as err:
        fetch_ir(source=server.url if how == "http" else IR_DIR, store=store)
    assert err.value.path == str(folder / f"{remote.xml.name}.part")
    assert victim.read_bytes() == b"the user's own file\n"
    assert not (folder / remote.xml.name).exists()


def test_a_model_file_that_is_a_link_is_replaced_not_written_through(tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    if not (IR_DIR / f"{DEFAULT_MODEL}.xml").is_file():
        pytest.skip(f"no IR at {IR_DIR}")
    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setenv("POSECLI_MODELS", str(store))
    victim = tmp_path / "precious.txt"
    victim.write_bytes(b"the user's own file\n")
    (store / "hpe.onnx").symlink_to(victim)
    r = run("models", "import", IR_DIR, "--name", "hpe", "--precision", "fp32", "--force", "-q")
    assert r.exit_code == 0, r.output
    assert victim.read_bytes() == b"the user's own file\n"
    assert not (store / "hpe.onnx").is_symlink() and (store / "hpe.onnx").stat().st_size > 1_000_000
