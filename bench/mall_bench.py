"""Heads covered on a real fixed camera: the CUHK Mall clip of the shared data (`cctv/mall_dev.mp4`).

The clip has hand-marked head centre points on every 5th frame (`cctv/mall_heads.json`, only
people inside the dataset's region of interest). Two ways to score:

* `score OUT.mp4`: a video written by veil with `--mask-color 255,0,255` (magenta: unlike black,
  no hair or shadow in the input looks masked). A head point is covered when every pixel of the
  9x9 px around it is magenta in the output (within H.264's chroma error).
* `cue NAME`: runs one head cue on the clip's frames in order (no tracker, no face detector),
  grows each box by the default mask margin (0.2 of its size on each side) and paints it: what
  the cue alone contributes, cheaply, while tuning.

Both report, over the chosen frames: the share of head points covered, and the share of the
frame masked away from every head (pixels farther than one head size from every marked point;
head size grows with the row, about 8 px at the top of this camera's picture to 34 px at the
bottom, measured on frames 0 and 500). Masks on people outside the region of interest count as
away from heads, so that share is an upper bound.

* `persons PLAN`: a plan veil wrote for the clip (`--plan`): its tracks and persons (the plan's
  `person` numbers; a track without one is its own person), over the whole clip and over the
  stretches counted by hand (`HAND_COUNTS`), where each figure is also given per person
  counted. A track or person counts in a stretch when one of its boxes there was detected.
* `carry PLAN`: the plan's boxes painted (with the default margin) in layers: detected boxes,
  then those interpolated between a track's detections, then those the tracker carried past a
  track's first or last detection by at most 1 frame, 3 frames, any distance; head points
  covered and the frame masked away from heads for each (what the carried boxes buy and cost).

Halves: `--half dev` (frames 0-495, for tuning), `--half test` (frames 500-995, reported),
`--half all`; `--every 10` keeps every 10th frame (every 2nd annotated one) while iterating.

Run: `PYTHONPATH=src .venv/bin/python bench/mall_bench.py cue people --half test`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CLIP = "cctv/mall_dev.mp4"
HEADS = "cctv/mall_heads.json"
MARGIN = 0.2
HALF_FRAME = 500
# People counted by hand (docs/cctv.md, "Tracks per person"), per stretch: (people in its first
# frame, distinct people in its two annotated frames): the points of the first frame, plus those
# of the last frame not matched by eye to someone in the first (clothing and path); the
# difference is the people who arrived during the stretch.
HAND_COUNTS = {(500, 505): (45, 59), (900, 905): (33, 39)}


def head_size(y: float) -> float:
    """This camera's head height in px at row `y` (perspective: far people are near the top)."""
    return 8.0 + 0.055 * y


def load_points(data: Path) -> dict[int, np.ndarray]:
    frames = json.loads((data / HEADS).read_text())["frames"]
    return {int(k): np.asarray(v, dtype=np.float64).reshape(-1, 2) for k, v in frames.items()}


def chosen(points: dict[int, np.ndarray], half: str, every: int) -> list[int]:
    keep = sorted(points)
    if half == "dev":
        keep = [i for i in keep if i < HALF_FRAME]
    elif half == "test":
        keep = [i for i in keep if i >= HALF_FRAME]
    return [i for i in keep if i % every == 0]


def away_mask(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """True where a pixel is farther than one head size from every head point."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    away = np.ones((h, w), dtype=bool)
    for x, y in pts:
        r = head_size(y)
        away &= (xx - x) ** 2 + (yy - y) ** 2 > r * r
    return away


def covered(mask: np.ndarray, pts: np.ndarray) -> int:
    h, w = mask.shape
    n = 0
    for x, y in pts:
        xi, yi = int(round(x)), int(round(y))
        x1, x2, y1, y2 = max(0, xi - 4), min(w, xi + 5), max(0, yi - 4), min(h, yi + 5)
        n += bool(mask[y1:y2, x1:x2].all())
    return n


class Tally:
    def __init__(self) -> None:
        self.points = 0
        self.covered = 0
        self.away: list[float] = []
        self.per_frame: dict[int, tuple[int, int]] = {}

    def add(self, index: int, mask: np.ndarray, pts: np.ndarray) -> None:
        c = covered(mask, pts)
        self.points += len(pts)
        self.covered += c
        away = away_mask(mask.shape, pts)
        self.away.append(float((mask & away).sum() / mask.size))
        self.per_frame[index] = (c, len(pts))

    def summary(self) -> dict[str, Any]:
        halves = {}
        for name, keep in (("dev", lambda i: i < HALF_FRAME), ("test", lambda i: i >= HALF_FRAME)):
            hits = [v for i, v in self.per_frame.items() if keep(i)]
            if hits:
                halves[f"coverage_{name}"] = round(sum(c for c, _ in hits) / max(1, sum(n for _, n in hits)), 4)
        return {
            **halves,
            "frames": len(self.away),
            "head_points": self.points,
            "covered": self.covered,
            "coverage": round(self.covered / max(1, self.points), 4),
            "masked_away_from_heads_mean": round(float(np.mean(self.away)) if self.away else 0.0, 4),
            "masked_away_from_heads_max": round(float(np.max(self.away)) if self.away else 0.0, 4),
        }


def score_video(path: Path, points: dict[int, np.ndarray], frames: list[int], offset: int = 0) -> dict[str, Any]:
    """`offset`: the clip frame of the video's first frame (a run with `--start`)."""
    want = {i - offset for i in frames if i >= offset}
    tally = Tally()
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i > max(want):
                break
            if i not in want:
                continue
            rgb = frame.to_ndarray(format="rgb24").astype(np.int16)
            magenta = (rgb[..., 0] > 170) & (rgb[..., 1] < 100) & (rgb[..., 2] > 170)
            tally.add(i + offset, magenta, points[i + offset])
    return tally.summary()


def paint(shape: tuple[int, int], boxes: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        mx, my = (x2 - x1) * margin, (y2 - y1) * margin
        a, b = int(max(0, np.floor(x1 - mx))), int(min(w, np.ceil(x2 + mx)))
        c, d = int(max(0, np.floor(y1 - my))), int(min(h, np.ceil(y2 + my)))
        mask[c:d, a:b] = True
    return mask


def score_cue(
    name: str, options: dict[str, Any], points: dict[int, np.ndarray], frames: list[int], data: Path, sequential: bool
) -> dict[str, Any]:
    """Run detector `name` on the clip; `sequential`: on every frame up to the last chosen one (a
    motion cue needs them in order), else only on the chosen frames."""
    from veil.analysis.detectors import create

    detector = create(name, **options)
    want = set(frames)
    tally = Tally()
    spent, runs = 0.0, 0
    with av.open(str(data / CLIP)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i > max(want):
                break
            if not sequential and i not in want:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            motion = getattr(detector, "_motion", None)
            if i not in want and motion is not None:
                # The people cue's motion part must see every frame; its network only the
                # scored ones (what the cue finds on a frame does not depend on other frames).
                motion.detect(rgb)
                continue
            t = time.perf_counter()
            dets = detector.detect(rgb)
            spent += time.perf_counter() - t
            runs += 1
            if i in want:
                tally.add(i, paint(rgb.shape[:2], dets.xyxy), points[i])
    out = tally.summary()
    out["ms_per_frame"] = round(1000 * spent / max(1, runs), 1)
    return out


def person_counts(plan_path: Path) -> dict[str, Any]:
    """Tracks and persons of a plan, over the clip and per hand-counted stretch."""
    from veil.plan import load_plan

    plan = load_plan(plan_path)

    def count(tracks: list[Any]) -> dict[str, int]:
        keys = {("person", t.person) if t.person is not None else ("track", t.id) for t in tracks}
        return {"tracks": len(tracks), "persons": len(keys)}

    tracks = list(plan.tracks)
    out: dict[str, Any] = {"clip": count(tracks), "stretches": []}
    first_seen: dict[Any, int] = {}
    for t in tracks:
        detected = [b.frame for b in t.boxes if b.detected]
        if detected:
            key = ("person", t.person) if t.person is not None else ("track", t.id)
            first_seen[key] = min(first_seen.get(key, detected[0]), detected[0])
    for (first, last), (at_start, people) in HAND_COUNTS.items():
        seen = [t for t in tracks if any(b.detected and first <= b.frame <= last for b in t.boxes)]
        row: dict[str, Any] = {"frames": [first, last], "people_by_hand": people, **count(seen)}
        row["tracks_per_person"] = round(row["tracks"] / people, 2)
        row["persons_per_person"] = round(row["persons"] / people, 2)
        # Arrivals: people new in the stretch against persons veil starts in it (first detected
        # after its first frame): how many persons one walker becomes over a visit, not only
        # while in view at once.
        row["arrivals_by_hand"] = people - at_start
        row["new_persons"] = sum(1 for f in first_seen.values() if first < f <= last)
        out["stretches"].append(row)
    rows = out["stretches"]
    hand = sum(r["people_by_hand"] for r in rows)
    out["tracks_per_person"] = round(sum(r["tracks"] for r in rows) / hand, 2)
    out["persons_per_person"] = round(sum(r["persons"] for r in rows) / hand, 2)
    arrivals = sum(r["arrivals_by_hand"] for r in rows)
    out["new_persons_per_arrival"] = round(sum(r["new_persons"] for r in rows) / max(arrivals, 1), 2)
    return out


# `carry`: a track's box in a frame, by how it got there: detected; interpolated between two of
# its detections; carried past its first or last detection (the lookahead's back-fill and the
# coast after a loss) by at most 1 frame, at most 3, or any distance.
CARRY_LAYERS = ("detected", "interpolated", "carried <= 1 frame", "carried <= 3 frames", "carried any")


def carry_layers(plan_path: Path, points: dict[int, np.ndarray], frames: list[int]) -> dict[str, Any]:
    """Head points covered and the frame masked away from heads when a plan's boxes are painted
    (grown by the default margin) layer by layer, each row adding a kind of box (CARRY_LAYERS):
    what the tracker's carried boxes buy in coverage and cost in masked frame."""
    import bisect

    from veil.plan import load_plan

    plan = load_plan(plan_path)
    detected = {t.id: sorted(b.frame for b in t.boxes if b.detected) for t in plan.tracks}
    tallies = [Tally() for _ in CARRY_LAYERS]
    shape = (480, 640)
    for f in frames:
        boxes: list[list[np.ndarray]] = [[] for _ in CARRY_LAYERS]
        for t in plan.tracks:
            got = t.box_at(f)
            if got is None:
                continue
            seen = detected[t.id]
            i = bisect.bisect_left(seen, f)
            if i < len(seen) and seen[i] == f:
                layer = 0
            elif 0 < i < len(seen):
                layer = 1
            else:
                gap = min(abs(seen[j] - f) for j in (i - 1, i) if 0 <= j < len(seen)) if seen else 10**6
                layer = 2 if gap <= 1 else 3 if gap <= 3 else 4
            boxes[layer].append(np.asarray(got[0], np.float64))
        for n, tally in enumerate(tallies):
            upto = [b for layer in boxes[: n + 1] for b in layer]
            tally.add(f, paint(shape, np.asarray(upto).reshape(-1, 4)), points[f])
    return {name: tally.summary() for name, tally in zip(CARRY_LAYERS, tallies, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["score", "cue", "persons", "carry"])
    parser.add_argument(
        "target",
        help="score: a veil output video (magenta masks); cue: a detector name; persons, carry: a plan",
    )
    parser.add_argument("--plan", type=Path, help="score: also count the tracks and persons of this plan")
    parser.add_argument("--options", default="{}", help="cue: the detector's options as JSON")
    parser.add_argument("--sequential", action="store_true", help="cue: run on every frame in order")
    parser.add_argument("--half", choices=["dev", "test", "all"], default="all")
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--offset", type=int, default=0, help="score: clip frame of the video's first frame")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    if not (args.data / CLIP).is_file():
        print(f"no {CLIP} under {args.data}", file=sys.stderr)
        return 2
    points = load_points(args.data)
    frames = chosen(points, args.half, args.every)
    if args.what == "persons":
        result = person_counts(Path(args.target))
    elif args.what == "carry":
        result = carry_layers(Path(args.target), points, frames)
    elif args.what == "score":
        result = score_video(Path(args.target), points, frames, args.offset)
        if args.plan is not None:
            result["persons"] = person_counts(args.plan)
    else:
        result = score_cue(args.target, json.loads(args.options), points, frames, args.data, args.sequential)
    result.update({"what": args.what, "target": args.target, "half": args.half, "every": args.every})
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
