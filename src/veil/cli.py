"""veil's command line: parse arguments, call the pipeline, set the exit code.

veil INPUT...            one shot: detect, track, mask, write, verify
veil scan INPUT...       detect and track only: write a redaction plan per input
veil render PLAN...      apply plans (no detector runs), then verify
veil verify PLAN OUTPUT  check from the output's pixels that every planned mask is there
veil inspect FILE...     list identifying metadata
veil live SOURCE DEST    anonymize a live stream in real time (never sends a raw frame)
veil cache list|clear    show or remove work files veil keeps outside the output folders
"""

from __future__ import annotations

import argparse
import difflib
import errno
import logging
import signal
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veil import __version__
from veil.analysis.classes import CLASSES, DEFAULT_CLASSES, parse_classes
from veil.analysis.presets import PRESETS
from veil.config import MAX_LOOKAHEAD_S, Settings
from veil.errors import VeilError
from veil.media.audio import AUDIO_MODES, parse_ranges
from veil.progress import Reporter
from veil.schema import number_option, time_option, whole_option

EPILOG = """\
masks: solid (default) is an opaque fill and the only irreversible one; blur and pixelate
are weaker: machines can still recognise mildly blurred or pixelated faces.
audio: keep (default) leaves voices as they are. mute (digital silence) and bleep (a 1 kHz
tone) leave nothing of a voice. disguise moves its formants (random strength per file) and is
much weaker: a speaker-verification attacker who does not know about it goes from 0 % to
33 % equal error rate, one who disguises a reference recording too still matches at 11 %
(docs/audio.md); published attacks undo simple voice shifts. Use mute where a voice must not
be recognised.
work files (resume manifest, plans, segments) live outside the output folder, in --work-dir or
the user's cache directory (veil cache path), readable by the user only, and are removed when
the job completes unless --keep-work; veil cache list|clear shows or removes what is left.
other commands: veil scan, render, verify, review, inspect, live, cache (each has --help).
exit codes: 0 all files done, 1 some files failed, 2 bad arguments, 130 interrupted.
documentation: {docs}"""

COMMANDS = ("scan", "render", "verify", "inspect", "review", "live", "cache")
# Extensions that make -o look like one file: refused when there are several inputs.
FILE_LIKE = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".avif",
             ".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".json"}


def docs_pointer() -> str:
    """Where the documents are, in a way that works after `pip install`: docs/*.md ship inside
    the package as veil/docs (a link to the repository's docs/ folder, copied into wheels)."""
    here = Path(__file__).resolve().parent / "docs"
    if (here / "audio.md").is_file():
        return f"{here / '*.md'} (audio, live, review, scale, api, ...)"
    return "the docs/ folder of veil's source"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors, and a suggestion for a mistyped option (--masks -> --mask)
    instead of the whole usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        hint = ""
        if message.startswith("unrecognized arguments:"):
            known = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            for token in message.split(":", 1)[1].split():
                if token.startswith("--"):
                    close = difflib.get_close_matches(token.split("=", 1)[0], known, n=1, cutoff=0.6)
                    if close:
                        hint = f"; did you mean {close[0]}?"
                        break
        self.exit(2, f"{self.prog}: error: {message}{hint} (see {self.prog} --help)\n")


def _render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="output file (one input) or directory (several; tree mirrored)")
    p.add_argument("--mask", choices=["solid", "blur", "pixelate"], help="default: solid")
    p.add_argument("--mask-color", help="solid fill colour: name, #rrggbb or r,g,b (default black)")
    p.add_argument(
        "--margin",
        type=number_option("--margin", 0, 5),
        help="grow each box by this fraction of its size on every side",
    )
    p.add_argument("--format", dest="output_format", help="output extension for every file, e.g. png")
    p.add_argument("--report", type=Path, help="write a JSON audit report here (and an HTML one beside it)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="where work files (resume manifest, plans, segments) go; default: veil's cache directory",
    )
    p.add_argument(
        "--keep-work", action="store_true", help="keep the job's work files after it completes (default: removed)"
    )
    p.add_argument("--no-audio", action="store_true", help="drop audio streams")
    p.add_argument(
        "--audio",
        choices=list(AUDIO_MODES),
        help="voices: keep (default), mute, bleep, or disguise (weaker than mute; see below)",
    )
    p.add_argument(
        "--audio-ranges",
        metavar="RANGES",
        help="apply --audio only to these spans, e.g. 00:01:02.5-00:01:05,90-95 (default: whole track)",
    )
    p.add_argument(
        "--allow-crop",
        action="store_true",
        help="odd-sized video: drop the last row/column to write 4:2:0 H.264 (plays everywhere) instead of 4:4:4",
    )
    p.add_argument(
        "--keep-metadata",
        action="store_true",
        help="keep EXIF (minus thumbnail and maker notes) and video container tags: may reveal place, time, device",
    )


def _detect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threshold",
        type=number_option("--threshold", 0, 1, above=True),
        help="face detector score threshold (lower finds more)",
    )
    p.add_argument("--preset", default="balanced", choices=list(PRESETS), help="speed/recall trade-off")
    p.add_argument(
        "--redact",
        default=DEFAULT_CLASSES,
        help=f"what to erase: comma list of {','.join(CLASSES)}, or all (default: {DEFAULT_CLASSES}; heads: moving "
        "people's heads on fixed cameras; people: every person's head, still or moving (slower); "
        "persons: whole bodies; people and persons are not part of all)",
    )
    p.add_argument(
        "--lookahead",
        type=number_option("--lookahead", 0, MAX_LOOKAHEAD_S),
        default=1.0,
        metavar="SECONDS",
        help="video: read this far ahead to mask faces before the detector first finds them (default: 1)",
    )
    p.add_argument(
        "--zones",
        type=Path,
        metavar="FILE.json",
        help='privacy zones blanked in every frame: {"zones": [{"name": ..., "polygon": [[x, y], ...]}]} '
        "in pixels, or fractions of the frame when every value is at most 1",
    )
    p.add_argument(
        "--start",
        type=time_option("--start"),
        metavar="TIME",
        help="video: process and write from this time (seconds or [h:]mm:ss)",
    )
    p.add_argument(
        "--end", type=time_option("--end"), metavar="TIME", help="video: stop at this time (seconds or [h:]mm:ss)"
    )
    p.add_argument(
        "--audio-pii",
        choices=["mute", "bleep"],
        help="find spoken numbers, e-mail and street addresses and names (speech extra) and mute or bleep "
        "them; scan proposes them in the plan's audio section (docs/audio.md)",
    )
    p.add_argument(
        "--transcript",
        type=Path,
        metavar="FILE",
        help="write the recognized words with their times here, for one input (personal data: never written otherwise)",
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument("--version", action="version", version=f"veil {__version__}")


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="veil",
        description="Find every face in images and videos and erase it.",
        epilog=EPILOG.format(docs=docs_pointer()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, or directories")
    _render_options(p)
    _detect_options(p)
    p.add_argument("--plan", help="also write the plan used (a file for one input, a directory for several)")
    _batch_options(p)
    _common(p)
    return p


def _batch_options(p: argparse.ArgumentParser) -> None:
    import os

    p.add_argument(
        "-j",
        "--jobs",
        type=whole_option("-j/--jobs", 1, 4096),
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes (default: the machine's cores); work is resumable (docs/scale.md)",
    )
    p.add_argument(
        "--segment-seconds",
        type=number_option("--segment-seconds", 0, above=True),
        metavar="S",
        help=(
            "cut videos into segments of about S seconds at keyframes (default with -j > 1: two per "
            "worker, 60 to 300 s, for videos of 2 minutes or more)"
        ),
    )
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local processes, or a Ray cluster (pip install 'veil[ray]')",
    )
    p.add_argument("--ray-address", default=None, help="Ray cluster to join (default: RAY_ADDRESS, else a local one)")


def scan_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="veil scan",
        description="Detect and track only: write a redaction plan (NAME.plan.json) per input, to review, "
        "edit and render later. Nothing is masked or written but the plans.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, or directories")
    p.add_argument("-o", "--output", help="plan file (one input) or directory (several)")
    p.add_argument("--overwrite", action="store_true", help="replace existing plans")
    p.add_argument("--report", type=Path, help="write a JSON audit report of the scan here")
    _detect_options(p)
    _common(p)
    return p


def render_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="veil render",
        description="Apply redaction plans to their inputs with no detector run, then verify each output "
        "from its pixels. Mask, colour and margin default to the plan's; options here override them.",
        epilog=EPILOG.split("\nwork files")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("plans", nargs="+", metavar="PLAN", help="plan files (NAME.plan.json) or directories of them")
    _render_options(p)
    p.add_argument("--reviewer", help="who decided what this plan keeps and adds, for the audit report")
    p.add_argument(
        "--show-only",
        metavar="IDS",
        help="subject-access request: show only these tracks (e.g. 3,7) and mask everything else in every "
        "frame (sets the plan's show_only; see docs/plan.md)",
    )
    p.add_argument(
        "--show-margin",
        type=number_option("--show-margin", 0, 5),
        help="with show_only: grow the subject's boxes by this fraction of their size (default 0.2)",
    )
    p.add_argument(
        "--show-outside",
        choices=["solid", "blur"],
        help="with show_only: fill (default) or blur everything else; blur is reversible",
    )
    p.add_argument(
        "--require-review",
        action="store_true",
        help="refuse a plan nobody marked reviewed on the review page, or one changed since",
    )
    p.add_argument(
        "--second-opinion",
        action="store_true",
        help="look at the output with a second face detector and flag frames where it still finds a face",
    )
    _common(p)
    return p


def verify_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="veil verify",
        description="Check from OUTPUT's pixels that every mask PLAN asks for is present; lists every frame "
        "or region that fails. Exit 0: all present; 1: some missing.",
    )
    p.add_argument("plan", type=Path, metavar="PLAN")
    p.add_argument("output", type=Path, metavar="OUTPUT")
    p.add_argument("--mask", choices=["solid", "blur", "pixelate"], help="the mask the output was rendered with")
    p.add_argument("--mask-color", help="the solid mask's colour, if not the plan's")
    p.add_argument(
        "--margin",
        type=number_option("--margin", 0, 5),
        help="the margin the output was rendered with, if not the plan's",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _common(p)
    return p


def _terminate(signum: int, _frame: object) -> None:
    # Turn SIGTERM into the same unwinding as Ctrl-C, so temporary outputs are removed.
    raise KeyboardInterrupt


def _detect_settings(args: argparse.Namespace, **extra: Any) -> Settings:
    from veil.analysis.zones import load_zones
    from veil.timerange import TimeRange

    return Settings(
        preset=args.preset,
        threshold=args.threshold,
        classes=parse_classes(args.redact),
        lookahead_s=args.lookahead,
        zones=tuple(load_zones(args.zones)) if args.zones else (),
        time_range=TimeRange.from_options(args.start, args.end),
        audio_pii=getattr(args, "audio_pii", None),
        transcript=getattr(args, "transcript", None),
        **extra,
    )


def _render_settings(args: argparse.Namespace, plan_obj: Any = None) -> Settings:
    """Settings for painting: the options given, else the plan's, else the defaults (one
    builder, `config.settings_for_plan`, which the review page uses too)."""
    from veil.config import settings_for_plan
    from veil.plan import Plan

    given: dict[str, Any] = {
        "mask": args.mask,
        "mask_color": args.mask_color,
        "margin": args.margin,
        "output_format": getattr(args, "output_format", None),
        "overwrite": getattr(args, "overwrite", False),
        "keep_audio": not getattr(args, "no_audio", False),
        "keep_metadata": getattr(args, "keep_metadata", False),
        "report": getattr(args, "report", None) is not None,
        "allow_crop": getattr(args, "allow_crop", False),
    }
    if getattr(args, "audio", None) is not None or getattr(args, "audio_ranges", None) is not None:
        given["audio"] = args.audio or "keep"
        given["audio_ranges"] = tuple(parse_ranges(args.audio_ranges)) if args.audio_ranges else ()
    return settings_for_plan(plan_obj if plan_obj is not None else Plan(input={}, settings={}), **given)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in COMMANDS else None
    if command == "inspect":
        from veil.media.inspect import main as inspect_main

        return inspect_main(argv[1:])
    if command == "review":
        from veil.review.server import main as review_main

        return review_main(argv[1:])
    if command == "live":
        from veil.runners.live import main as live_main

        return live_main(argv[1:])
    if command == "cache":
        from veil.runners.cache import main as cache_main

        return cache_main(argv[1:])
    handlers: dict[str | None, Callable[[list[str]], int]] = {
        None: _redact,
        "scan": _scan,
        "render": _render,
        "verify": _verify,
    }
    signal.signal(signal.SIGTERM, _terminate)
    # A damaged file makes libraries warn (Pillow: "Corrupt EXIF data") or log; the user gets veil's
    # one-line verdict on the file instead. Decompression bombs stay errors (source.read_image).
    warnings.simplefilter("ignore")
    logging.getLogger().addHandler(logging.NullHandler())  # nor library log lines (Pillow's TIFF reader)
    rest = argv[1:] if command else argv
    try:
        return handlers[command](rest)
    except VeilError as exc:
        Reporter().error(str(exc))
        return 2
    except KeyboardInterrupt:
        Reporter().error("interrupted; no partial output was left behind")
        return 130
    except OSError as exc:
        # A full disk, a lost mount, a read-only folder: one line naming the file, not a traceback.
        Reporter().error(os_error_line(exc))
        return 1


def os_error_line(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        what = "no space left on the device"
    name = exc.filename or "a file veil was writing"
    return f"{name}: {what}"


def _finish(
    reporter: Reporter, pipeline: Any, failed: list[Any], results: list[Any], args: Any, argv: list[str]
) -> int:
    for result in results:
        if not result.ok:
            reporter.error(result.error or str(result.input))
        else:
            for line in worth_a_look_lines(result.record or {}):
                reporter.info(line)
    if getattr(args, "report", None):
        from veil.report.audit import build_report, write_report

        write_report(args.report, build_report(pipeline, failed + results, ["veil", *argv]))
    n_ok = sum(r.ok for r in results)
    n_bad = len(failed) + len(results) - n_ok
    reporter.info(f"veil: {n_ok} file{'s' * (n_ok != 1)} done, {n_bad} failed")
    return 1 if n_bad else 0


def worth_a_look_lines(record: dict[str, Any], top: int = 5) -> list[str]:
    """The terminal's worth-a-look summary of one file: how many items, the first few."""
    items = [i for i in record.get("review") or [] if isinstance(i, dict)]
    if not items:
        return []
    frames = len({i.get("frame") for i in items})
    out = [f"{record.get('input')}: {len(items)} item{'s' * (len(items) != 1)} worth a look ({frames} frames):"]
    out += [f"  frame {i.get('frame')}: {'; '.join(i.get('reasons') or [])}" for i in items[:top]]
    if len(items) > top:
        out.append(f"  ... {len(items) - top} more in the report and on the review page")
    return out


def _redact(argv: list[str]) -> int:
    from veil.runners.pipeline import Pipeline, plan_jobs

    args = build_parser().parse_args(argv)
    reporter = Reporter(quiet=args.quiet)
    settings = _detect_settings(
        args,
        margin=args.margin,
        mask=args.mask or "solid",
        mask_color=args.mask_color,
        output_format=args.output_format,
        overwrite=args.overwrite,
        keep_audio=not args.no_audio,
        keep_metadata=args.keep_metadata,
        report=args.report is not None,
        allow_crop=args.allow_crop,
        audio=args.audio or "keep",
        audio_ranges=tuple(parse_ranges(args.audio_ranges)) if args.audio_ranges else (),
    )
    if args.jobs < 1 or (args.segment_seconds is not None and args.segment_seconds <= 0):
        raise VeilError("-j and --segment-seconds must be positive")
    check_output_name(args.inputs, args.output)
    jobs, failed = plan_jobs(args.inputs, args.output, settings, args.plan)
    check_transcript(settings, jobs)
    from veil.runners.batch import Runner, manifest_dir, record_done, resume, use_runner
    from veil.runners.cache import Cache, remove

    cache = Cache.at(args.work_dir)
    # A re-run: outputs that exist because a previous run made them with the same settings are
    # done, not errors; made with other settings, they are refused unless --overwrite.
    where = manifest_dir([r.output for r in failed if r.output] + [j.output for j in jobs], args.output)
    failed, results = resume(failed, cache, settings)
    for result in results:
        reporter.info(f"[dim]already done[/] {result.input} -> {result.output}")
    for result in failed:
        reporter.error(result.error or str(result.input))
    warn_before(reporter, settings, jobs)
    pipeline = Pipeline(settings, reporter)
    job_dir = None
    try:
        if use_runner(jobs, args.jobs, args.segment_seconds, args.engine):
            job_dir = cache.job_dir(where)
            runner = Runner(
                settings, reporter, args.jobs, args.segment_seconds, args.engine, args.ray_address, job_dir, cache
            )
            results += runner.run(jobs)
            if args.report:
                _ = pipeline.detect  # loaded here too, so the report describes the workers' detectors
        else:
            results += pipeline.run(jobs)
            record_done(cache, results, settings)
        warn_after(reporter, results)
        code = _finish(reporter, pipeline, failed, results, args, argv)
        if job_dir is not None:
            if args.keep_work:
                reporter.info(f"work files kept in {job_dir} (veil cache clear removes them)")
            elif all(r.ok for r in results):
                remove(job_dir)  # the job is complete: nothing left to resume
            else:
                reporter.info(f"work files kept in {job_dir} for a re-run (veil cache clear removes them)")
        return code
    finally:
        pipeline.close()


def check_transcript(settings: Settings, jobs: list[Any]) -> None:
    """--transcript names one file: with several inputs that have sound, each would overwrite
    the last one's words (or two workers write it at once), so it is refused before any work."""
    if settings.transcript is None:
        return
    heard = [job.input for job in jobs if job.kind in ("video", "audio")]
    if len(heard) > 1:
        raise VeilError(
            f"--transcript {settings.transcript} holds one input's words, and {len(heard)} inputs have sound: "
            "give one input, or run once per file"
        )


def check_output_name(inputs: list[str], output: str | None) -> None:
    """Several inputs (or a folder) go to a folder: a name like `safe.jpg` would silently become a
    directory called safe.jpg, so it is refused."""
    if not output:
        return
    out = Path(output)
    many = len(inputs) > 1 or any(Path(i).is_dir() for i in inputs)
    if many and not out.is_dir() and out.suffix.lower() in FILE_LIKE:
        raise VeilError(f"-o {output}: looks like a file name, but several inputs need a folder; name a folder")


def warn_before(reporter: Reporter, settings: Settings, jobs: list[Any]) -> None:
    """Said once, before any work: what the options will not do."""
    if settings.mask in ("blur", "pixelate"):
        reporter.warn(
            f"--mask {settings.mask} is reversible: software can often recognise or partly restore a "
            f"{'blurred' if settings.mask == 'blur' else 'pixelated'} face; use the solid mask where "
            "identity must not leak"
        )
    # (An animation with a time range is refused by the pipeline itself, per file.)
    whole = [j for j in jobs if j.kind in ("image", "audio")]
    if settings.time_range is not None and whole:
        n = len(whole)
        what = ("photo" if n == 1 else "photos") if all(j.kind == "image" for j in whole) else "other file"
        reporter.warn(f"--start/--end apply to videos only: {n} {what}{'s' * (n != 1 and what == 'other file')} "
                      "processed whole")  # fmt: skip


def warn_after(reporter: Reporter, results: list[Any]) -> None:
    """Things the report holds that the console must say too."""
    for r in results:
        dropped = [s for s in (r.record or {}).get("streams_dropped") or [] if str(s).startswith("video")]
        if r.ok and dropped:
            reporter.warn(
                f"{r.input}: only the first video stream was kept; dropped {', '.join(map(str, dropped))}"
            )


def _scan(argv: list[str]) -> int:
    from veil.runners.pipeline import Pipeline, scan_jobs

    args = scan_parser().parse_args(argv)
    reporter = Reporter(quiet=args.quiet)
    settings = _detect_settings(args, overwrite=args.overwrite, report=args.report is not None)
    jobs, failed = scan_jobs(args.inputs, args.output, args.overwrite)
    check_transcript(settings, jobs)
    for result in failed:
        reporter.error(result.error or str(result.input))
    pipeline = Pipeline(settings, reporter)
    try:
        results = [pipeline.scan(job) for job in jobs]
        return _finish(reporter, pipeline, failed, results, args, argv)
    finally:
        pipeline.close()


def _render(argv: list[str]) -> int:
    from veil.runners.pipeline import Pipeline, render_jobs

    args = render_parser().parse_args(argv)
    reporter = Reporter(quiet=args.quiet)
    # The options given, checked before any plan is read; they also name the outputs.
    given = _render_settings(args)
    jobs, failed = render_jobs(args.plans, args.output, given)
    for result in failed:
        reporter.error(result.error or str(result.input))
    results = []
    pipeline = None
    for job, plan_obj in jobs:
        _subject_options(args, job.plan_path, plan_obj)
    for job, plan_obj in jobs:
        settings = _render_settings(args, plan_obj)
        pipeline = Pipeline(settings, reporter, reviewer=args.reviewer, second_opinion=args.second_opinion)
        try:
            results.append(pipeline.render(job, plan_obj))
        finally:
            pipeline.close()
    if pipeline is None:
        pipeline = Pipeline(given, reporter)
        pipeline.close()
    return _finish(reporter, pipeline, failed, results, args, argv)


def _subject_options(args: argparse.Namespace, plan_path: Any, plan_obj: Any) -> None:
    """--show-only and friends set the plan's show_only; --require-review refuses an unsigned
    plan. Both before anything is rendered, each refusal one line."""
    from veil.plan import set_show_only, sign_off_problem

    if args.show_only is not None:
        try:
            ids = [int(v) for v in args.show_only.split(",") if v.strip()]
        except ValueError:
            raise VeilError(f"--show-only: expected track ids such as 3,7, got {args.show_only!r}") from None
        set_show_only(plan_obj, ids, args.show_margin, args.show_outside)
    elif args.show_margin is not None or args.show_outside is not None:
        if plan_obj.show_only is None:
            raise VeilError(f"{plan_path}: --show-margin and --show-outside need --show-only or a plan with show_only")
        set_show_only(plan_obj, plan_obj.show_only.tracks, args.show_margin, args.show_outside)
    if args.require_review:
        problem = sign_off_problem(plan_obj)
        if problem:
            raise VeilError(f"{plan_path}: {problem}; --require-review refuses it")


def _verify(argv: list[str]) -> int:
    import json

    from veil.plan import load_plan
    from veil.render.verify import verify

    args = verify_parser().parse_args(argv)
    reporter = Reporter(quiet=args.quiet)
    plan_obj = load_plan(args.plan, spooled=True)
    if not args.output.is_file():
        raise VeilError(f"{args.output}: no such file")
    settings = _render_settings(args, plan_obj)
    source = Path(plan_obj.input.get("path") or "")
    if not source.is_absolute():
        source = (args.plan.parent / source).resolve()
    try:
        result = verify(plan_obj, args.output, settings, source if source.is_file() else None)
    except VeilError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unreadable output is a failed check, said in one line
        raise VeilError(f"{args.output}: cannot verify ({type(exc).__name__}: {exc})") from exc
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        for failure in result.failures:
            print(f"frame {failure['frame']}: {failure['what']}", file=sys.stderr)
        if result.ok:
            reporter.info(result.summary())
        else:
            reporter.error(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
