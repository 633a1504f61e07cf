"""Issue 26 case 11: runs measuring ``--runtime auto`` at once on a fresh store each keep their
verdict: the table is re-read and merged under a lock, not overwritten with a stale copy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from posecli.network.backends import choice
from tests.helpers import subprocess_env

WRITERS, EACH = 4, 15  # 60 verdicts: under MAX_ENTRIES, so none may be dropped

_RECORD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from posecli.network.backends import choice
    store, who, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    time.sleep(max(0.0, start - time.time()))  # all writers begin together
    for i in range(int(sys.argv[4])):
        verdict = {"runtime": "onnxruntime", "onnxruntime_ms": 1.0, "openvino_ms": 2.0, "size_hw": [8, 8],
                   "compile_s": 0.1}
        choice.record_verdict(store, f"{who}-{i}", verdict)
""")


@pytest.mark.slow  # four real processes
def test_verdicts_recorded_at_once_by_several_processes_are_all_kept(tmp_path):
    assert WRITERS * EACH <= choice.MAX_ENTRIES
    start = time.time() + 3  # after every interpreter has started
    procs = [subprocess.Popen([sys.executable, "-c", _RECORD, str(tmp_path), f"w{n}", str(start), str(EACH)],
                              env=subprocess_env(), stderr=subprocess.PIPE, text=True) for n in range(WRITERS)]
    for proc in procs:
        assert proc.wait(120) == 0, proc.stderr.read()
    table = json.loads((tmp_path / choice.CHOICE_FILE).read_text())
    assert sorted(table) == sorted(f"w{n}-{i}" for n in range(WRITERS) for i in range(EACH))
