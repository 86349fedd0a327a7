"""veil's command line: parse arguments, call the pipeline, set the exit code."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import warnings
from pathlib import Path

from veil import __version__
from veil.errors import VeilError
from veil.pipeline import CLASS_DETECTORS, Pipeline, Settings, plan
from veil.presets import PRESETS
from veil.progress import Reporter

EPILOG = """\
masks: solid (default) is an opaque fill and the only irreversible one; blur and pixelate
are weaker: machines can still recognise mildly blurred or pixelated faces.
exit codes: 0 all files done, 1 some files failed, 2 bad arguments, 130 interrupted."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="veil",
        description="Find every face in images and videos and erase it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, or directories")
    p.add_argument("-o", "--output", help="output file (one input) or directory (several; tree mirrored)")
    p.add_argument("--mask", default="solid", choices=["solid", "blur", "pixelate"], help="default: solid")
    p.add_argument("--mask-color", default="black", help="solid fill colour: name, #rrggbb or r,g,b")
    p.add_argument("--margin", type=float, help="grow each box by this fraction of its size on every side")
    p.add_argument("--threshold", type=float, help="face detector score threshold (lower finds more)")
    p.add_argument("--preset", default="balanced", choices=list(PRESETS), help="speed/recall trade-off")
    p.add_argument(
        "--redact",
        default="faces",
        help=f"what to erase: comma list of {','.join(CLASS_DETECTORS)}, or all (default: faces)",
    )
    p.add_argument(
        "--lookahead",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="video: read this far ahead to mask faces before the detector first finds them (default: 1)",
    )
    p.add_argument("--format", dest="output_format", help="output extension for every file, e.g. png")
    p.add_argument("--report", type=Path, help="write a JSON audit report here")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--no-audio", action="store_true", help="drop audio streams")
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
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    p.add_argument("--version", action="version", version=f"veil {__version__}")
    return p


def parse_classes(text: str) -> tuple[str, ...]:
    items = [c.strip() for c in text.split(",") if c.strip()]
    if items == ["all"]:
        return tuple(CLASS_DETECTORS)
    unknown = [c for c in items if c not in CLASS_DETECTORS]
    if unknown or not items:
        raise VeilError(f"--redact: unknown class {', '.join(unknown) or text!r}")
    return tuple(dict.fromkeys(items))


def _terminate(signum: int, _frame: object) -> None:
    # Turn SIGTERM into the same unwinding as Ctrl-C, so temporary outputs are removed.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "inspect":
        from veil.inspect import main as inspect_main

        return inspect_main(argv[1:])
    args = build_parser().parse_args(argv)
    # A damaged file makes libraries warn (Pillow: "Corrupt EXIF data") or log; the user gets veil's
    # one-line verdict on the file instead. Decompression bombs stay errors (source.read_image).
    warnings.simplefilter("ignore")
    logging.getLogger().addHandler(logging.NullHandler())  # nor library log lines (Pillow's TIFF reader)
    if args.lookahead < 0:
        build_parser().error("--lookahead must be 0 or more")
    reporter = Reporter(quiet=args.quiet)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        settings = Settings(
            preset=args.preset,
            threshold=args.threshold,
            margin=args.margin,
            mask=args.mask,
            mask_color=args.mask_color,
            classes=parse_classes(args.redact),
            output_format=args.output_format,
            overwrite=args.overwrite,
            keep_audio=not args.no_audio,
            keep_metadata=args.keep_metadata,
            lookahead_s=args.lookahead,
            report=args.report is not None,
            allow_crop=args.allow_crop,
        )
        jobs, failed = plan(args.inputs, args.output, settings)
        for result in failed:
            reporter.error(result.error or str(result.input))
        pipeline = Pipeline(settings, reporter)
        results = pipeline.run(jobs)
        for result in results:
            if not result.ok:
                reporter.error(result.error or str(result.input))
        if args.report:
            from veil.report import build_report, write_report

            write_report(args.report, build_report(pipeline, failed + results, ["veil", *argv]))
    except VeilError as exc:
        reporter.error(str(exc))
        return 2
    except KeyboardInterrupt:
        reporter.error("interrupted; no partial output was left behind")
        return 130
    n_ok = sum(r.ok for r in results)
    n_bad = len(failed) + len(results) - n_ok
    reporter.info(f"veil: {n_ok} file{'s' * (n_ok != 1)} done, {n_bad} failed")
    return 1 if n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
