"""Reading the JSON files people hand to veil (plans, zone files): one-line errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from veil.errors import VeilError


def read_json(path: Path, what: str, error: type[VeilError] = VeilError) -> Any:
    """The decoded content of `path` (a `what`: "plan", "zone file"); any problem raises `error`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read the {what} ({type(exc).__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{path}: the {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise error(f"{path}: the {what} is nested too deeply") from None
    except ValueError as exc:  # e.g. a number past Python's digit limit
        raise error(f"{path}: the {what} cannot be read ({str(exc).splitlines()[0][:80]})") from None
