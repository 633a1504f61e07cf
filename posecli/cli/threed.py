"""``posecli 3d``: several calibrated cameras of one scene -> 3D keypoints per person and frame."""

from __future__ import annotations

from pathlib import Path

import click

from ..multiview import DEFAULT_MODE
from .common import (
    VERBOSE_HELP,
    CommandReport,
    FiniteFloat,
    describe_setup,
    estimator_options,
    estimator_settings,
    mode_option,
    progress_bar,
    safe_interrupts,
    say,
    usage_errors,
)

EPILOG = """\b
Examples:
  posecli 3d cam01.mp4 cam02.mp4 cam03.mp4 cam04.mp4 -c Calib.toml -o poses3d.json -o poses3d.trc
  posecli 3d --from-2d cam01.json cam02.json cam03.json -c Calib.toml -o poses3d.csv
  posecli 3d --from-2d openpose/cam01/ openpose/cam02/ -c cameras/ -o poses3d.trc   # OpenPose JSON, XML
  posecli 3d a.mp4 b.mp4 -c rig.toml -o out.json --offsets 0,12                     # skip b's first 12
  posecli 3d a.mp4 b.mp4 c.mp4 -c rig.toml -o out.json --offsets auto                # estimated, reported

\b
Inputs are given in the calibration's camera order. --calibration: a Pose2Sim/anipose TOML
file, OpenPose camera files (a folder of .xml, or -c once per file), or a Qualisys .qca.txt.
Outputs (--out, any number; the extension picks the format): .json (posecli 3D JSON), .trc
(OpenSim, Pose2Sim, Blender; Y up; the person seen most, or one file per person when the name
holds {id}: walk_{id}.trc), .csv (a row per frame, person and
keypoint). See docs/calibration.md and docs/3d.md.
"""


# posecli.multiview.DEFAULT_MODE says where the figures come from
THREE_D_MODE_WHY = ("a keypoint a few pixels off is centimetres in 3D "
                    "(shared demo: 8.6 px against fast's 11.7)")


def parse_offsets(value: str | None) -> tuple[int, ...] | str | None:
    """``"0,12,3"`` -> (0, 12, 3); ``"auto"`` stays (click errors name --offsets)."""
    if value is None or value.strip().lower() == "auto":
        return None if value is None else "auto"
    try:
        offsets = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"'{value}': expected whole frame counts separated by commas, e.g. 0,12,3",
                                 param_hint="--offsets") from None
    return offsets


@click.command("3d", epilog=EPILOG)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--calibration", "-c", "calibration", multiple=True, required=True,
              type=click.Path(path_type=Path),
              help="Pose2Sim/anipose TOML, OpenPose camera XML files (a folder, or repeat -c), "
                   "or a Qualisys .qca.txt.")
@click.option("--out", "-o", "outs", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Output file: .json, .trc or .csv (repeat for several).")
@click.option("--render", "-r", type=click.Path(path_type=Path), default=None,
              help="Check video (.mp4, .avi): every camera's frame with the 3D drawn back on it, "
                   "side by side.")
@click.option("--from-2d", "from_2d", is_flag=True,
              help="INPUTS are 2D results: posecli JSON files or folders of OpenPose JSON, one per camera.")
@click.option("--offsets", default=None, metavar="N1,N2,..",
              help="Frames to skip at the start of each input to align them, or auto (estimated from "
                   "the 2D and the calibration, up to 60 frames either way; reported) [default: aligned].")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N frames.")
@click.option("--fps", type=FiniteFloat(min=0, max=1000, min_open=True), default=None,
              help="Frame rate [default: the videos', or 30 for OpenPose folders].")
@click.option("--max-people", type=click.IntRange(min=1), default=None, metavar="N",
              help="Keep the N people seen by the most cameras in each frame.")
@click.option("--smooth", type=FiniteFloat(min=0, max=1000, min_open=True), default=None, metavar="HZ",
              help="Zero-phase low-pass of each 3D keypoint at HZ (e.g. 6) [default: off].")
@click.option("--no-limbs", is_flag=True, help="Leave bone lengths as triangulated.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes.")
@click.option("--verbose", "-v", is_flag=True, help=VERBOSE_HELP)
@estimator_options
@mode_option(DEFAULT_MODE, THREE_D_MODE_WHY)
def threed_command(inputs, calibration, outs, render, from_2d, offsets, max_frames, fps, max_people, smooth,
                   no_limbs, quiet, verbose, **est_opts):
    """Triangulate the people that several calibrated cameras see into 3D (metres, the
    calibration's world frame), with ids across frames and bones that keep their length.

    INPUTS: one video per camera, or with --from-2d one 2D result per camera. Nothing is
    written until the 3D is complete; Ctrl-C leaves existing outputs as they were.
    """
    from ..multiview.run import ThreeDOptions, ThreeDRun, reconstruction_config

    estimator = None if from_2d else estimator_settings(**est_opts)
    with usage_errors():
        options = ThreeDOptions(tuple(inputs), tuple(calibration), tuple(outs), from_2d=from_2d,
                                offsets=parse_offsets(offsets), max_frames=max_frames, fps=fps, render=render,
                                estimator=estimator,
                                config=reconstruction_config(max_people=max_people, smooth_hz=smooth,
                                                             limbs=not no_limbs))
    with safe_interrupts() as interrupts, ThreeDReporter(quiet) as report:
        job = ThreeDRun(options)
        report.bar = progress_bar(job.expected or None, quiet or from_2d, desc="2D")
        job.run(progress=lambda n: (report.bar.update(n), interrupts.check()))
    for line in job.summary():
        say(line, quiet=quiet)
    if verbose:
        if job.estimator is not None:
            for line in describe_setup(job.estimator):
                say(line)
        say(f"2D {job.seconds_2d:.2f} s, 3D {job.seconds_3d:.2f} s (association, triangulation, ids, bones)")


class ThreeDReporter(CommandReport):
    """The progress bar closed however the run ends; an interrupted run wrote nothing."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar = quiet, None

    def bars(self) -> tuple:
        return (self.bar,)

    def interrupted(self, stopped: str) -> None:
        say(f"{stopped}: nothing written.")
