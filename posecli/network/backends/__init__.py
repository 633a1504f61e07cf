"""Runtimes that can run a pose network behind :class:`posecli.network.session.PoseModel`.

``onnxruntime`` (the CPU provider, CUDA, TensorRT) lives in :mod:`posecli.network.session`;
the OpenVINO runtime (CPU) in :mod:`.openvino`; :mod:`.choice` decides which one ``auto``
uses on the CPU at hand.
"""

from __future__ import annotations

RUNTIMES = ("auto", "onnxruntime", "openvino")


def openvino_installed() -> bool:
    """True when the ``openvino`` package imports (without importing it twice)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True
