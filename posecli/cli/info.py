"""``posecli info``: this machine as posecli sees it: the CPU and its instruction sets, the runtime
and precision ``auto`` chooses and why, and the frames/s to expect per mode, measured now."""

from __future__ import annotations

import json

import click

from ..errors import PoseError
from .common import fail

MODES_TIMED = ("fastest", "fast", "accurate")


@click.command("info", epilog="""\b
Examples:
  posecli info                 # a few seconds: CPU, runtime, frames/s per mode
  posecli info --json          # the same as one JSON object
  posecli info --no-measure    # CPU and runtime only
""")
@click.option("--model", "-m", default=None, metavar="NAME|PATH", help="Model [default: the default model].")
@click.option("--measure/--no-measure", default=True, show_default=True,
              help="Time each mode on a synthetic 1280x720 frame (a few seconds).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def info_command(model, measure, as_json):
    """Say what this machine is to posecli: CPU, instruction sets, the runtime and precision
    auto picks (and why), and the frames/s to expect per mode (on the CPU)."""
    from ..inference.estimator import PoseEstimator
    from ..network.cpu import cpu_facts
    from ..network.session import PoseModel

    cpu = cpu_facts()
    try:
        loaded = PoseModel.load(model, device="cpu", precision="auto", runtime="auto")
        fps = {}
        if measure:
            from ..video.speed import expected_fps

            fps = expected_fps({m: PoseEstimator(loaded, mode=m) for m in MODES_TIMED})
    except PoseError as exc:
        raise fail(exc) from None
    report = {
        "cpu": cpu.name, "cores": cpu.cores, "machine": cpu.machine,
        "instruction_sets": cpu.isa, "speed_class": cpu.speed_class,
        "model": str(loaded.path), "precision": loaded.info.precision,
        "precision_why": ("auto picks the INT8 model on the CPU when the store has it"
                          if loaded.info.precision == "int8" else "auto: no INT8 variant in the store, float32"),
        "runtime": loaded.runtime, "runtime_why": loaded.runtime_note,
        "frames_per_s": {m: round(v, 1) for m, v in fps.items()},
    }
    if as_json:
        click.echo(json.dumps(report, indent=1))
        return
    for line in _lines(report):
        click.echo(line)


def _lines(r: dict) -> list[str]:
    isa = r["instruction_sets"]
    sets = "unknown (no CPU flags readable here)" if isa is None else \
        ", ".join(f"{name} {'yes' if has else 'no'}" for name, has in isa.items())
    out = [f"CPU: {r['cpu']} ({r['cores']} logical CPUs, {r['machine']})",
           f"instruction sets: {sets}",
           f"speed class: {r['speed_class']} (docs/realtime.md has figures per class)",
           f"model: {r['model']}",
           f"precision: {r['precision']} ({r['precision_why']})",
           f"runtime: {r['runtime']} ({r['runtime_why']})"]
    if r["frames_per_s"]:
        per = ", ".join(f"{m} {v:g}" for m, v in r["frames_per_s"].items())
        out.append(f"frames/s to expect on a 1280x720 frame (network and parsing; decoding and "
                   f"drawing come on top): {per}")
    return out
