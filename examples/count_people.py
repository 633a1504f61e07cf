"""Count the people in each frame of a video, and how many different people appeared.

    python examples/count_people.py clip.mp4

Prints ``frame,time_s,people`` lines, then the number of distinct track ids.
"""

import sys

import posecli


def main(video: str) -> int:
    estimator = posecli.PoseEstimator()
    seen_ids = set()
    print("frame,time_s,people")
    for result in posecli.iter_video_poses(estimator, video, track=True):
        people = result.frame.people
        seen_ids.update(p.track_id for p in people if p.track_id is not None)  # None: not yet confirmed
        print(f"{result.index},{result.timestamp:.3f},{len(people)}")
    print(f"distinct people: {len(seen_ids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
