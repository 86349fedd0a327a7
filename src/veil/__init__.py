"""veil: find every face in photos and video and erase it irreversibly.

The public library API (docs/api.md): `anonymize`, `scan_to_plan`, `render_plan`, `settings`,
`StreamRedactor`, `Result` and `VeilError`. They are imported on first use, so `import veil`
stays light.
"""

from typing import Any

from veil.errors import VeilError

__version__ = "0.1.0"

__all__ = ["Result", "StreamRedactor", "VeilError", "anonymize", "render_plan", "scan_to_plan", "settings"]
_API = {"Result", "StreamRedactor", "anonymize", "render_plan", "scan_to_plan", "settings"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from veil import api

        return getattr(api, name)
    raise AttributeError(f"module 'veil' has no attribute {name!r}")
