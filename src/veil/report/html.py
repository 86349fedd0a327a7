"""The human-readable audit report: one self-contained HTML file beside the JSON.

It opens offline in any browser: inline CSS, pictures as data: URIs, no scripts, and a
Content-Security-Policy that forbids loading anything else, so opening it never makes a
network request. Redactions are outlined over downscaled output frames with positioned boxes
(percentages of the frame), not painted into the pictures.
"""

from __future__ import annotations

from html import escape
from typing import Any

from veil.media.inspect import CATEGORIES

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #ccd}
h3{font-size:15px;margin:20px 0 6px}
.muted{color:#667}.ok{color:#176c2c;font-weight:600}.err{color:#a1161b;font-weight:600}
table{border-collapse:collapse;background:#fff;margin:4px 0 12px;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e3e5ea;vertical-align:top}
th{background:#eceef2;font-weight:600}td.k{width:30%;color:#445}
code{font:12px ui-monospace,monospace;word-break:break-all}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #dde;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}
ul.warn li{color:#8a5300}
.sheet{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
figure{margin:0;background:#fff;border:1px solid #dde;border-radius:6px;overflow:hidden}
figure.flag{border-color:#d08a00;box-shadow:0 0 0 2px #f3c04a inset}
.shot{position:relative;width:100%;line-height:0}
.shot img{width:100%;height:auto;display:block}
.box{position:absolute;border:2px solid #ff2d55;box-sizing:border-box}
.box.filled{border-style:dashed;border-color:#2d7dff}
.box.low{border-color:#ffb800}
figcaption{padding:6px 8px;font-size:12px}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:14px;height:10px;border:2px solid #ff2d55;margin-right:4px;vertical-align:-1px}
.legend i.filled{border-style:dashed;border-color:#2d7dff}.legend i.low{border-color:#ffb800}
details{margin-top:32px}summary{cursor:pointer}summary h2{display:inline-block;margin:0;border:0}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f'<tr><td class="k">{_e(k)}</td><td>{v}</td></tr>' for k, v in pairs)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out = []
        for i, v in enumerate(value):
            name = v.get("name", i) if isinstance(v, dict) else i
            out += _flatten(v, f"{prefix}[{name}]")
        return out
    return [(prefix, value if isinstance(value, str) else repr(value) if not isinstance(value, list) else
             ", ".join(map(str, value)))]  # fmt: skip


def _settings(report: dict[str, Any]) -> str:
    pairs = [(k, f"<code>{_e(v)}</code>") for k, v in _flatten(report.get("settings", {}))]
    return f"<table>{_rows(pairs)}</table>"


def _figure(file_no: int, thumb: dict[str, Any], low_threshold: float) -> str:
    w, h = max(1, thumb["width"]), max(1, thumb["height"])
    boxes = []
    for b in thumb.get("boxes", []):
        x1, y1, x2, y2 = b["mask"]
        cls = "box filled" if b.get("filled") else "box low" if (b.get("score") or 1) < low_threshold else "box"
        title = f"{b.get('label', '')} score {b.get('score')}" + (" (tracker)" if b.get("filled") else "")
        boxes.append(
            f'<span class="{cls}" title="{_e(title)}" style="left:{100 * x1 / w:.2f}%;top:{100 * y1 / h:.2f}%;'
            f'width:{100 * (x2 - x1) / w:.2f}%;height:{100 * (y2 - y1) / h:.2f}%"></span>'
        )
    reasons = thumb.get("reasons") or []
    n = len(thumb.get("boxes", []))
    caption = f"frame {thumb['frame']} · {n} region{'s' * (n != 1)}"
    if reasons:
        caption += "<br>" + "; ".join(_e(r) for r in reasons)
    return (
        f'<figure id="f{file_no}-frame{thumb["frame"]}" class="{"flag" if reasons else ""}">'
        f'<div class="shot"><img alt="output frame {thumb["frame"]}" width="{w}" height="{h}" '
        f'src="data:image/jpeg;base64,{thumb["jpeg_base64"]}">{"".join(boxes)}</div>'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _sign_off(signed: dict[str, Any]) -> str:
    """Who marked the plan reviewed and when; in red when nobody did or it changed since."""
    if signed.get("signed_off"):
        shown = signed.get("frames_shown")
        seen = f", {shown:.0%} of frames looked at" if isinstance(shown, int | float) else ""
        return f'<span class="ok">{_e(signed.get("by"))}</span> at {_e(signed.get("at"))}{_e(seen)}'
    return f'<span class="err">not signed off: {_e(signed.get("problem") or "")}</span>'


def _metadata(meta: dict[str, Any] | None) -> str:
    if not meta:
        return '<p class="muted">No metadata check recorded.</p>'
    parts = []
    removed = meta.get("removed", [])
    if removed:
        rows = "".join(
            f"<tr><td>{_e(CATEGORIES.get(r['category'], r['category']))}</td><td>{_e(r['where'])}</td>"
            f"<td>{_e(r['key'])}</td></tr>"
            for r in removed
        )
        parts.append(f"<table><tr><th>removed</th><th>where</th><th>item</th></tr>{rows}</table>")
    else:
        parts.append('<p class="muted">The input carried no identifying metadata.</p>')
    left = meta.get("left_in_output", [])
    if left:
        items = ", ".join(_e(f"{r['where']}: {r['key']}") for r in left)
        parts.append(f'<p class="err">Still in the output (--keep-metadata): {items}</p>')
    else:
        parts.append('<p class="ok">Output checked: no identifying metadata.</p>')
    kept = meta.get("kept_not_identifying", [])
    if kept:
        parts.append(f'<p class="muted">Kept, not identifying: {_e(", ".join(kept))}</p>')
    return "".join(parts)


def _status(f: dict[str, Any]) -> str:
    verify = f.get("verify")
    if not verify:
        return '<span class="muted">not verified</span>'
    if verify.get("ok"):
        return (
            f'<span class="ok">verified from the output\'s pixels: {_e(verify.get("regions_checked"))} masked '
            f"regions in {_e(verify.get('frames_checked'))} frames all present</span>"
        )
    failures = verify.get("failures") or []
    if not verify.get("regions_failed") and failures:
        # No mask missing: what did fail (the length, a zone, the audio) is the news.
        first = failures[0]
        return f'<span class="err">verify FAILED ({_e(first.get("check"))}): {_e(first.get("what"))}</span>'
    return f'<span class="err">verify FAILED: {_e(verify.get("regions_failed"))} regions missing</span>'


def _masked_summary(f: dict[str, Any]) -> str:
    """What was masked, in words: regions by kind (from the file's tracks where recorded)."""
    counts = f.get("counts", {})
    parts = [f"{counts.get('regions', 0)} regions in {counts.get('frames_with_regions', 0)} frames"]
    tracks = f.get("tracks") or []
    if tracks:
        by_label: dict[str, int] = {}
        for t in tracks:
            by_label[str(t.get("label"))] = by_label.get(str(t.get("label")), 0) + 1
        parts.append(
            f"{len(tracks)} tracks (" + ", ".join(f"{n} {label}" for label, n in sorted(by_label.items())) + ")"
        )
    planned = f.get("plan_tracks")
    if planned and not tracks:
        labels = ", ".join(f"{n} {label}" for label, n in sorted((planned.get("by_label") or {}).items()))
        parts.append(
            f"{planned.get('total')} tracks in the plan ({labels}); {planned.get('kept_visible')} kept visible, "
            f"{planned.get('manual')} drawn by hand"
        )
    if counts.get("frame_pixels"):
        mean = 100 * counts.get("masked_pixels", 0) / counts["frame_pixels"]
        worst = counts.get("masked_max_permille", 0) / 10
        parts.append(f"masks cover {mean:.1f} % of the picture on average, {worst:.1f} % of the most masked frame")
    if counts.get("regions_inferred"):
        parts.append(f"{counts['regions_inferred']} boxes filled in by the tracker")
    if counts.get("frames_fully_masked"):
        parts.append(f"{counts['frames_fully_masked']} frames masked whole")
    return _e("; ".join(parts))


def _worth_a_look(no: int, review: list[dict[str, Any]], shown: set[int]) -> str:
    if not review:
        return (
            '<p class="muted">Nothing: no face-like region outside the masks, no track lost and found again, '
            "no long stretch of weak detections.</p>"
        )
    rows = ""
    for r in review:
        frame = r.get("frame")
        link = f' (<a href="#f{no}-frame{frame}">picture</a>)' if frame in shown else ""
        span = r.get("frames")
        span_text = f"{span[0]}-{span[1]}" if isinstance(span, list) and len(span) == 2 and span[0] != span[1] else ""
        track = r.get("track")
        why = "; ".join(_e(x) for x in r.get("reasons") or [])
        rows += (
            f"<tr><td>{_e(frame)}{link}</td><td>{_e(span_text)}</td>"
            f"<td>{_e(track if track is not None else '')}</td><td>{why}</td></tr>"
        )
    return f"<table><tr><th>frame</th><th>frames</th><th>track</th><th>why</th></tr>{rows}</table>"


def _file(no: int, f: dict[str, Any], low_threshold: float) -> str:
    """One file: what a reader needs first (outcome, what was hidden, who decided, what to
    check), then the pictures, then the record (hashes, metadata, timings)."""
    title = _e(f.get("input", "?"))
    if f.get("status") != "ok":
        return f'<h2>{title}</h2><p class="err">Failed, nothing written: {_e(f.get("error", ""))}</p>'
    counts = f.get("counts", {})
    cards = [
        ("frames", f.get("frames_processed", 0)),
        ("regions masked", counts.get("regions", 0)),
        ("frames with masks", counts.get("frames_with_regions", 0)),
        ("tracks", len(f.get("tracks", []) or []) or (f.get("plan_tracks") or {}).get("total", 0)),
        ("worth a look", len(f.get("review") or [])),
        ("warnings", len(f.get("warnings") or [])),
    ]
    rendered = "counts" in f
    if not rendered:
        # A scan: the output is a plan, nothing was masked yet.
        cards = [c for c in cards if c[0] not in ("regions masked", "frames with masks")]
    out = [f'<h2 id="file{no}">{title}</h2>', '<div class="cards">']
    out += [f"<div class=card><b>{_e(v)}</b>{_e(k)}</div>" for k, v in cards]
    out.append("</div>")
    summary = [
        ("output", f"<code>{_e(f.get('output', ''))}</code>"),
        ("verified", _status(f)),
        ("masked", _masked_summary(f)),
    ]
    if not rendered:
        tracks = f.get("tracks") or []
        labels: dict[str, int] = {}
        for t in tracks:
            labels[str(t.get("label"))] = labels.get(str(t.get("label")), 0) + 1
        what = ", ".join(f"{n} {label}" for label, n in sorted(labels.items()))
        summary = [
            ("plan", f"<code>{_e(f.get('plan') or f.get('output', ''))}</code>"),
            ("found", _e(f"{len(tracks)} tracks ({what}); nothing is masked until the plan is rendered")),
        ]
    show = f.get("show_only")
    if show:
        ids = ", ".join(map(str, show.get("tracks", [])))
        how = "filled" if show.get("mask") == "solid" else "blurred (reversible)"
        summary.append(
            (
                "subject access",
                _e(f"only track(s) {ids} shown (margin {show.get('margin')}); everything else {how} in every frame"),
            )
        )
    signed = f.get("sign_off")
    if signed:
        summary.append(("signed off", _sign_off(signed)))
    if "audio" in f:
        value = f["audio"]
        summary.append(("audio", _e(", ".join(value) if isinstance(value, list) else value)))
    out.append(f"<table>{_rows(summary)}</table>")
    decisions = f.get("decisions") or []
    if decisions:
        keys = ("decision", "track", "frames", "reason", "reviewer", "time")
        # Track 0 is a track: only a missing value is left blank.
        rows = "".join(
            "<tr>" + "".join(f"<td>{_e('' if d.get(k) is None else d.get(k))}</td>" for k in keys) + "</tr>"
            for d in decisions
        )
        out.append(
            "<h3>Human decisions</h3><table><tr><th>decision</th><th>track</th><th>frames</th><th>reason</th>"
            f"<th>reviewer</th><th>time</th></tr>{rows}</table>"
        )
    warnings = f.get("warnings") or []
    if warnings:
        out.append('<h3>Warnings</h3><ul class="warn">' + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
    thumbs = f.get("_thumbnails") or []
    shown = {t["frame"] for t in thumbs}
    review = f.get("review") or []
    out.append("<h3>Worth a human look</h3>")
    out.append(_worth_a_look(no, review, shown))
    flagged = [t for t in thumbs if t.get("reasons")]
    if flagged:
        out.append('<div class="sheet">' + "".join(_figure(no, t, low_threshold) for t in flagged) + "</div>")
    rest = [t for t in thumbs if not t.get("reasons")]
    if rest:
        out.append(
            "<h3>Contact sheet</h3><p class=legend><span><i></i>detected</span>"
            "<span><i class=low></i>low confidence</span><span><i class=filled></i>filled in by the tracker</span>"
            "<span class=muted>outlines show where the output is masked</span></p>"
        )
        out.append('<div class="sheet">' + "".join(_figure(no, t, low_threshold) for t in rest) + "</div>")
    record = [
        ("input SHA-256", f"<code>{_e(f.get('input_sha256', ''))}</code>"),
        ("output SHA-256", f"<code>{_e(f.get('output_sha256', ''))}</code>"),
        ("size", _e(f"{f.get('width')} x {f.get('height')}")),
    ]
    if f.get("plan_sha256"):
        record.append(("plan SHA-256", f"<code>{_e(f['plan_sha256'])}</code>"))
    for key in ("frame_rate", "rotation", "streams_dropped"):
        if key in f:
            value = f[key]
            record.append((key.replace("_", " "), _e(", ".join(value) if isinstance(value, list) else value)))
    timings = f.get("timings") or {}
    if timings:
        record.append(("timings", _e(", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in timings.items()))))
    out.append(f"<h3>Metadata</h3>{_metadata(f.get('metadata'))}")
    out.append(f"<h3>Record</h3><table>{_rows(record)}</table>")
    return "".join(out)


def render_html(report: dict[str, Any], json_name: str = "report.json") -> str:
    from veil.review.log import LOW_CONFIDENCE

    files = report.get("files", [])
    n_ok = sum(1 for f in files if f.get("status") == "ok")
    n_verified = sum(1 for f in files if (f.get("verify") or {}).get("ok"))
    summary = [
        ("files", f'<span class="ok">{n_ok} done</span>, '
                  f'<span class="{"err" if n_ok < len(files) else "muted"}">{len(files) - n_ok} failed</span>'
                  f", {n_verified} verified from their pixels"),
        ("created (UTC)", _e(report.get("created", ""))),
    ]  # fmt: skip
    index = "".join(
        f'<li><a href="#file{i}">{_e(f.get("input", "?"))}</a>: '
        f"{_e(len(f.get('review') or []))} worth a look, {_e(len(f.get('warnings') or []))} warnings</li>"
        for i, f in enumerate(files)
    )
    run = [
        ("veil version", _e(report.get("veil_version", "?"))),
        ("command", f"<code>{_e(' '.join(map(str, report.get('command', []))))}</code>"),
        ("platform", _e(", ".join(f"{k} {v}" for k, v in (report.get("platform") or {}).items()))),
        ("machine-readable record", f"<code>{_e(json_name)}</code>"),
    ]
    body = [
        "<h1>veil audit report</h1>",
        f"<table>{_rows(summary)}</table>",
        f"<ul>{index}</ul>" if len(files) > 1 else "",
    ]
    body += [_file(i, f, LOW_CONFIDENCE) for i, f in enumerate(files)]
    # The run's settings last, folded: the reader's questions are answered above.
    body.append(
        f"<details><summary><h2>Settings and run</h2></summary><table>{_rows(run)}</table>{_settings(report)}</details>"
    )
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>veil audit report</title><style>{CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
