"""Many files on all cores or on a Ray cluster, resumable: the job runner behind `veil -j N`.

The unit of work is (file, segment): a whole image or short video, one segment of a long video
(segments.py), or the join of a video's finished segments. Work goes to an `Engine`: a local
process pool (`LocalEngine`) or Ray tasks (`RayEngine`, imported only for `--engine ray`). Only
paths and small JSON cross a process or node boundary; inputs and outputs live on storage every
worker sees.

Resumable: the job's manifest (in veil's private work directory, cache.py, never in the output
folder) gets a line each time an item starts, finishes or fails (input SHA-256, output, plan,
report, status, attempts, and a digest of the settings that change the output); the last line of
an item wins. A re-run of the same command skips items whose output is still there with the
recorded SHA-256 and settings, retries failed or interrupted ones up to MAX_ATTEMPTS in all, and
never redoes a finished segment. A re-run with other settings redoes the work (with --overwrite)
or refuses. The job's directory is removed when every file is done, unless --keep-work. At most
`workers` items are in flight, so an interrupted run (Ctrl-C, a killed worker, a lost node) loses
at most those. Every output is still written to a temporary name and renamed.

Threads: each of N workers gives onnxruntime (and OpenCV) cores // N threads, so N workers do
not oversubscribe the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from veil.analysis.detectors import sha256_of
from veil.config import Settings
from veil.errors import VeilError
from veil.progress import Reporter
from veil.runners.cache import Cache
from veil.runners.pipeline import FileResult, Job, done_line

# Both inside the job's private directory (cache.Cache.job_dir), never in the output folder.
MANIFEST = "manifest.jsonl"
WORKDIR = "work"
# A failure that happens three times is the file's, not the machine's: report it and move on.
MAX_ATTEMPTS = 3


# ----------------------------------------------------------------------------- manifest


class Manifest:
    """Append-only JSON Lines; the last line of a key is its state. Appends are single writes
    of one line, flushed, so a killed run leaves at worst one partial last line (skipped)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.state: dict[str, dict[str, Any]] = {}
        self.done: set[str] = set()  # keys whose last line says done
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):
                    self._note(json.loads(line))

    def _note(self, entry: dict[str, Any]) -> None:
        self.state[entry["key"]] = entry
        if entry.get("status") == "done":
            self.done.add(entry["key"])
        else:
            self.done.discard(entry["key"])

    def get(self, key: str) -> dict[str, Any] | None:
        return self.state.get(key)

    def write(self, entry: dict[str, Any]) -> None:
        entry = {**entry, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self._note(entry)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            # A full disk (or a lost mount) is the user's to fix: one line naming the file.
            raise VeilError(f"{self.path}: cannot write the resume manifest ({exc.strerror or exc})") from None

    def finished(self, key: str) -> dict[str, Any] | None:
        """The entry of `key` if it is done and its output is still the one it wrote."""
        entry = self.state.get(key)
        if not entry or entry.get("status") != "done":
            return None
        out = Path(entry.get("output") or "")
        if not out.is_file() or (entry.get("output_sha256") and sha256_of(out) != entry["output_sha256"]):
            return None
        return entry


# ----------------------------------------------------------------------------- work items


@dataclass
class Item:
    """One unit of work; `payload` is what crosses to the worker (paths and small JSON)."""

    key: str
    kind: str  # "file", "segment" or "join"
    payload: dict[str, Any]
    job: Job
    hours: float = 0.0
    label: str = ""
    after: list[str] = field(default_factory=list)  # keys that must be done first (a join's segments)


def run_item(payload: dict[str, Any]) -> dict[str, Any]:
    """Runs in a worker (process or Ray task): one item, returns small JSON."""
    from veil.runners import segments

    settings = Settings(**payload["settings"])
    if payload["kind"] == "segment":
        seg = segments.Segment.from_json(payload["segment"])
        with _pipeline(settings) as pipeline:
            return segments.redact_segment(
                pipeline,
                Path(payload["input"]),
                payload["input_sha256"],
                seg,
                Path(payload["output"]),
                Path(payload["plan"]),
            )
    if payload["kind"] == "join":
        probe = segments.Probe(**payload["probe"])
        record = segments.join(
            Path(payload["input"]), Path(payload["output"]), probe, payload["parts"], settings, Path(payload["plan"])
        )
        if payload.get("user_plan"):
            from veil.media.sink import atomic_output

            with atomic_output(Path(payload["user_plan"]), settings.overwrite) as tmp:
                shutil.copyfile(payload["plan"], tmp)
            record["plan"] = payload["user_plan"]
        return {"ok": True, "record": record, "output_sha256": record["output_sha256"]}
    job = Job(
        Path(payload["input"]),
        Path(payload["output"]),
        payload["job_kind"],
        Path(payload["user_plan"]) if payload.get("user_plan") else None,
    )
    with _pipeline(settings) as pipeline:
        result = pipeline.redact(job)
        record = dict(result.record)
        # The one-shot plan lives in this worker's scratch directory, removed when this job
        # ends: keep it where the report can find it after this process is gone.
        plan_file = record.pop("_plan_file", None)
        if plan_file and Path(plan_file).is_file():
            kept = Path(payload["plan"])
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(plan_file, kept)
            record["_plan_file"] = str(kept)
    thumbnails = record.pop("_thumbnails", None)
    if thumbnails:
        # The HTML report's contact sheet (masked and kept regions already filled): beside the
        # plan, so only a path crosses back to the parent and into the manifest.
        sheet = Path(payload["plan"]).with_suffix(".thumbnails.json")
        sheet.parent.mkdir(parents=True, exist_ok=True)
        sheet.write_text(json.dumps(thumbnails), encoding="utf-8")
        record["_thumbnails_file"] = str(sheet)
    return {
        "ok": result.ok,
        "error": result.error,
        "record": _jsonable(record),
        "output_sha256": record.get("output_sha256"),
    }


def run_scan(payload: dict[str, Any]) -> dict[str, Any]:
    """The GPU half of an item (in a detection actor): decode, detect, track; write the plan only."""
    from veil.runners import segments

    settings = Settings(**payload["settings"])
    with _pipeline(settings) as pipeline:
        if payload["kind"] == "segment":
            seg = segments.Segment.from_json(payload["segment"])
            out = segments.redact_segment(
                pipeline, Path(payload["input"]), payload["input_sha256"], seg, None, Path(payload["plan"])
            )
            return {"ok": True, **out}
        plan = Path(payload["plan"])
        plan.parent.mkdir(parents=True, exist_ok=True)
        result = pipeline.scan(Job(Path(payload["input"]), plan, payload["job_kind"]))
    return {"ok": result.ok, "error": result.error}


def run_render(payload: dict[str, Any], scanned: dict[str, Any]) -> dict[str, Any]:
    """The CPU half of an item (a plain task): paint the scanned plan, encode, verify."""
    from veil.plan import load_plan
    from veil.runners import segments

    if not scanned.get("ok"):
        return scanned
    settings = Settings(**payload["settings"])
    where = scanned.get("gpu_ids")
    if payload["kind"] == "segment":
        seg = segments.Segment.from_json(payload["segment"])
        out = segments.render_segment(
            settings, Path(payload["input"]), seg, Path(payload["plan"]), Path(payload["output"])
        )
        out["detect_s"] = scanned.get("detect_s", 0.0)
        return {**out, "scanned_on_gpus": where}
    plan = Path(payload["plan"])
    job = Job(Path(payload["input"]), Path(payload["output"]), payload["job_kind"], plan)
    with _pipeline(settings) as pipeline:
        result = pipeline.render(job, load_plan(plan, spooled=True))
    record = dict(result.record)
    record.pop("_thumbnails", None)
    record["_plan_file"] = str(plan)
    record["scanned_on_gpus"] = where
    if result.ok and payload.get("user_plan"):
        from veil.media.sink import atomic_output

        with atomic_output(Path(payload["user_plan"]), settings.overwrite) as tmp:
            shutil.copyfile(plan, tmp)
        record["plan"] = payload["user_plan"]
    return {
        "ok": result.ok,
        "error": result.error,
        "record": _jsonable(record),
        "output_sha256": record.get("output_sha256"),
    }


_PIPELINES: dict[str, Any] = {}


@contextlib.contextmanager
def _pipeline(settings: Settings) -> Iterator[Any]:
    """One pipeline (detectors loaded once) per worker process and settings, for one job: its
    scratch directory is removed when the job ends, as nothing calls a worker's last close."""
    from veil.runners.pipeline import Pipeline

    key = json.dumps(settings.to_json(), sort_keys=True) + repr(settings)
    if key not in _PIPELINES:
        _PIPELINES[key] = Pipeline(settings)
    try:
        yield _PIPELINES[key]
    finally:
        _PIPELINES[key].close()


def init_worker(threads: int, unwind: bool = False, parent: int | None = None) -> None:
    """Size every thread pool of a worker so N workers share the cores instead of fighting; and
    with `unwind` (local workers; Ray manages its own), unwind on SIGTERM like on Ctrl-C, so
    temporary outputs are removed. With `parent` (the main process's pid), die with it."""
    import signal

    import cv2

    if unwind and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    if parent is not None:
        die_with_parent(parent)

    from veil.analysis import detectors

    detectors.DEFAULT_THREADS = threads
    cv2.setNumThreads(threads)


# A local worker's state for SIGTERM: whether it is running an item, and whether it was told to
# stop. ProcessPoolExecutor hands the KeyboardInterrupt of an unwound item back as its result and
# the worker then waits for the next one, possibly on the task queue's lock that a sibling killed
# mid-read left held for ever; so a worker told to stop ends once its item has unwound.
_RUNNING_ITEM = False
_STOPPING = False


def _terminate(signum: int, _frame: object) -> None:
    global _STOPPING
    _STOPPING = True
    if not _RUNNING_ITEM:
        os._exit(130)  # idle: nothing to unwind
    raise KeyboardInterrupt


def run_local_item(payload: dict[str, Any]) -> dict[str, Any]:
    """`run_item` in a local worker process: it ends with its item when told to stop."""
    global _RUNNING_ITEM
    _RUNNING_ITEM = True
    try:
        return run_item(payload)
    finally:
        _RUNNING_ITEM = False
        if _STOPPING:
            os._exit(130)


# Seconds between looks at the parent, and granted to unwind (remove a temporary output) once
# it is gone, before the worker ends itself the hard way.
WATCH_S = 0.5
UNWIND_S = 5.0


def die_with_parent(parent: int) -> None:
    """A worker whose main process is killed (SIGKILL, out of memory) must not run on for
    minutes holding half a gigabyte: it ends too.

    Linux: the kernel sends SIGTERM when the parent dies (prctl PR_SET_PDEATHSIG), which unwinds
    like Ctrl-C and removes the worker's temporary output. Everywhere (and in case unwinding
    hangs in native code): a watchdog thread sees the parent gone (the parent pid changes when
    the worker is re-parented), sends SIGTERM itself, and exits hard after UNWIND_S."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_S)
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(UNWIND_S)
        os._exit(1)

    threading.Thread(target=watch, name="veil-parent-watch", daemon=True).start()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def worker_threads(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


# ----------------------------------------------------------------------------- engines


class Engine(Protocol):
    workers: int

    def submit(self, payload: dict[str, Any]) -> Future[dict[str, Any]]: ...

    def close(self, cancel: bool = False) -> None: ...


class LocalEngine:
    """A pool of `workers` processes (spawned: onnxruntime's threads do not survive fork). A
    worker that dies (killed, out of memory) fails only the items in flight; the pool is
    rebuilt for the rest."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(worker_threads(self.workers), True, os.getpid()),
        )

    def submit(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        try:
            return self.pool.submit(run_local_item, payload)
        except BrokenProcessPool:
            self._stop_workers()
            self.pool = self._new_pool()
            return self.pool.submit(run_local_item, payload)

    def close(self, cancel: bool = False) -> None:
        if cancel or getattr(self.pool, "_broken", False):
            # Interrupted: stop the items in flight now; each removes its temporary output.
            self._stop_workers()
        else:
            self.pool.shutdown(wait=True)

    def _stop_workers(self) -> None:
        """Terminate the pool's workers (SIGTERM: each unwinds, removes its temporary output and
        ends), give them UNWIND_S, kill any left, then let the executor wind down.

        Also when the pool broke: a worker killed while holding the task queue's lock leaves the
        others blocked on it for ever, and Python 3.11's executor waits for them at exit (3.12
        terminates them itself); seen as a run that printed its summary, or was interrupted, and
        never ended."""
        from multiprocessing.connection import wait as wait_ended

        processes = list((getattr(self.pool, "_processes", None) or {}).values())
        manager = getattr(self.pool, "_executor_manager_thread", None)
        for process in processes:
            with contextlib.suppress(Exception):
                process.terminate()
        self.pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + UNWIND_S
        alive = [p for p in processes if p.exitcode is None]
        while alive and time.monotonic() < deadline:
            wait_ended([p.sentinel for p in alive], timeout=deadline - time.monotonic())
            alive = [p for p in alive if p.exitcode is None]
        for process in alive:
            with contextlib.suppress(Exception):
                process.kill()
        if manager is not None:
            manager.join()


class RayEngine:
    """Ray: connects to `address` (or RAY_ADDRESS); with neither, starts a local Ray instance.

    Without GPUs, an item is one task (decode, detect, track, paint, encode) asking for its share
    of the CPUs. With GPUs in the cluster, detection runs in a pool of actors holding one GPU
    each (decode, detect, track: the plan), and painting and encoding run as CPU tasks that take
    the plan: only the plan's path and a small dict go from one to the other.
    """

    def __init__(self, workers: int | None, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise VeilError("--engine ray needs Ray: pip install 'veil[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        resources = ray.cluster_resources()
        self.workers = workers or int(resources.get("CPU", 1))
        options = ray_task_options(resources, self.workers)
        self.threads = int(options.pop("_threads"))
        self.task = ray.remote(**options)(_ray_item)
        self.render = ray.remote(**options)(_ray_render)
        gpus = int(resources.get("GPU", 0))
        actor = ray.remote(**detector_actor_options())(DetectorActor)
        self.actors = [actor.remote(self.threads) for _ in range(gpus)]
        self._turn = 0

    def submit(self, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        if not self.actors or payload["kind"] == "join":
            return self.task.remote(payload, self.threads).future()
        # Round robin: every actor runs its calls one at a time, on its own GPU.
        actor = self.actors[self._turn % len(self.actors)]
        self._turn += 1
        scanned = actor.scan.remote(payload)
        return self.render.remote(payload, scanned, self.threads).future()

    def close(self, cancel: bool = False) -> None:
        for actor in self.actors:
            self.ray.kill(actor)


def ray_task_options(resources: dict[str, float], workers: int) -> dict[str, Any]:
    """Resource requests of one CPU task: the cluster's CPUs over the items in flight, at least
    one; onnxruntime gets as many threads."""
    cpus = max(1.0, float(resources.get("CPU", 1)) // max(1, workers))
    return {"num_cpus": cpus, "max_retries": 0, "_threads": int(cpus)}


def detector_actor_options() -> dict[str, Any]:
    """One whole GPU per detection actor (and a CPU for its decoding): onnxruntime's CUDA
    provider then owns the device; no two actors share one."""
    return {"num_gpus": 1, "num_cpus": 1, "max_restarts": 0}


class DetectorActor:
    """Holds the detectors on its GPU across items (models load once per actor)."""

    def __init__(self, threads: int) -> None:
        init_worker(threads)

    def scan(self, payload: dict[str, Any]) -> dict[str, Any]:
        import ray

        out = run_scan(payload)
        out["gpu_ids"] = [str(g) for g in ray.get_gpu_ids()]
        return out


def _ray_item(payload: dict[str, Any], threads: int) -> dict[str, Any]:
    init_worker(threads)
    return run_item(payload)


def _ray_render(payload: dict[str, Any], scanned: dict[str, Any], threads: int) -> dict[str, Any]:
    init_worker(threads)
    return run_render(payload, scanned)


# ----------------------------------------------------------------------------- progress


class BatchProgress:
    """One overall bar (files, hours of footage, ETA), one line per active worker, and a summary
    line with throughput in hours of footage per hour of wall time."""

    def __init__(self, reporter: Reporter, files: int, hours: float) -> None:
        self.reporter = reporter
        self.files, self.hours = files, hours
        self.files_done, self.hours_done = 0, 0.0
        self.started = time.monotonic()
        self.live: Any = None
        self.active: dict[str, tuple[str, float]] = {}
        if not reporter.quiet and reporter.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._render(), console=reporter.console, transient=True, refresh_per_second=2)
            self.live.start()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        share = self.hours_done / self.hours if self.hours else (self.files_done / max(1, self.files))
        eta = elapsed * (1 - share) / share if share > 0 else None
        head = Text(
            f"{self.files_done}/{self.files} files, {self.hours_done:.2f}/{self.hours:.2f} h of video, "
            f"ETA {_clock(eta) if eta is not None else '--:--'}"
        )
        lines: list[Any] = [head, ProgressBar(total=1.0, completed=min(1.0, share))]
        for label, since in self.active.values():
            lines.append(Text(f"  worker: {label} ({time.monotonic() - since:.0f} s)", style="cyan"))
        return Group(*lines)

    def start(self, item: Item) -> None:
        self.active[item.key] = (item.label, time.monotonic())
        self._update()

    def end(self, item: Item, hours: float = 0.0, file_done: bool = False) -> None:
        self.active.pop(item.key, None)
        self.hours_done += hours
        self.files_done += file_done
        self._update()
        if self.live is None and not self.reporter.quiet and item.kind == "segment":
            # No terminal to draw on (a log, a CI job): a plain line per finished segment, so a
            # long video's minutes between file lines are not silence.
            self.reporter.info(
                f"{item.label} done: {self.files_done}/{self.files} files, "
                f"{self.hours_done:.2f}/{self.hours:.2f} h of video"
            )

    def _update(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def close(self) -> str:
        if self.live is not None:
            self.live.stop()
        elapsed = time.monotonic() - self.started
        if not self.hours:
            # Photos only: hours of footage would be a meaningless zero.
            return f"{self.files_done} file{'s' * (self.files_done != 1)} in {_clock(elapsed)}"
        rate = self.hours_done / (elapsed / 3600) if elapsed > 0 else 0.0
        return (
            f"{self.files_done} file{'s' * (self.files_done != 1)}, {self.hours_done:.3f} h of video in "
            f"{_clock(elapsed)}: {rate:.2f} h of footage per hour"
        )


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


# ----------------------------------------------------------------------------- the runner


def manifest_dir(outputs: list[Path], output: str | None) -> Path:
    """The output directory: -o when it is one, else the deepest directory all outputs share.
    It names the job (cache.Cache.job_dir); nothing is written there but outputs."""
    if output and (Path(output).is_dir() or len(outputs) > 1 or output.endswith(os.sep)):
        return Path(output)
    parents = [str(p.resolve().parent) for p in outputs]
    return Path(os.path.commonpath(parents)) if parents else Path(".")


def resume(failed: list[FileResult], cache: Cache, settings: Settings) -> tuple[list[FileResult], list[FileResult]]:
    """Split the outputs refused because they exist into those an earlier run made from the same
    input with the same settings (output unchanged: done, not an error) and the rest; an output
    made with other settings gets its own one-line refusal."""
    digest = settings_digest(settings)
    still, done = [], []
    for result in failed:
        entry = None
        if result.output is not None and result.output.is_file() and result.input.is_file():
            input_sha = sha256_of(result.input)
            entry = cache.done_entry(input_sha, result.output, sha256_of(result.output))
        if entry is None:
            still.append(result)
        elif entry.get("settings") != digest:
            error = f"{result.output}: made with other settings; use --overwrite to redo it with these"
            still.append(FileResult(result.input, result.output, False, error))
        else:
            record = {
                "input": str(result.input),
                "output": str(result.output),
                "input_sha256": input_sha,
                "output_sha256": entry.get("output_sha256"),
                "already_done": True,
                "warnings": ["made by an earlier run with the same settings; not redone"],
            }
            done.append(FileResult(result.input, result.output, True, None, record))
    return still, done


def record_done(cache: Cache, results: list[FileResult], settings: Settings) -> None:
    """Note every output this run finished, so a re-run knows it (and with which settings)."""
    digest = settings_digest(settings)
    for r in results:
        record = r.record or {}
        if not r.ok or r.output is None or record.get("already_done") or not record.get("input_sha256"):
            continue
        out_sha = record.get("output_sha256")
        if out_sha:
            cache.record_done(record["input_sha256"], r.output, out_sha, digest)


def use_runner(jobs: list[Job], workers: int, segment_s: float | None, engine: str) -> bool:
    """Whether there is more than one unit of work for more than one worker (or Ray was asked
    for): several files, or a video long enough to be cut. Otherwise the sequential one-shot
    loop runs, with no manifest: it is the reference the runner is tested against."""
    from veil.runners.segments import default_segment_seconds

    if engine == "ray" or segment_s:
        return True
    if workers < 2:
        return False
    return len(jobs) > 1 or any(
        j.kind == "video" and default_segment_seconds(_video_hours(j.input) * 3600, workers) for j in jobs
    )


def _video_hours(path: Path) -> float:
    from veil.media.source import VideoSource

    try:
        with VideoSource(path, with_audio=False) as source:
            return (source.info.duration_s or 0.0) / 3600
    except VeilError:
        return 0.0


class Runner:
    def __init__(
        self,
        settings: Settings,
        reporter: Reporter,
        workers: int,
        segment_s: float | None,
        engine: str = "local",
        ray_address: str | None = None,
        workdir: Path | None = None,
        cache: Cache | None = None,
    ) -> None:
        """`workdir`: the job's private directory (cache.Cache.job_dir of its output folder)."""
        self.settings = settings
        self.digest = settings_digest(settings)
        self.reporter = reporter
        self.workers = max(1, workers)
        self.segment_s = segment_s
        self.engine_name = engine
        self.ray_address = ray_address
        self.cache = cache
        self.workdir = workdir or (cache or Cache.at()).job_dir(Path("."))
        self.manifest = Manifest(self.workdir / MANIFEST)
        self.stats: dict[str, Any] = {"items_run": 0, "items_skipped": 0, "item_seconds": []}

    # -------------------------------------------------------------- planning the work

    def items_for(self, job: Job) -> list[Item]:
        from veil.runners import segments

        sha = sha256_of(job.input)
        # Absolute paths: a worker on another node (or in another directory) sees the same files.
        base = {
            "settings": segments.settings_json(self.settings),
            "input": str(job.input.resolve()),
            "input_sha256": sha,
        }
        file_key = f"{sha}:{job.output.resolve()}"
        # Per (input, output): two outputs of the same input (or two identical inputs) never share
        # scratch files, since one file's join removes its own.
        tag = hashlib.sha256(file_key.encode()).hexdigest()[:16]
        scratch = (self.workdir / WORKDIR / tag).resolve()
        # Plans stay (the manifest and the report point at them); segment files go after the join.
        plan_path = (self.workdir / WORKDIR / "plans" / f"{job.output.stem}-{tag}.plan.json").resolve()
        user_plan = str(job.plan_path) if job.plan_path else None
        cut = None
        hours = _video_hours(job.input) if job.kind == "video" else 0.0
        finished = self._finished(file_key, sha)
        # A file whose speech is searched (--audio-pii, --transcript) stays whole: recognition
        # needs the whole track, and the edit it makes is the file's, not a segment's.
        whole_audio = self.settings.audio_pii is not None or self.settings.transcript is not None
        if job.kind == "video" and not finished and not whole_audio:
            # (A finished file is one item, skipped whole: its segment files are gone.)
            segment_s = self.segment_s
            if segment_s is None:
                segment_s = segments.default_segment_seconds(hours * 3600, self.workers)
            if segment_s:
                stride = max_stride(self.settings)
                cut = segments.plan_segments(job.input, self.settings, segment_s, stride)
        if cut is None:
            payload = {
                **base,
                "kind": "file",
                "job_kind": job.kind,
                "output": str(job.output.resolve()),
                "plan": str(plan_path),
                "user_plan": user_plan,
            }
            return [Item(file_key, "file", payload, job, hours, job.input.name)]
        probe, segs = cut
        items = []
        ext = job.output.suffix
        for seg in segs:
            key = f"{file_key}#{seg.index}"
            payload = {
                **base,
                "kind": "segment",
                "segment": seg.to_json(),
                "output": str(scratch / f"segment-{seg.index:05d}{ext}"),
                "plan": str(scratch / f"segment-{seg.index:05d}.plan.json"),
            }
            seg_hours = (seg.end - seg.start) / probe.rate / 3600
            label = f"{job.input.name} segment {seg.index + 1}/{len(segs)}"
            items.append(Item(key, "segment", payload, job, seg_hours, label))
        join_payload = {
            **base,
            "kind": "join",
            "output": str(job.output.resolve()),
            "plan": str(plan_path),
            "probe": probe.__dict__,
            "parts": [],
            "user_plan": user_plan,
            "scratch": str(scratch),
        }
        items.append(
            Item(file_key, "join", join_payload, job, 0.0, f"{job.input.name} join", after=[i.key for i in items])
        )
        return items

    # -------------------------------------------------------------- running

    def run(self, jobs: list[Job]) -> list[FileResult]:
        results: dict[str, FileResult] = {}
        todo: list[Item] = []
        for job in jobs:
            try:
                todo.extend(self.items_for(job))
            except VeilError as exc:
                results[str(job.output)] = FileResult(job.input, job.output, False, str(exc))
        progress = BatchProgress(self.reporter, len({i.job.output for i in todo}), sum(i.hours for i in todo))
        engine = self._engine()
        pending = list(todo)
        running: dict[Future[dict[str, Any]], tuple[Item, float]] = {}
        failed_keys: set[str] = set()
        interrupted = False
        try:
            while pending or running:
                # Fill free workers with items whose prerequisites are done.
                for item in list(pending):
                    if len(running) >= engine.workers:
                        break
                    if any(k in failed_keys for k in item.after):
                        pending.remove(item)
                        failed_keys.add(item.key)
                        results.setdefault(
                            str(item.job.output),
                            FileResult(item.job.input, item.job.output, False, f"{item.job.input}: a segment failed"),
                        )
                        progress.end(item, file_done=True)
                        continue
                    if any(k not in self._done_keys for k in item.after):
                        continue
                    pending.remove(item)
                    skipped = self._skip(item, results, progress)
                    if skipped:
                        continue
                    if item.kind == "join":
                        item.payload["parts"] = [self.manifest.get(k)["report"] for k in item.after]  # type: ignore[index]
                    entry = self.manifest.get(item.key) or {}
                    attempts = int(entry.get("attempts", 0)) + 1
                    if entry.get("status") in ("failed", "running") and attempts > MAX_ATTEMPTS:
                        failed_keys.add(item.key)
                        results[str(item.job.output)] = FileResult(
                            item.job.input,
                            item.job.output,
                            False,
                            f"{item.job.input}: failed {MAX_ATTEMPTS} times, not retried "
                            f"({entry.get('error') or 'interrupted'}); delete {self.manifest.path} to try again",
                        )
                        progress.end(item, file_done=item.kind != "segment")
                        continue
                    self._log(item, "running", attempts)
                    progress.start(item)
                    running[engine.submit(item.payload)] = (item, time.monotonic())
                if not running:
                    if pending and not any(all(k in self._done_keys for k in i.after) for i in pending):
                        raise VeilError("internal: work items wait on items that will never run")
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    item, since = running.pop(future)
                    self._collect(item, future, since, results, failed_keys, progress)
        except BaseException:
            # Ctrl-C, or an error of the runner itself (a full disk): stop the items in flight.
            interrupted = True
            raise
        finally:
            engine.close(cancel=interrupted)
            summary = progress.close()
            if not interrupted:
                self.reporter.info(summary)
        order = {str(j.output): i for i, j in enumerate(jobs)}
        return sorted(results.values(), key=lambda r: order.get(str(r.output), len(order)))

    @property
    def _done_keys(self) -> set[str]:
        return self.manifest.done

    def _engine(self) -> Engine:
        if self.engine_name == "ray":
            return RayEngine(self.workers, self.ray_address)
        return LocalEngine(self.workers)

    def _finished(self, key: str, input_sha: str) -> dict[str, Any] | None:
        """The manifest's entry of `key` if it is done, from this input, with these settings."""
        entry = self.manifest.finished(key)
        if entry is None or entry.get("input_sha256") != input_sha or entry.get("settings") != self.digest:
            return None
        return entry

    def _skip(self, item: Item, results: dict[str, FileResult], progress: BatchProgress) -> bool:
        entry = self._finished(item.key, item.payload["input_sha256"])
        if entry is None:
            return False
        self.stats["items_skipped"] += 1
        if item.kind != "segment":
            record = entry.get("report") or {}
            results[str(item.job.output)] = FileResult(item.job.input, item.job.output, True, None, record)
            self.reporter.info(f"[dim]already done[/] {item.job.input} -> {item.job.output}")
            progress.end(item, item.hours, file_done=True)
        else:
            progress.end(item, item.hours)
        return True

    def _log(self, item: Item, status: str, attempts: int, **extra: Any) -> None:
        self.manifest.write(
            {
                "key": item.key,
                "kind": item.kind,
                "input": str(item.job.input),
                "input_sha256": item.payload["input_sha256"],
                "output": item.payload["output"],
                "plan": item.payload.get("user_plan") or item.payload.get("plan"),
                "status": status,
                "attempts": attempts,
                "settings": self.digest,
                **extra,
            }
        )

    def _collect(
        self,
        item: Item,
        future: Future[dict[str, Any]],
        since: float,
        results: dict[str, FileResult],
        failed_keys: set[str],
        progress: BatchProgress,
    ) -> None:
        attempts = int((self.manifest.get(item.key) or {}).get("attempts", 1))
        try:
            out = future.result()
        except BrokenProcessPool:
            out = {"ok": False, "error": f"{item.job.input}: a worker process died (killed or out of memory)"}
        except VeilError as exc:
            out = {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a worker's failure fails its item only
            out = {"ok": False, "error": f"{item.job.input}: failed ({type(exc).__name__}: {exc})"}
        self.stats["items_run"] += 1
        self.stats["item_seconds"].append(round(time.monotonic() - since, 3))
        if item.kind == "segment" and "segment" in out:
            self._log(item, "done", attempts, report=out, output_sha256=out["output_sha256"])
            progress.end(item, item.hours)
            return
        ok = bool(out.get("ok"))
        if ok:
            self._log(item, "done", attempts, report=out.get("record"), output_sha256=out.get("output_sha256"))
            if item.kind == "join":
                shutil.rmtree(item.payload["scratch"], ignore_errors=True)
                progress.end(item, 0.0, file_done=True)  # its hours were counted per segment
            else:
                progress.end(item, item.hours, file_done=True)
            record = out.get("record") or {}
            if self.cache is not None and record.get("output_sha256"):
                # Now, not at the end: an interrupted run's finished files count on a re-run.
                self.cache.record_done(
                    item.payload["input_sha256"], item.job.output, record["output_sha256"], self.digest
                )
            self._done_line(item, record)
            results[str(item.job.output)] = FileResult(item.job.input, item.job.output, True, None, record)
            return
        error = out.get("error") or "failed"
        self._log(item, "failed", attempts, error=error)
        failed_keys.add(item.key)
        progress.end(item, file_done=item.kind != "segment")
        if item.kind == "segment":
            results[str(item.job.output)] = FileResult(item.job.input, item.job.output, False, error)
        else:
            results[str(item.job.output)] = FileResult(
                item.job.input, item.job.output, False, error, out.get("record") or {}
            )

    def _done_line(self, item: Item, record: dict[str, Any]) -> None:
        self.reporter.info(done_line(item.job.input, item.job.output, record))


def settings_digest(settings: Settings) -> str:
    """A digest of every setting that changes an output's bytes (what is found, how it is
    painted, which frames and audio are written, in which format, with which metadata); not
    those that do not (--overwrite, whether a report is written)."""
    doc = {
        **settings.to_json(),
        "output_format": settings.output_format,
        "keep_audio": settings.keep_audio,
        "keep_metadata": settings.keep_metadata,
        "allow_crop": settings.allow_crop,
        "audio_ranges": [list(r) for r in settings.audio_ranges],
    }
    text = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def max_stride(settings: Settings) -> int:
    """The longest detection stride of the classes asked for (as FrameDetector computes it),
    without loading any model."""
    from veil.analysis.classes import CLASSES

    face = max(1, settings.preset_obj.detect_stride)
    return max(face * CLASSES[name].video_stride for name in settings.classes)
