"""The audit report: what veil did to every input, as JSON (plus an HTML view beside it).

Per-frame boxes are not held in memory: each file's plan (every box of every frame, written to
disk as it was made) is copied into the JSON report from its file, so a report for an hour of
video costs the memory of its summary only.
"""

from __future__ import annotations

import json
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from veil.media.sink import atomic_output
from veil.runners.pipeline import FileResult, Pipeline, report_header


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


def html_path(path: Path) -> Path:
    """`report.json` -> `report.html`, beside it."""
    return path.with_suffix(".html") if path.suffix.lower() != ".html" else path.with_name(path.name + ".html")


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write the JSON audit report and the human-readable HTML report beside it."""
    from veil.report.html import render_html

    for f in report.get("files", []):
        sheet = f.get("_thumbnails_file")
        if sheet and not f.get("_thumbnails") and Path(sheet).is_file():
            f["_thumbnails"] = json.loads(Path(sheet).read_text(encoding="utf-8"))
    files = []
    plans: list[Path | None] = []
    for f in report.get("files", []):
        plan_file = f.get("_plan_file") or (f.get("plan") if f.get("status") == "ok" else None)
        plans.append(Path(plan_file) if plan_file and Path(plan_file).is_file() else None)
        # Keys starting with "_" (thumbnails, temporary paths) are for the HTML only.
        files.append({k: v for k, v in f.items() if not k.startswith("_")})
    # No indent: only then does json use its C encoder; the HTML report is the readable view.
    head = json.dumps({**report, "files": []}, ensure_ascii=False)[: -len("[]}")]
    with atomic_output(path, overwrite=True) as tmp, open(tmp, "w", encoding="utf-8") as out:
        out.write(head + "[")
        for i, (f, plan_file) in enumerate(zip(files, plans, strict=True)):
            out.write("," if i else "")
            text = json.dumps(f, ensure_ascii=False)
            if plan_file is None:
                out.write(text)
                continue
            # Every box of every frame: the file's plan, copied from disk, not from memory.
            out.write(text[:-1] + ', "plan_content": ')
            with open(plan_file, encoding="utf-8") as src:
                shutil.copyfileobj(src, out)
            out.write("}")
        out.write("]}\n")
    with atomic_output(html_path(path), overwrite=True) as tmp:
        tmp.write_text(render_html(report, json_name=path.name), encoding="utf-8")
