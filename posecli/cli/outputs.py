"""Output controls shared by ``image``, ``video`` and ``batch``: people kept, part candidates,
saved maps and the look of rendered images and videos."""

from __future__ import annotations

import math

import click

from ..errors import PoseError


def _finite(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number")
    return value


def people_options(func):
    """--max-people and --part-candidates (PoseEstimator settings)."""
    options = [
        click.option("--max-people", type=click.IntRange(min=1), default=None, metavar="N",
                     help="Keep the N highest-scoring people per image or frame, e.g. --max-people 1."),
        click.option("--part-candidates", is_flag=True,
                     help="Also write every part candidate (NMS peak: x, y, score in image pixels): "
                          "part_candidates in the posecli and openpose formats."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def render_style_options(func):
    """How --render draws: background, sizes, score threshold, ids and boxes."""
    options = [
        click.option("--background", default=None, metavar="COLOR",
                     help="Draw the skeletons alone on this colour: black, white, #RRGGBB or R,G,B "
                          "[default: on the picture]."),
        click.option("--thickness", type=click.IntRange(1, 1000), default=None, metavar="PX",
                     help="Limb line width in pixels [default: 2 per 400 px of image size]."),
        click.option("--radius", type=click.IntRange(1, 1000), default=None, metavar="PX",
                     help="Keypoint dot radius in pixels [default: 3 per 400 px of image size]."),
        click.option("--min-score", type=click.FloatRange(0, 1), default=0.0, show_default=True, metavar="S",
                     callback=_finite, help="Keypoints scoring below S, and their limbs, are not drawn."),
        click.option("--ids/--no-ids", "show_ids", default=True, show_default=True,
                     help="Write track ids (video), in a colour that stays with the person."),
        click.option("--boxes", "show_boxes", is_flag=True, help="Draw a box around each person."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def build_renderer(background, thickness, radius, min_score, show_ids, show_boxes):
    """A :class:`Renderer` from :func:`render_style_options`; bad values are usage errors."""
    from ..formats.render import Renderer, parse_color

    try:
        color = None if background is None else parse_color(background)
        return Renderer(thickness=thickness, radius=radius, min_score=min_score, show_ids=show_ids,
                        show_boxes=show_boxes, background=color)
    except PoseError as exc:
        raise click.BadParameter(exc.message, param_hint="--background") from None


def maps_option(func):
    return click.option(
        "--write-maps", "maps_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
        help="Save the network's heatmaps and PAFs (float16 .npz, with the letterbox to map cells to pixels) "
             "per image or frame into DIR; read them with posecli.read_maps. Large: a warning says when a "
             "video gets more than 1 GB per minute.")(func)


def pose_options(func):
    """The options ``image``, ``video`` and ``batch`` share, in their --help order: the people kept
    (:func:`people_options`), the look of --render (:func:`render_style_options`), --write-maps
    and the estimator's (:func:`~posecli.cli.common.estimator_options`)."""
    from .common import estimator_options

    for group in (estimator_options, maps_option, render_style_options, people_options):
        func = group(func)
    return func


def layout_option(func):
    """--layout: the keypoint order of --format openpose (posecli.formats.layouts)."""
    from ..formats.layouts import DEFAULT_LAYOUT, LAYOUTS

    return click.option(
        "--layout", type=click.Choice(list(LAYOUTS)), default=DEFAULT_LAYOUT, show_default=True,
        help="Keypoint order of --format openpose: coco18 (CMU's COCO), body25 (CMU's BODY_25, what most "
             "OpenPose readers assume: MidHip between the hips, feet 0,0,0) or coco17 (COCO's order, "
             "Pose2Sim's COCO_17).")(func)


def angles_option(func):
    """--angles: joint and segment angles in the CSV (posecli.angles)."""
    return click.option(
        "--angles", is_flag=True,
        help="With --format csv: also a row per person and angle (column 'angle', degrees): knee, hip, "
             "shoulder, elbow joint angles and trunk, pelvis, shoulders, thigh, shank, arm, forearm segment "
             "angles to the horizontal, as Sports2D defines them (ankles and feet need a model with feet; "
             "COCO-18 has none).")(func)


def check_format_options(fmt: str, layout: str, angles: bool) -> None:
    """--layout goes with --format openpose, --angles with --format csv (usage errors otherwise)."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    if fmt != "openpose" and ctx.get_parameter_source("layout") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--layout orders the keypoints of --format openpose: add --format openpose")
    if angles and fmt != "csv":
        raise click.UsageError("--angles adds angle rows to --format csv: add --format csv")
