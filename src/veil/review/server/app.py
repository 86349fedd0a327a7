"""The review page's HTTP API (FastAPI). Every route, the page included, needs the session token.

What a request must carry to get anything:
- the token, as `?t=TOKEN` or the `X-Veil-Token` header (compared in constant time);
- a loopback client address (the server binds 127.0.0.1 only; this is the second lock);
- a `Host` of 127.0.0.1 or localhost on this port (a DNS-rebinding page names its own host);
- no foreign `Origin`, and no `Sec-Fetch-Site` other than same-origin or none (another site's
  page, even one that guessed the token, is refused).
Files served are only the plan's input, the rendered output and its report, chosen by a fixed
name, never by a path from the request.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from veil.errors import VeilError
from veil.review.server.session import EditError, NoSpeech, ReviewSession, StaleEdit, jpeg
from veil.schema import (
    AudioBody,
    HistoryBody,
    IdsBody,
    KeepOnlyBody,
    KeyframeBody,
    ManualBody,
    RangesBody,
    RedactBody,
    ReviewedBody,
    ShowOnlyBody,
    TrackBody,
    WordsBody,
    short,
)

STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "media-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Guard(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str, port_holder: list[int]) -> None:
        super().__init__(app)
        self.token = token
        self.port_holder = port_holder

    def allowed_hosts(self) -> set[str]:
        port = self.port_holder[0]
        return {f"127.0.0.1:{port}", f"localhost:{port}"}

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        refused = self.refusal(request)
        if refused:
            # One plain answer for every refusal, saying nothing about what exists.
            return Response("forbidden\n", status_code=403, media_type="text/plain", headers=NO_STORE)
        response = await call_next(request)
        for key, value in NO_STORE.items():
            response.headers.setdefault(key, value)
        # A route may set a stricter policy of its own (the HTML report: no script at all).
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Frame-Options"] = "DENY"
        return response

    def refusal(self, request: Request) -> str | None:
        client = request.client.host if request.client else None
        if not _loopback(client):
            return "client not on loopback"
        hosts = self.allowed_hosts()
        if request.headers.get("host", "") not in hosts:
            return "host"
        origin = request.headers.get("origin")
        if origin is not None and origin.removeprefix("http://") not in hosts:
            return "origin"
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return "cross-site"
        given = request.query_params.get("t") or request.headers.get("x-veil-token") or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return "token"
        if request.method not in ("GET", "HEAD") and not request.headers.get("content-type", "").startswith(
            "application/json"
        ):
            # Forms and "simple" cross-site posts cannot send JSON without a preflight.
            return "content type"
        return None


def body_problem(exc: RequestValidationError) -> str:
    """A refused request body as one line: `FIELD: what is wrong, got VALUE` (`schema.one_line`)."""
    errors = exc.errors()
    if not errors:
        return "bad request body"
    err = errors[0]
    loc = ""
    for part in err.get("loc", ())[1:] if err.get("loc", ("",))[0] == "body" else err.get("loc", ()):
        loc += f"[{part}]" if isinstance(part, int) else ("." if loc else "") + str(part)
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    got = "" if err.get("type") in ("missing", "json_invalid") else f", got {short(err.get('input'))}"
    return f"{loc or 'body'}: {msg}{got}"


def create_app(session: ReviewSession, token: str, port_holder: list[int]) -> FastAPI:
    """`port_holder[0]` is the port the server listens on (known only once it is bound)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestValidationError)
    async def refused(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # One line naming the field (as the page shows `detail`), not FastAPI's list of errors.
        return JSONResponse({"detail": body_problem(exc)}, status_code=400, headers=NO_STORE)

    app.add_middleware(Guard, token=token, port_holder=port_holder)
    static = resources.files("veil.review.server") / "static"

    def image_response(rgb: Any, width: int | None, quality: int = 82) -> Response:
        if width and 16 <= width < rgb.shape[1]:
            height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
            rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
        return Response(jpeg(rgb, quality), media_type="image/jpeg")

    def frame_number(frame: int) -> int:
        if not 0 <= frame < session.frames:
            raise HTTPException(404, f"frame {frame} is outside 0..{session.frames - 1}")
        return frame

    def apply(change: Any, body: Any) -> dict[str, Any]:
        """Make an edit; `body.version` (the plan's version the page edited) must be current."""
        try:
            session.edit(change, getattr(body, "reviewer", None), body.version)
        except StaleEdit as exc:
            raise HTTPException(409, str(exc)) from exc
        except (VeilError, KeyError, ValueError, TypeError, OverflowError) as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"version": session.version}

    def checked(body: Any, make: Callable[[], Any], errors: tuple[type[Exception], ...] = (EditError,)) -> Any:
        """The change `make` builds from the body, refused as a stale edit first (a 409, not a
        400, for an old page) and then, when the body does not make sense, with a 400."""
        try:
            session.check_version(body.version)
        except StaleEdit as exc:
            raise HTTPException(409, str(exc)) from exc
        try:
            return make()
        except errors as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.get("/")
    def page() -> Response:
        html = (static / "index.html").read_text(encoding="utf-8").replace("__VEIL_TOKEN__", token)
        return Response(html, media_type="text/html; charset=utf-8")

    @app.get("/static/{name}")
    def static_file(name: str) -> Response:
        if name not in STATIC:  # a fixed list: no path from the request reaches the file system
            raise HTTPException(404)
        return Response((static / name).read_text(encoding="utf-8"), media_type=STATIC[name])

    @app.get("/api/plan")
    def plan() -> Response:
        # Serialised directly: FastAPI's generic encoder walks every box of every track, slowly.
        return Response(json.dumps(session.state()), media_type="application/json")

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        render = session.render_status()
        proxy = dict(session.proxy_state)
        if "progress" in proxy:
            proxy["done"] = proxy.pop("progress")[0]
        return {"version": session.version, "render": render, "proxy": proxy, "frames_shown": len(session.shown)}

    @app.get("/frame/{frame}")
    def frame(frame: int, w: int | None = None, view: str = "original") -> Response:
        frame_number(frame)
        try:
            if view == "exported":
                return image_response(session.exported(frame), w)
            return image_response(session.player_frame(frame, w or 1 << 30), w)
        except (LookupError, VeilError) as exc:
            raise HTTPException(500, str(exc)) from exc

    @app.get("/thumb/{track_id}")
    def thumb(track_id: int) -> Response:
        try:
            return Response(session.thumbnail(track_id), media_type="image/jpeg")
        except EditError as exc:
            raise HTTPException(404, str(exc)) from exc

    @app.get("/api/waveform")
    def waveform() -> dict[str, Any]:
        return session.waveform()

    @app.get("/media/{which}")
    def media(which: str) -> Response:
        paths: dict[str, Path | None] = {"input": session.input, "output": session.output, "report": session.report}
        if which == "report.html" and session.report is not None:
            from veil.report.audit import html_path

            paths[which] = html_path(session.report)
        path = paths.get(which)
        if path is None or not path.is_file():
            raise HTTPException(404)
        response = FileResponse(path, filename=path.name, content_disposition_type="inline")
        if which == "report.html":
            # The report's own policy: inline styles and data: pictures, nothing else, no script.
            response.headers["Content-Security-Policy"] = REPORT_CSP
        return response

    @app.post("/api/redact")
    def redact(body: RedactBody) -> dict[str, Any]:
        return apply(session.set_redact(body.ids, body.redact, body.reason), body)

    @app.post("/api/keep_only")
    def keep_only(body: KeepOnlyBody) -> dict[str, Any]:
        change = checked(body, lambda: session.keep_only(body.ids, body.reason, body.show_only, body.margin))
        return apply(change, body)

    @app.post("/api/show_only")
    def show_only(body: ShowOnlyBody) -> dict[str, Any]:
        return apply(session.change_show_only(body.ids, body.margin), body)

    @app.post("/api/merge")
    def merge(body: IdsBody) -> dict[str, Any]:
        return apply(session.merge(body.ids), body)

    @app.post("/api/manual")
    def manual(body: ManualBody) -> dict[str, Any]:
        if not 0 <= body.frame < session.frames:
            raise HTTPException(400, "frame outside the clip")
        label = body.label or "face"
        change, holder = checked(body, lambda: session.add_manual(body.frame, body.box, label, body.redact, body.join))
        out = apply(change, body)
        return {**out, "track": holder[0]}

    @app.post("/api/keyframe")
    def keyframe(body: KeyframeBody) -> dict[str, Any]:
        if not 0 <= body.frame < session.frames:
            raise HTTPException(400, "frame outside the clip")
        return apply(checked(body, lambda: session.set_keyframe(body.track, body.frame, body.box)), body)

    @app.post("/api/delete_track")
    def delete_track(body: TrackBody) -> dict[str, Any]:
        return apply(session.delete_track(body.track), body)

    @app.post("/api/ranges")
    def ranges(body: RangesBody) -> dict[str, Any]:
        errors = (EditError, KeyError, ValueError, TypeError)
        return apply(checked(body, lambda: session.set_ranges(body.ranges), errors), body)

    @app.post("/api/audio")
    def audio(body: AudioBody) -> dict[str, Any]:
        errors = (EditError, IndexError, ValueError, TypeError)
        rejected = None if body.rejected is None else [list(r) for r in body.rejected]
        return apply(checked(body, lambda: session.set_audio([list(r) for r in body.ranges], rejected), errors), body)

    @app.post("/api/words")
    def words(body: WordsBody) -> dict[str, Any]:
        # A POST, so the words never sit in a URL; the answer is no-store like every other.
        try:
            return {"words": session.words(body.start, body.end)}
        except NoSpeech as exc:
            raise HTTPException(exc.status, str(exc)) from exc

    @app.post("/api/reviewed")
    def reviewed(body: ReviewedBody) -> dict[str, Any]:
        return apply(checked(body, lambda: session.mark_reviewed(body.reviewer)), body)

    @app.post("/api/history")
    def history(body: HistoryBody) -> dict[str, Any]:
        try:
            session.step_history(body.back, body.version)
        except StaleEdit as exc:
            raise HTTPException(409, str(exc)) from exc
        return {"version": session.version}

    @app.post("/api/render")
    def render() -> JSONResponse:
        started = session.start_render()
        return JSONResponse({"started": started}, status_code=202 if started else 409)

    return app
