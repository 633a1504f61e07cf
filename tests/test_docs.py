"""The README and the pages under docs/: their links lead somewhere, and their commands run.

Every ``posecli ...`` line in a shell code block is run for real, in a folder laid out with the
files the line names (``photo.jpg`` is a real COCO photo, ``clip.mp4`` a short clip made from
one, ``person_keypoints.json`` and ``images/`` the shared mini set), unless NOT_RUN gives the
reason it cannot run here and the test that covers it. The options such lines use are checked
against each command's ``--help`` by tests/test_cli_help.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import IR_XML, MINI, REPO, SHARED, photo_clip, subprocess_env

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# Lines that cannot run on a test machine, each with what stands in for it.
NOT_RUN = {
    r"^posecli video (0|/dev/video)": "a camera: tests/test_live*.py read real cameras' stand-ins (FFmpeg streams)",
    r"^posecli video (rtsp|http|udp)://": "a remote stream: tests/test_live*.py run real streams on 127.0.0.1",
    r"--show": "a window and a person to close it: tests/test_live_video.py runs --show under Xvfb",
    r"^posecli models download\s*$": "the public model storage is out of reach: tests/test_download.py serves the same files",
    r"mirror\.example\.org": "a mirror that does not exist: tests/test_download.py runs a real one on 127.0.0.1",
    r"^posecli (train|export) ": "hundreds of training steps: tests/test_train_loop.py trains a few",
    r"finetuned\.onnx": "the model the training line would make: tests/test_train_loop.py exports one",
    r"--engine ray": "a Ray cluster: tests/test_ray_engine.py runs the engine on a local one",
}
# Outputs named by these options must exist after the run.
OUTPUT_OPTIONS = ("--out", "--render", "-o")


def code_blocks(path: Path) -> list[tuple[str, list[str]]]:
    """``(language, lines)`` of every fenced code block in ``path``."""
    blocks, lang, lines = [], None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and lang is None:
            lang, lines = fence.group(1), []
        elif fence:
            blocks.append((lang, lines))
            lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def doc_commands() -> list[tuple[str, str]]:
    """``(page, command line)`` for every posecli command in a shell block, comments cut off."""
    found = []
    for page in DOCS:
        for lang, lines in code_blocks(page):
            if lang not in ("sh", "bash", "console", ""):
                continue
            for line in lines:
                line = re.sub(r"\s+#\s.*$", "", line.strip())
                line = re.sub(r"^python -m posecli\b", "posecli", line)
                if re.match(r"^posecli(\s|$)", line):
                    found.append((page.name, line))
    return found


def _reason_not_run(line: str) -> str | None:
    return next((why for pattern, why in NOT_RUN.items() if re.search(pattern, line)), None)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_dir) -> Path:
    """A folder with every file the documented commands name."""
    root = tmp_path_factory.mktemp("docs")
    photos = sorted(MINI.glob("*.jpg"))
    shutil.copy(photos[0], root / "photo.jpg")
    shutil.copy(photos[1], root / "group.jpg")
    image = cv2.imread(str(photos[0]))
    alpha = np.full(image.shape[:2], 255, np.uint8)
    alpha[:, : image.shape[1] // 4] = 0
    cv2.imwrite(str(root / "cutout.png"), np.dstack([image, alpha]))
    for name in ("clip.mp4", "dance.mp4"):
        photo_clip(root / name, photos[0], 12)
    mixed = root / "photos_and_videos" / "sub"
    mixed.mkdir(parents=True)
    shutil.copy(photos[2], mixed.parent / "a.jpg")
    photo_clip(mixed / "b.mp4", photos[3], 6)
    shutil.copytree(MINI, root / "images", ignore=shutil.ignore_patterns("*.json"))
    shutil.copy(MINI / "person_keypoints.json", root / "person_keypoints.json")
    for folder, ext in (("frames", ".png"), ("shots", ".jpg")):
        (root / folder).mkdir()
        for i in range(3):
            cv2.imwrite(str(root / folder / f"frame_{i}{ext}"), image)
    (root / "out" / "demo").mkdir(parents=True)  # make demo makes it before its command
    (root / "path" / "to").mkdir(parents=True)
    for src in (IR_XML, IR_XML.with_suffix(".bin")):
        shutil.copy(src, root / "path" / "to" / src.name.replace("human-pose-estimation-0001", "model"))
    return root


def test_the_docs_have_commands_and_each_unrun_one_says_why():
    commands = doc_commands()
    pages = {page for page, _ in commands}
    assert {"README.md", "cli.md", "live.md", "models.md"} <= pages
    ran = [line for _, line in commands if _reason_not_run(line) is None]
    assert len(ran) >= 20, ran


def test_a_broken_doc_command_would_be_caught(workdir, default_model_int8, model_store):
    result = _run("posecli image nosuchphoto.jpg", workdir, model_store)
    assert result.returncode == 1 and "nosuchphoto.jpg" in result.stderr


def _run(line: str, cwd: Path, store: Path) -> subprocess.CompletedProcess:
    line = line.replace("../shared", str(SHARED))
    env = {**subprocess_env(), "POSECLI_MODELS": str(store)}
    if " models import " in line or "models download --from" in line:
        env["POSECLI_MODELS"] = str(cwd / "import-store")  # the real store keeps its models
    # The shell expands globs (*.jpg) as it would for a user; posecli is this checkout's.
    command = f"{shlex.quote(sys.executable)} -m {line}"
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("page,line", doc_commands(), ids=lambda v: v[:70])
def test_documented_command_runs(page, line, workdir, default_model_int8, model_store):
    why = _reason_not_run(line)
    if why:
        pytest.skip(f"not run here: {why}")
    result = _run(line, workdir, model_store)
    assert result.returncode == 0, f"{page}: {line}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr
    words = shlex.split(line)
    for option, value in zip(words, words[1:]):
        if option in OUTPUT_OPTIONS:
            assert (workdir / value.replace("../shared", str(SHARED))).exists(), f"{line}: no {value}"


# -- links ------------------------------------------------------------------------------------
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_anchor(m) for m in re.findall(r"^#+ (.*)$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)}


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_link_leads_somewhere(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def test_the_readme_is_a_landing_page():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    for section in ("## Two commands", "## A first result", "## Documentation"):
        assert section in text
    assert (REPO / "docs" / "img" / "first-result.png").exists()
