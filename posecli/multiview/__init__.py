"""Several calibrated cameras, one 3D skeleton per person.

calibration (cameras and their file formats) -> associate (which 2D person in each view is
which 3D person, ids across frames) -> triangulate (robust, confidence-weighted DLT) ->
limbs (bones keep their length) -> outputs (3D JSON, TRC, CSV); ``run`` ties them for
``posecli 3d``.
"""

# The 2D mode for videos. From the measurement of the shared demo (bench_3d): against each mode's
# own 2D, balanced put the 3D 8.6 px from the 2D (fast 11.7) with the 8 limbs in 99% of frames (91%).
DEFAULT_MODE = "balanced"
