"""`veil review PLAN_OR_INPUT`: review and correct a redaction plan in the browser.

Given a photo or video, it is scanned first (the plan is written beside it as NAME.plan.json;
an existing plan there is reused unless --rescan). The page is served on 127.0.0.1 only, at a
URL carrying a random token, until Ctrl-C or SIGTERM. See docs/review.md.
"""

from __future__ import annotations

import argparse
import secrets
import signal
import socket
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

from veil.errors import VeilError
from veil.progress import Reporter
from veil.schema import whole_option

HOST = "127.0.0.1"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="veil review",
        description="Review a redaction plan in the browser: keep or mask each track, add what was missed, "
        "mark ranges, sign off and render. Served on 127.0.0.1 only, behind a random token.",
    )
    p.add_argument(
        "target", metavar="PLAN_OR_INPUT", type=Path, help="a NAME.plan.json, or a photo/video to scan first"
    )
    p.add_argument(
        "--port", type=whole_option("--port", 0, 65535), default=0, help="port to listen on (default: a free one)"
    )
    p.add_argument("--no-browser", action="store_true", help="print the URL only; do not open a browser")
    p.add_argument("--rescan", action="store_true", help="scan the input again even if NAME.plan.json exists")
    p.add_argument("--preset", default="balanced", help="preset for the scan of a media file (default: balanced)")
    p.add_argument(
        "--keep-proxy",
        action="store_true",
        help="keep the seek proxy (an unredacted low-resolution copy of a long-GOP video, in veil's private "
        "work directory) for the next review of the same video; default: deleted when the review ends",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the URL and errors")
    return p


def plan_for(target: Path, rescan: bool, preset: str, reporter: Reporter) -> Path:
    """The plan to review: `target` itself, or the plan of the media file `target` (scanned now)."""
    from veil.media.source import media_kind
    from veil.runners.pipeline import PLAN_SUFFIX, Job, Pipeline

    if not target.exists():
        raise VeilError(f"{target}: no such file")
    if target.is_dir():
        raise VeilError(f"{target}: review takes one plan or one photo/video, not a directory")
    if target.name.endswith(PLAN_SUFFIX) or target.suffix.lower() == ".json":
        return target
    kind = media_kind(target)
    plan_path = target.with_name(target.stem + PLAN_SUFFIX)
    if plan_path.is_file() and not rescan:
        reporter.info(f"using the existing plan {plan_path} (--rescan to scan again)")
        return plan_path
    from veil.config import Settings

    proxy = start_proxy(target, reporter) if kind == "video" else None
    pipeline = Pipeline(Settings(preset=preset, overwrite=True), reporter)
    try:
        result = pipeline.scan(Job(target, plan_path, kind))
    finally:
        pipeline.close()
        if proxy is not None:
            proxy.join()
    if not result.ok:
        raise VeilError(result.error or f"{target}: scan failed")
    return plan_path


def start_proxy(video: Path, reporter: Reporter) -> threading.Thread | None:
    """Make the seek proxy while the scan runs (when the video needs one), so the page seeks fast
    from the start; the review session finds it by name. A failure only means no proxy."""
    import av

    from veil.analysis.detectors import sha256_of
    from veil.review.server.frames import FrameIndex, make_proxy, needs_proxy, proxy_path

    try:
        index = FrameIndex(video)
        with av.open(str(video), metadata_errors="ignore") as container:
            ctx = container.streams.video[0].codec_context
            width, height = ctx.width, ctx.height
        if not needs_proxy(index, width, height):
            return None
        target = proxy_path(video, sha256_of(video))
    except Exception:  # noqa: BLE001 - the scan reports unreadable input itself
        return None
    if target.is_file():
        return None

    def work() -> None:
        try:
            make_proxy(video, target, [0], threading.Event())
        except Exception as exc:  # noqa: BLE001 - the player reads the original instead
            reporter.warn(f"{video}: no seek proxy ({exc})")

    thread = threading.Thread(target=work, name="veil-proxy", daemon=True)
    thread.start()
    return thread


def free_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise VeilError(f"cannot listen on {HOST}:{port} ({exc.strerror or exc})") from None
    return sock


def serve(
    plan_path: Path, port: int = 0, open_browser: bool = False, ready: Any = None, keep_proxy: bool = False
) -> int:
    import uvicorn

    from veil.review.server.app import create_app
    from veil.review.server.session import ReviewSession

    session = ReviewSession(plan_path)
    sock = free_socket(port)
    bound = sock.getsockname()[1]
    token = secrets.token_urlsafe(24)
    app = create_app(session, token, [bound])
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    url = f"http://{HOST}:{bound}/?t={token}"
    print(url, flush=True)
    if ready is not None:
        ready(url, server, session)
    if open_browser:
        threading.Timer(0.3, lambda: webbrowser.open(url)).start()

    def stop(*_: object) -> None:
        server.should_exit = True

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
    try:
        server.run(sockets=[sock])
    finally:
        session.close(keep_proxy=keep_proxy)
        sock.close()
    return 0


def main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)
    except VeilError as exc:  # a bad --port (schema.whole_option): one line, like every refusal
        Reporter().error(str(exc))
        return 2
    reporter = Reporter(quiet=args.quiet)
    try:
        plan_path = plan_for(args.target, args.rescan, args.preset, reporter)
        return serve(plan_path, args.port, open_browser=not args.no_browser, keep_proxy=args.keep_proxy)
    except VeilError as exc:
        reporter.error(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
