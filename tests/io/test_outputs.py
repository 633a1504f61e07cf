"""Output paths (io.outputs): unique result names, outputs that hit inputs or each other,
devices and links, leftovers of killed runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posecli.errors import OutputConflict
from posecli.io.atomic import AtomicFile
from posecli.io.outputs import check_distinct, stream_target, unique_names


def test_unique_names_keep_the_extension_then_count():
    paths = [Path("a/x.jpg"), Path("b/x.jpg"), Path("a/x.png"), Path("a/y.jpg"), Path("a/X.JPG")]
    assert unique_names(paths) == ["x.jpg", "x.jpg-2", "x.png", "y", "X.JPG-3"]
    # a name that already looks counted ("a.jpg-2.jpg" has the stem "a.jpg-2") is counted past
    assert unique_names([Path("a.jpg"), Path("b/a.jpg"), Path("a.jpg-2.jpg")]) == ["a.jpg", "a.jpg-2", "a.jpg-2-2"]


def test_check_distinct_finds_inputs_behind_links_and_dot_dots(tmp_path):
    photo = tmp_path / "in.jpg"
    photo.write_bytes(b"jpeg")
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.jpg"
    link.symlink_to(photo)
    hard = tmp_path / "hard.jpg"
    os.link(photo, hard)
    for out in (photo, tmp_path / "sub" / ".." / "in.jpg", link, hard):
        with pytest.raises(OutputConflict):
            check_distinct([photo], [("out", out)])
    with pytest.raises(OutputConflict, match="both out and render"):
        check_distinct([photo], [("out", tmp_path / "o.jpg"), ("render", tmp_path / "sub" / ".." / "o.jpg")])
    check_distinct([photo], [("out", tmp_path / "o.json"), ("render", tmp_path / "o.jpg")])


def test_atomic_file_through_a_link_replaces_the_target_and_keeps_the_link(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert not stream_target(link)
    with AtomicFile(link) as f:
        f.write("new")
    assert link.is_symlink() and real.read_text() == "new"
