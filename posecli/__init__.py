"""posecli: multi-person 2D human pose estimation, the OpenPose way."""

__version__ = "0.1.0"
