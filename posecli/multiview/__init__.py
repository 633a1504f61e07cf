"""Several calibrated cameras, one 3D skeleton per person.

calibration (cameras and their file formats) -> associate (which 2D person in each view is
which 3D person, ids across frames) -> triangulate (robust, confidence-weighted DLT) ->
limbs (bones keep their length) -> outputs (3D JSON, TRC, CSV); ``run`` ties them for
``posecli 3d``.
"""
