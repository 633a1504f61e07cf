"""Runtimes that can run a pose network behind :class:`posecli.network.session.PoseModel`.

``onnxruntime`` (the CPU provider, CUDA, TensorRT) lives in :mod:`posecli.network.session`;
the OpenVINO runtime (CPU) in :mod:`.openvino`; :mod:`.choice` decides which one ``auto``
uses on the CPU at hand, and :mod:`.mixed` runs both where OpenVINO won (OpenVINO for
input sizes and width buckets that recur, onnxruntime for first sights).
"""

from __future__ import annotations

RUNTIMES = ("auto", "onnxruntime", "openvino")
