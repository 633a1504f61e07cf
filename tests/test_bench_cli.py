"""``python -m bench``'s command line: a section name it does not know is a usage error, not
an empty report (a real subprocess, as ``make bench`` runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import subprocess_env

ROOT = Path(__file__).resolve().parents[1]


def test_an_unknown_section_is_a_usage_error_and_writes_no_report(tmp_path):
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "eval_modes,eval_heights", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m bench: error: --only eval_modes,eval_heights: no such section (choose from ")
    assert "eval_modes, eval_heights" in last and last.count(" 3d,") == 1  # each name once
    assert not out.exists()
