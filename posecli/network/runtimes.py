"""Importing the inference runtimes without the files they would leave in the user's home.

posecli writes nothing outside its model store and the outputs it is asked for. Two of
its dependencies write usage-telemetry identifiers on import, so posecli imports them
through these functions:

* **onnxruntime** (1.2x+ on Linux/macOS) creates
  ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}`` when its
  environment starts, i.e. on ``import onnxruntime``. Its documented opt-out is an
  environment variable read at that moment: ``ORT_DISABLE_TELEMETRY`` (1.2x) or
  ``ORT_TELEMETRY_DISABLED`` (newer releases, microsoft/onnxruntime#29843); both are set
  unless the user set them. ``onnxruntime.disable_telemetry_events()`` then turns off the
  Windows ETW events as well.
* **openvino** imports its model converter (``openvino.tools.ovc``) on ``import openvino``,
  and the converter starts ``openvino_telemetry``, which writes ``~/intel/openvino_ga_cid``
  and ``~/intel/stats``. That library's only opt-outs are a consent file it keeps in the
  home folder (``opt_in_out --opt_out``, itself a file the user did not ask for) and
  declining when ``CI=true``; posecli sets ``CI=true`` for the moment of the import only,
  so the telemetry client records "declined", writes nothing and sends nothing.

A user who wants the telemetry can import the runtime before posecli does, or set the
variables to ``0``.
"""

from __future__ import annotations

import os
import sys

ORT_TELEMETRY_VARIABLES = ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED")


def import_onnxruntime():
    """``onnxruntime``, imported with its telemetry off (see the module docstring)."""
    for name in ORT_TELEMETRY_VARIABLES:
        os.environ.setdefault(name, "1")
    import onnxruntime

    disable = getattr(onnxruntime, "disable_telemetry_events", None)
    if disable is not None and os.environ.get("ORT_DISABLE_TELEMETRY") != "0":
        disable()
    return onnxruntime


def import_openvino():
    """``openvino``, imported so that its telemetry client declines (see the module docstring).

    Raises ImportError when openvino is not installed.
    """
    if "openvino" in sys.modules and sys.modules["openvino"] is not None:
        return sys.modules["openvino"]
    saved = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        import openvino
    finally:
        if saved is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = saved
    return openvino
