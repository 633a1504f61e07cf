"""Draw only the arms (shoulder-elbow-wrist) of everyone in a photo.

    python examples/draw_arms.py photo.jpg arms.jpg
"""

import sys

import cv2

import posecli

ARMS = [("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist")]


def main(photo: str, out: str) -> int:
    estimator = posecli.PoseEstimator()
    image = posecli.read_image(photo)
    frame = estimator(image)
    skeleton = estimator.skeleton
    arm_limbs = [skeleton.limbs.index((skeleton.index(a), skeleton.index(b))) for a, b in ARMS]
    annotated = posecli.draw(image, frame.people, limbs=arm_limbs, thickness=4)
    cv2.imwrite(out, annotated)
    print(f"{len(frame.people)} people, arms drawn in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
