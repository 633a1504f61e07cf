"""Issue 26 case 3: ``--write-maps`` names are made distinct exactly as the result files are
(``a/x.jpg`` and ``b/x.jpg``, ``x.jpg`` and ``x.png``): no photo's maps overwrite another's."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from posecli.formats.maps import read_maps
from tests.helpers import fast, invoke


def _photo(path, size_hw, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 255, (*size_hw, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.mark.parametrize("names", [("a/x.jpg", "b/x.jpg"), ("x.jpg", "x.png"), ("a/x.jpg", "b/X.jpg", "c/x.png")])
def test_photos_sharing_a_name_keep_maps_of_their_own(names, tiny_model, tmp_path):
    # sizes tell the photos apart: each maps file remembers its photo's size
    photos = [_photo(tmp_path / name, (96 + 16 * i, 128 + 32 * i), i) for i, name in enumerate(names)]
    r = invoke("image", *photos, "--out", f"{tmp_path / 'mc'}/", "--write-maps", tmp_path / "maps", *fast(tiny_model))
    assert r.exit_code == 0, r.output
    results = sorted((tmp_path / "mc").iterdir())
    maps = sorted((tmp_path / "maps").iterdir())
    assert len(maps) == len(photos) == len(results)
    assert [p.stem for p in maps] == [p.stem for p in results]  # the same distinct names
    for result, saved in zip(results, maps):
        (record,) = json.loads(result.read_text())["images"]
        assert read_maps(saved).box.image_wh == (record["width"], record["height"])
