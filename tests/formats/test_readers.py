import json

import numpy as np
import pytest

from posecli.errors import InputError
from posecli.formats.readers import load_openpose_json, load_posecli_json
from posecli.formats.records import openpose_record
from posecli.formats.writers import ResultWriter

from tests.helpers import frame, person


def test_openpose_json_round_trip(tmp_path):
    p = person({"nose": (10.5, 20.25), "l_ankle": (30, 40)}, track_id=4)
    path = tmp_path / "x_keypoints.json"
    path.write_text(json.dumps(openpose_record(frame(p))))
    back = load_openpose_json(path)
    (q,) = back.people
    assert q.skeleton.name == "coco18" and q.track_id == 4
    np.testing.assert_allclose(q.xy[q.visible], p.xy[p.visible])
    assert q.visible.sum() == 2 and not q.visible[1]


def test_posecli_json_round_trip(tmp_path):
    p = person({"neck": (1, 2), "r_hip": (3, 4)})
    w = ResultWriter("posecli", tmp_path / "r.json", model="m", skeleton=p.skeleton)
    w.add(frame(p, source="a.jpg", size_wh=(100, 50)))
    w.close()
    (f,) = load_posecli_json(tmp_path / "r.json")
    assert f.size_wh == (100, 50) and f.source == "a.jpg"
    np.testing.assert_allclose(f.people[0].xy[f.people[0].visible], [[1, 2], [3, 4]])


def test_bad_files_raise_input_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_openpose_json(bad)
    bad.write_text('{"people": [{"pose_keypoints_2d": [1, 2]}]}')
    with pytest.raises(InputError, match="multiple of 3"):
        load_openpose_json(bad)
    with pytest.raises(InputError, match="not a posecli results file"):
        load_posecli_json(bad)
