"""``posecli eval -a ANN -i DIR`` reads only images inside DIR (issue 26, case 7), and a hostile
annotation file is a one-line error naming it (case 10). Real annotation files and images."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("pycocotools")

from posecli.errors import InputError
from posecli.evaluate import coco_images, load_annotations
from tests.helpers import fast, photo, run


def _annotations(path, file_name: str):
    data = {"images": [{"id": 1, "file_name": "inside.jpg", "width": 160, "height": 120},
                       {"id": 7, "file_name": file_name, "width": 160, "height": 120}],
            "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def folders(tmp_path):
    images = tmp_path / "set" / "images"
    images.mkdir(parents=True)
    photo(images / "inside.jpg")
    photo(tmp_path / "set" / "outside.jpg", seed=1)
    return tmp_path, images


@pytest.mark.parametrize("escape", ["../outside.jpg", "sub/../../outside.jpg", "ABSOLUTE"])
def test_file_names_that_leave_the_image_folder_are_refused(folders, tiny_model, escape):
    tmp_path, images = folders
    if escape == "ABSOLUTE":
        escape = str(tmp_path / "set" / "outside.jpg")
    ann = _annotations(tmp_path / "ann.json", escape)
    r = run("eval", "-a", ann, "-i", images, "-q", *fast(tiny_model))
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(f"Error: {ann}: image 7: file_name '{escape}' is not a path inside the images folder")
    assert len(r.stderr.strip().splitlines()) == 1
    with pytest.raises(InputError, match="not a path inside"):  # a dict given to the library too
        coco_images(json.loads(ann.read_text()), images)


def test_a_link_inside_the_folder_is_the_users_choice_and_is_followed(folders, tiny_model):
    tmp_path, images = folders
    (images / "linked.jpg").symlink_to(tmp_path / "set" / "outside.jpg")
    ann = _annotations(tmp_path / "ann.json", "linked.jpg")
    r = run("eval", "-a", ann, "-i", images, "-q", "--json", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["images"] == 2


def test_deeply_nested_annotation_file_is_one_line_naming_it(tmp_path, tiny_model, folders):
    _, images = folders
    ann = tmp_path / "deep.json"
    ann.write_text('{"images": ' + "[" * 100_000 + "]" * 100_000 + ', "annotations": []}')
    r = run("eval", "-a", ann, "-i", images, "-q", *fast(tiny_model))
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(f"Error: {ann}: nested more than 64 levels deep"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    shallow_but_deep = tmp_path / "deep100.json"  # deep enough for a deepcopy to fail, parsed fine by json
    shallow_but_deep.write_text('{"images": [], "annotations": [], "x": ' + "[" * 900 + "]" * 900 + "}")
    with pytest.raises(InputError, match="nested more than 64"):
        load_annotations(shallow_but_deep)
    with pytest.raises(InputError, match="nest more than 64"):
        load_annotations(json.loads(shallow_but_deep.read_text()))


def test_training_annotations_have_the_same_checks(tmp_path):
    """``posecli train`` reads COCO files too: the same file_name rule and nesting limit."""
    from posecli.train.dataset import load_coco_keypoints

    ann = _annotations(tmp_path / "train.json", "../outside.jpg")
    with pytest.raises(InputError, match="image 7: file_name '../outside.jpg' is not a path inside") as err:
        load_coco_keypoints(ann)
    assert err.value.path == str(ann)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="nested more than 64 levels deep") as err:
        load_coco_keypoints(deep)
    assert err.value.path == str(deep)


def test_the_accuracy_bench_sets_pass_the_same_checks():
    """``make bench``'s accuracy sets name their photos as ``posecli eval`` accepts them
    (they once carried absolute names, which eval refuses, and the bench section died)."""
    from bench.accuracy_sets import ROOT, measured_sets

    for name, data in measured_sets().items():
        pairs = coco_images(load_annotations(data), ROOT)
        assert pairs and all(path.is_file() for _, path in pairs), name
