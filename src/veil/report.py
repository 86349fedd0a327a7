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


def _public(report: dict[str, Any]) -> dict[str, Any]:
    """The JSON record: file-level keys starting with "_" (thumbnails) are for the HTML only."""
    files = [{k: v for k, v in f.items() if not k.startswith("_")} for f in report.get("files", [])]
    return {**report, "files": files}


def html_path(path: Path) -> Path:
    """`report.json` -> `report.html`, beside it."""
    return path.with_suffix(".html") if path.suffix.lower() != ".html" else path.with_name(path.name + ".html")


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the JSON audit report and the human-readable HTML report beside it."""
    from veil.report_html import render_html

    with atomic_output(path, overwrite=True) as tmp:
        # No indent: only then does json use its C encoder (10x faster on per-frame records);
        # the HTML report beside it is the human-readable view.
        tmp.write_text(json.dumps(_public(report), ensure_ascii=False) + "\n", encoding="utf-8")
    with atomic_output(html_path(path), overwrite=True) as tmp:
        tmp.write_text(render_html(report, json_name=path.name), encoding="utf-8")
