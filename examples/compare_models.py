"""Compare two models (or two precisions of one) on a COCO-format keypoint set.

    python examples/compare_models.py ANNOTATIONS.json IMAGE_DIR [MODEL_A] [MODEL_B]

Without models, compares the default model's float32 and INT8 variants. Prints COCO
keypoint AP, AR and images per second for each.
"""

import sys

import posecli


def main(annotations: str, images: str, model_a: str | None = None, model_b: str | None = None) -> int:
    if model_a is None:
        contenders = {"fp32": dict(precision="fp32"), "int8": dict(precision="int8")}
    else:
        contenders = {model_a: dict(model=model_a), model_b: dict(model=model_b)}
    print(f"{'model':<28} {'AP':>6} {'AP50':>6} {'AR':>6} {'img/s':>6}")
    for name, options in contenders.items():
        estimator = posecli.PoseEstimator(device="cpu", **options)
        metrics = posecli.evaluate_estimator(estimator, annotations, images)
        print(f"{name:<28} {metrics.ap:6.3f} {metrics.ap50:6.3f} {metrics.ar:6.3f} {metrics.images_per_s:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
