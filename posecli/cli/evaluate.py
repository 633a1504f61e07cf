"""``posecli eval``: COCO keypoint AP and images per second on an annotated set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ..errors import InputError, MissingExtraError, OutputError, PoseError
from ..formats.writers import ResultWriter
from .common import estimator_options, estimator_settings, fail, mode_option, say

EPILOG = """\b
Examples:
  posecli eval --annotations coco/annotations/person_keypoints_val2017.json --images coco/val2017
  posecli eval --annotations person_keypoints.json --images DIR --scales 1,0.75,0.5 --flip
  posecli eval --annotations person_keypoints.json --images DIR --parser lightweight --json
  posecli eval --annotations person_keypoints.json --images DIR -P min_parts=3 --out detections.json
"""

# Printed by default, in this order; --json gives all ten.
_SHOWN = ("ap", "ap50", "ap75", "ap90", "apm", "apl", "ar")


@click.command("eval", epilog=EPILOG)
@click.option("--annotations", "-a", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="COCO-format keypoint annotation file (e.g. person_keypoints_val2017.json).")
@click.option("--images", "-i", "images_dir", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Directory holding the images named by the annotations' file_name.")
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also save the detections as COCO keypoint results (JSON list).")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Only the first N images by id (scored against those images only).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@estimator_options
@mode_option("accurate")
def eval_command(annotations, images_dir, out, limit, as_json, quiet, **est_opts):
    """Score the estimator on a COCO keypoint set: AP, AR (OKS) and images per second.

    Uses pycocotools' COCOeval, so on the full COCO val2017 the figures are comparable with
    published ones. Every image listed in the annotations is run, people or not, decoded and
    estimated as `posecli image` does with the same options (same default mode), so --out
    holds the detections a user would get.
    """
    if out is not None and out.is_dir():
        raise fail(OutputError("is a directory; give a file name", path=out))
    if not images_dir.is_dir():
        raise fail(InputError("no such image directory", path=images_dir))
    try:
        from ..evaluate import evaluate_estimator, load_annotations

        data = load_annotations(annotations)
        est = estimator_settings(**est_opts).build()
        writer = ResultWriter("coco", out) if out is not None else None
    except PoseError as exc:
        raise fail(exc) from None

    total = min(len(data["images"]), limit or len(data["images"]))
    bar = _progress(total, quiet)

    def on_image(done, total, frame, image_id):
        if writer is not None:
            writer.add(frame, image_id=image_id)
        if bar is not None:
            bar.update(1)

    try:
        metrics = evaluate_estimator(est, data, images_dir, limit=limit, on_image=on_image)
    except BaseException as exc:
        if writer is not None:
            writer.close(complete=False, keep_partial=False)
        if isinstance(exc, MissingExtraError):
            raise fail(MissingExtraError(exc.module, exc.extra, "posecli eval")) from None
        if isinstance(exc, PoseError):
            raise fail(exc) from None
        raise
    finally:
        if bar is not None:
            bar.close()
    if writer is not None:
        try:
            writer.close()
        except PoseError as exc:
            raise fail(exc) from None

    if as_json:
        info = {"model": est.model.info.name, "precision": est.model.info.precision, "mode": est.mode,
                "height": est.height, "scales": list(est.scales), "flip": est.flip, "zoom": est.zoom is not None,
                "parser": est_opts["parser_preset"]}
        click.echo(json.dumps({**metrics.as_dict(), **info}))
        return
    click.echo(_table(metrics))
    if out is not None:
        say(f"detections: {out}", quiet=quiet)


def _progress(total: int, quiet: bool):
    """A progress bar on stderr (plain lines in a log), or None."""
    if quiet:
        return None
    from .progress import progress_bar

    return progress_bar(total, False, desc="eval", unit="image", leave=False)


def _table(metrics) -> str:
    """The metrics as ``NAME  value`` lines."""
    from ..evaluate import METRIC_LABELS

    rows = []
    for name in _SHOWN:
        v = getattr(metrics, name)
        rows.append((METRIC_LABELS[name], "n/a" if math.isnan(v) else f"{v:.3f}"))
    rows.append(("images", str(metrics.images)))
    ips = metrics.images_per_s
    rows.append(("images/s", "n/a" if math.isnan(ips) else f"{ips:.2f}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
