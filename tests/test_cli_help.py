"""Every command's ``--help``: the options the README shows, an example, defaults from their tables."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from posecli.cli import main


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
