"""veil's private work area, outside every output folder.

What a run needs besides its outputs lives here, never beside the outputs or the inputs: the
resume manifest and the plans and segment files of a `-j N` run (they hold absolute input
paths, the originals' SHA-256s, every box, thumbnails), and the review page's seek proxy (an
unredacted copy of the video). A journalist who shares an output folder shares outputs only.

Where: `--work-dir`, else $VEIL_CACHE_DIR, else the platform's cache directory
($XDG_CACHE_HOME/veil or ~/.cache/veil on Linux, ~/Library/Caches/veil on macOS,
%LOCALAPPDATA%/veil/Cache on Windows). Every directory veil makes here is readable by the user
only (0700). A job's directory is removed when the job completes unless --keep-work is given;
`veil cache list` shows what is left (interrupted or failed jobs, kept ones) and
`veil cache clear` removes it.

Layout:
  jobs/<tag>/        one per output folder (tag: a hash of its absolute path): manifest.jsonl,
                     job.json (which output folder), work/ (plans, segments)
  proxies/           review seek proxies, removed when the review ends unless kept
  done.jsonl         one line per finished output: hashes only (no paths, no boxes), so a
                     re-run knows an output is its own and with which settings it was made
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from veil.errors import VeilError

ENV = "VEIL_CACHE_DIR"
DONE = "done.jsonl"


def default_root() -> Path:
    """$VEIL_CACHE_DIR, else the platform's per-user cache directory."""
    env = os.environ.get(ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else Path.home() / "AppData" / "Local") / "veil" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "veil"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec: a relative value is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "veil"


def private_dir(path: Path) -> Path:
    """`path` as a directory only its owner can enter. Created 0700; an existing one is tightened
    too, since its content is as sensitive as the originals."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name == "posix":
            os.chmod(path, 0o700)
    except OSError as exc:
        raise VeilError(f"{path}: cannot make veil's work directory ({exc.strerror or exc})") from None
    return path


def _tag(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def output_key(input_sha256: str, output: Path) -> str:
    """What identifies a finished output: the input's content and where the output went."""
    return f"{input_sha256}:{output.resolve()}"


@dataclass
class Cache:
    root: Path

    @classmethod
    def at(cls, work_dir: Path | str | None = None) -> Cache:
        return cls(Path(work_dir).expanduser() if work_dir else default_root())

    def ensure(self) -> Path:
        return private_dir(self.root)

    def job_dir(self, output_dir: Path) -> Path:
        """The private directory of the job writing into `output_dir` (made on first use)."""
        where = output_dir.resolve()
        path = private_dir(self.ensure() / "jobs")
        job = private_dir(path / _tag(str(where)))
        info = job / "job.json"
        if not info.is_file():
            info.write_text(
                json.dumps({"output": str(where), "created": _now()}, ensure_ascii=False), encoding="utf-8"
            )
        return job

    def existing_job_dir(self, output_dir: Path) -> Path | None:
        path = self.root / "jobs" / _tag(str(output_dir.resolve()))
        return path if path.is_dir() else None

    def proxies(self) -> Path:
        return private_dir(self.ensure() / "proxies")

    # ------------------------------------------------------------ finished outputs

    def record_done(self, input_sha256: str, output: Path, output_sha256: str, settings_digest: str) -> None:
        """Note that `output` (with this content) was made from this input with these settings.
        Only hashes are written: the record reveals no path or content."""
        entry = {
            "key": _tag(output_key(input_sha256, output)),
            "output_sha256": output_sha256,
            "settings": settings_digest,
            "time": _now(),
        }
        with open(self.ensure() / DONE, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")

    def done_entry(self, input_sha256: str, output: Path, output_sha256: str) -> dict[str, Any] | None:
        """The last record of this output if the file is still the one it recorded."""
        path = self.root / DONE
        if not path.is_file():
            return None
        key = _tag(output_key(input_sha256, output))
        found = None
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                with contextlib.suppress(json.JSONDecodeError, TypeError, AttributeError):
                    entry = json.loads(line)
                    if entry.get("key") == key:
                        found = entry
        if found is None or found.get("output_sha256") != output_sha256:
            return None
        return found

    # ------------------------------------------------------------ listing and clearing

    def entries(self) -> list[dict[str, Any]]:
        """What is held: one entry per job directory and per proxy, with its size."""
        out: list[dict[str, Any]] = []
        jobs = self.root / "jobs"
        if jobs.is_dir():
            for job in sorted(jobs.iterdir()):
                info: dict[str, Any] = {}
                with contextlib.suppress(OSError, json.JSONDecodeError):
                    info = json.loads((job / "job.json").read_text(encoding="utf-8"))
                out.append(
                    {"kind": "job", "path": str(job), "for": info.get("output", "?"), "bytes": _size(job)}
                )
        proxies = self.root / "proxies"
        if proxies.is_dir():
            for proxy in sorted(proxies.iterdir()):
                out.append({"kind": "proxy", "path": str(proxy), "for": proxy.name, "bytes": _size(proxy)})
        return out

    def clear(self) -> int:
        """Remove everything veil keeps here; returns the bytes freed."""
        freed = 0
        if not self.root.is_dir():
            return 0
        for child in list(self.root.iterdir()):
            freed += _size(child)
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    child.unlink()
        return freed


def remove(path: Path | None) -> None:
    """A finished job's directory, and `jobs/` itself when it was the last one."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for f in _walk(path):
        with contextlib.suppress(OSError):
            total += f.stat().st_size
    return total


def _walk(path: Path) -> Iterator[Path]:
    with contextlib.suppress(OSError):
        for p in path.rglob("*"):
            if p.is_file():
                yield p


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="veil cache",
        description="List or remove what veil keeps in its private work directory: work files of "
        "interrupted, failed or --keep-work jobs (plans, manifests, segments) and review proxies. "
        f"Location: --work-dir, else ${ENV}, else the platform's cache directory.",
    )
    p.add_argument("action", choices=["list", "clear", "path"], help="list entries, clear them, or print the location")
    p.add_argument("--work-dir", type=Path, help="the work directory to look at (default: as above)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    cache = Cache.at(args.work_dir)
    if args.action == "path":
        print(cache.root)
        return 0
    if args.action == "clear":
        freed = cache.clear()
        print(f"veil: cleared {cache.root} ({_human(freed)})")
        return 0
    entries = cache.entries()
    if not entries:
        print(f"veil: nothing kept in {cache.root}")
        return 0
    for e in entries:
        print(f"{e['kind']:5}  {_human(e['bytes']):>9}  {e['path']}  ({e['for']})")
    return 0
