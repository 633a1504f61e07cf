"""Importers: turn models published in other formats into posecli ONNX models.

Each importer converts a graph to ONNX, embeds posecli's metadata record
(:mod:`posecli.network.metadata`) and writes the file atomically. They need the optional
``posecli[import]`` extra and import it lazily, so importing this package is cheap.
"""

from __future__ import annotations

from .openvino import convert_openvino_ir, import_openvino_ir

__all__ = ["convert_openvino_ir", "import_openvino_ir"]
