"""veil with its per-frame detections recorded once and replayed: for tuning the tracker and the
person grouping, which take a fraction of a run's time, on the detections of a real run.

    VEIL_DETECTIONS=record:DIR python bench/replay_veil.py IN... -o OUT [veil options]
    VEIL_DETECTIONS=replay:DIR python bench/replay_veil.py IN... -o OUT [veil options]

`record` runs veil as usual and writes, per input video, every frame's detections (the boxes
the tracker is given, before it links them) to DIR/<folder>_<name>.pkl. `replay` runs veil's own
analysis loop with the recorded detections in place of the detectors: the tracker and
everything after it (box policy, person grouping, plan, painting, encoding, verify) run as
usual, so a replay of unchanged code gives the recorded run's output. The loop is wrapped
(`veil.runners.pipeline.tracked_frames`) here and in the worker processes a multi-file run
spawns (they import this module again). The settings must be the recorded run's; nothing checks
that. Used by `bench/cctv_bench.py --detections`; not part of veil.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import veil.runners.pipeline as pipeline

_MODE, _, _DIR = os.environ.get("VEIL_DETECTIONS", "").partition(":")
_veil_loop = pipeline.tracked_frames


def _key(source: Any) -> Path:
    path = Path(str(source.path)).resolve()
    return Path(_DIR) / f"{path.parent.parent.name}_{path.parent.name}_{path.stem}.pkl"


def tracked_frames(source: Any, detector: Any, tracker: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
    key = _key(source)
    if _MODE == "record":
        found: dict[int, Any] = {}
        push: Callable[..., Any] = tracker.push

        def recording_push(frame: Any, detections: Any, cut: bool = False) -> Any:
            found[frame.index] = detections  # None where no detector ran
            return push(frame, detections, cut)

        tracker.push = recording_push
        yield from _veil_loop(source, detector, tracker, *args, **kwargs)
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(pickle.dumps(found))
        return
    yield from _veil_loop(source, RecordedDetections(pickle.loads(key.read_bytes())), tracker, *args, **kwargs)


class RecordedDetections:
    """Stands in for veil's `FrameDetector` in its own analysis loop: each frame's recorded
    detections, no network. The loop asks `due` for every frame in order and `start` right
    after it for the frames it detects, so `start` hands `finish` the frame's index."""

    def __init__(self, found: dict[int, Any]) -> None:
        self.found = found
        self._index = -1

    def due(self, index: int) -> bool:
        self._index = index
        return self.found[index] is not None

    def start(self, image: Any, *args: Any, **kwargs: Any) -> int:
        return self._index

    def finish(self, begun: int) -> Any:
        return self.found[begun]


if _MODE in ("record", "replay") and _DIR:
    pipeline.tracked_frames = tracked_frames  # type: ignore[assignment]
elif _MODE:
    raise SystemExit(f"VEIL_DETECTIONS: expected record:DIR or replay:DIR, got {os.environ['VEIL_DETECTIONS']!r}")

if __name__ == "__main__":
    from veil.cli import main

    raise SystemExit(main())
