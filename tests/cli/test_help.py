"""Every command's ``--help``: the options the README and docs/ show, an example, defaults from their tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from posecli.cli import main

from tests.helpers import REPO


def _help(*command: str) -> str:
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # one line: wrapping does not matter


@pytest.mark.parametrize("command", ["video", "batch"])
def test_batch_size_help_is_the_device_table(command):
    from posecli.network.session import DEFAULT_BATCH_SIZE

    text = _help(command)
    for device, size in DEFAULT_BATCH_SIZE.items():
        assert f"{device} {size}" in text
    assert "4 on a GPU" not in text


def test_train_choices_are_the_library_tables():
    """``--arch`` and ``--init`` list what the training library knows (its tables import torch,
    which ``posecli --help`` must not, so the CLI spells the names and this holds them equal)."""
    pytest.importorskip("torch")
    from posecli.train.loop import INITS
    from posecli.train.network import ARCHS

    params = {p.name: p for p in main.commands["train"].params}
    assert tuple(params["arch"].type.choices) == tuple(ARCHS)
    assert tuple(params["init"].type.choices) == INITS


# -- the README's and docs/'s options against the real --help ---------------------------------------
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CLI_PAGE = REPO / "docs" / "cli.md"
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


def _command_options() -> dict[str, set[str]]:
    """``{"image": {"--out", "-o", ...}, "models import": {...}}`` from the click commands."""
    out = {}
    for name, cmd in main.commands.items():
        sub = getattr(cmd, "commands", {})
        for sname, scmd in sub.items():
            out[f"{name} {sname}"] = {o for p in scmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        out[name] = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | {"--help", "-h"}
    return out


def _cli_section() -> str:
    """docs/cli.md, the page of every command's options."""
    return CLI_PAGE.read_text(encoding="utf-8")


def _command_of(line: str, options: dict) -> tuple[str, str] | None:
    """``(command, rest)`` for a ``posecli COMMAND ...`` line (the longest command that fits)."""
    m = re.match(r"posecli ((?:[a-z]+ ?){1,2})", line)
    if m is None:
        return None
    words = m.group(1).split()
    for n in (2, 1):
        name = " ".join(words[:n])
        if name in options:
            return name, line[len("posecli ") + len(name):]
    return None


def _readme_claims() -> list[tuple[str, str]]:
    """``(command, option)`` for every option the README or a docs/ page shows with a command."""
    options = _command_options()
    text = "\n".join(page.read_text(encoding="utf-8") for page in DOCS)
    claims = []
    # 1. Command lines in code blocks and inline code, on every page.
    lines = [ln.strip() for ln in text.splitlines()] + re.findall(r"`(posecli [^`]+)`", text)
    for line in lines:
        found = _command_of(line.split("#")[0], options)
        if found:
            claims += [(found[0], flag) for flag in FLAG.findall(found[1])]
    # 2. Option tables (the shared options of docs/cli.md, tables with a "commands" column on any
    # page), and docs/cli.md's "`video` adds ..." sentences.
    section = _cli_section()
    shared = re.search(r"Options shared by (.*?):", section).group(1)
    commands = re.findall(r"`(\w+)`", shared)
    for row in re.findall(r"^\| (`--.*) \|$", text, flags=re.MULTILINE):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)]
        only = [c for group in re.findall(r"\((\w+(?:, \w+)*)\)", cells[0].replace("`", ""))
                for c in group.split(", ")]  # "(image)" or "(image, video, batch)"
        if len(cells) > 2 and re.fullmatch(r"[a-z]+(, [a-z]+)*", cells[1]):  # a "commands" column
            only = cells[1].split(", ")
        for flag in FLAG.findall(" ".join(re.findall(r"`([^`]*)`", cells[0]))):
            claims += [(c, flag) for c in (only or commands)]
    for command, span in re.findall(r"`(\w+)` adds\s(.*?)(?:\.\s|\.$)", section, flags=re.DOTALL):
        claims += [(command, flag) for code in re.findall(r"`([^`]*)`", span) for flag in FLAG.findall(code)]
    return claims


def test_the_docs_show_only_options_that_exist():
    options = _command_options()
    claims = _readme_claims()
    assert len(claims) > 40 and {c for c, _ in claims} >= {"image", "video", "batch", "eval"}
    missing = sorted({(c, f) for c, f in claims if f not in options[c]})
    assert not missing, f"Documented options that the command's --help lacks: {missing}"


def test_a_made_up_readme_option_would_be_caught():
    options = _command_options()
    assert _command_of("posecli video clip.mp4 --frobnicate 3", options) == ("video", " clip.mp4 --frobnicate 3")
    assert "--frobnicate" not in options["video"]
    assert _command_of("posecli models info NAME --json", options)[0] == "models info"


@pytest.mark.parametrize("command", sorted(_command_options()))
def test_every_command_help_has_an_example(command):
    text = CliRunner().invoke(main, [*command.split(), "--help"], terminal_width=200).output
    assert re.search(r"^\s*Examples?:\s*$", text, flags=re.MULTILINE), text
    examples = [ln.strip() for ln in text.split("Example", 1)[1].splitlines() if ln.strip().startswith("posecli ")]
    assert any(ln.startswith(f"posecli {command}") for ln in examples), examples
