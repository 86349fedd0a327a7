"""Overlap the stages of one video's loop (decode -> analyse -> paint -> encode) in threads.

Each stage is an iterator run by a thread of its own, handing its items to the next through a
bounded queue (`prefetch`), so one process keeps several cores busy on one file: PyAV's codecs,
onnxruntime and OpenCV release the GIL while they work. Items keep their order (one thread per
stage, FIFO queues), and every stage does exactly what the serial loop does to each item, in
the same order, so the encoder is handed exactly the frames, timestamps and audio packets of the
serial run (tests/test_pipelined.py; the files themselves are not compared byte for byte, as
libx264 here does not write the same bytes twice even for the same frames).

The analysis stage runs its detectors in two more stages ahead of its tracker (analysis/scan.py,
`ahead`): decode -> person cues -> face detector and the rest -> track and plan -> paint ->
encode.

Bounded: each queue holds at most `QUEUE_ITEMS` items, so at most 5 x QUEUE_ITEMS frames (plus
one in the hands of each stage) are in flight beyond what the tracker's look-ahead holds
anyway: 20 frames, 53 MiB at 720p, 119 MiB at 1080p.

Failure: an exception in any stage travels down the queues and is raised, as it was, in the
thread that consumes the last stage; closing the chain (on an error or early exit) stops every
thread and waits for it, so no thread outlives the file. `VEIL_SERIAL=1` runs the same stages
one after another in the calling thread (the reference the threaded run is tested against).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

# Items a queue between two stages holds. Four absorbs the uneven frames (BlazeFace and YuNet
# run on every 4th frame, the second opinion on every 10th) without holding much memory.
QUEUE_ITEMS = 4
# How often a blocked stage looks whether the run was stopped (seconds).
POLL_S = 0.05
_END = object()
# The stop event of the stage this thread runs: a stage waiting on the one before it gives up
# as soon as its own consumer has stopped it, instead of waiting for one more item.
_here = threading.local()


class _Stopped(BaseException):
    """Raised in a stage's thread once its consumer stopped it (never reaches a caller)."""


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def serial() -> bool:
    """Whether stages run one after another in the calling thread (VEIL_SERIAL=1)."""
    return os.environ.get("VEIL_SERIAL", "") not in ("", "0")


def prefetch(make: Callable[[], Iterable[T]], name: str, size: int = QUEUE_ITEMS) -> Iterator[T]:
    """Iterate `make()` in a thread named `name`, `size` items ahead of the consumer.

    `make` is called in that thread, so the iterator is created, advanced and closed there
    only (a PyAV container or a generator is never touched by two threads). Close the returned
    generator (or exhaust it) to stop and join the thread; it is closed for you when the
    consumer raises inside a `with contextlib.closing(...)` or a `for` loop that is exited.
    """
    if serial():
        yield from make()
        return
    items: queue.Queue[Any] = queue.Queue(maxsize=size)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        _here.stop = stop
        source: Any = None
        try:
            source = iter(make())
            for item in source:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(_Failed(exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                try:
                    close()  # the upstream stages stop and are joined, in this thread
                except BaseException as exc:  # noqa: BLE001
                    put(_Failed(exc))

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = items.get(timeout=POLL_S)
            except queue.Empty:
                mine = getattr(_here, "stop", None)
                if mine is not None and mine.is_set():
                    raise _Stopped from None
                if not thread.is_alive() and items.empty():
                    raise RuntimeError(f"{name} stage ended without a result") from None
                continue
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


def threads_alive(prefix: str = "veil-stage") -> list[str]:
    """Names of this module's stage threads still running (for tests)."""
    return [t.name for t in threading.enumerate() if t.name.startswith(prefix)]
