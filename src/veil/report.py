"""The audit report: what veil did to every input, as JSON."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from veil.pipeline import FileResult, Pipeline, report_header
from veil.sink import atomic_output


def build_report(pipeline: Pipeline, results: list[FileResult], argv: list[str]) -> dict[str, Any]:
    return {
        **report_header(pipeline),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": argv,
        "platform": {"python": platform.python_version(), "system": platform.platform()},
        "files": [
            {"status": "ok" if r.ok else "error", **(r.record or {"input": str(r.input), "error": r.error})}
            for r in results
        ],
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
