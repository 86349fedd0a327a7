"""veil: find every face in photos and video and erase it irreversibly.

The public library API (docs/api.md): `anonymize`, `scan_to_plan`, `render_plan`, `settings`,
`StreamRedactor`, `Result` and `VeilError`. They are imported on first use, so `import veil`
stays light.
"""

import os
from typing import Any

# No network at run time, and nothing that identifies this machine written for later upload:
# onnxruntime's official wheels from 1.29 send usage telemetry from Linux too (a device id in
# ~/.cache/Microsoft, an event database, DNS look-ups about 9 s after the first session), unless
# this is set before onnxruntime starts; a Ray cluster that veil starts would report usage stats.
# Set here, on veil's first import, so every process veil starts (workers, Ray's) inherits them.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

from veil.errors import VeilError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["Result", "StreamRedactor", "VeilError", "anonymize", "render_plan", "scan_to_plan", "settings"]
_API = {"Result", "StreamRedactor", "anonymize", "render_plan", "scan_to_plan", "settings"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from veil import api

        return getattr(api, name)
    raise AttributeError(f"module 'veil' has no attribute {name!r}")
