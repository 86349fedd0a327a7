"""Which of veil's person links are wrong, on the generated fixed-camera clips (issue 23).

`PersonIds` joins a clip's tracks into persons by four kinds of evidence (containment,
continuation, doubles, satellites; analysis/person_ids.py). This replays veil's own analysis over
detections recorded once by `bench/cctv_bench.py --detections record` (bench/replay_veil.py: the
tracker, the grouping and everything after them run as usual, the detectors do not), logs every
join, and judges each by the clips' truth: a join is right when the two groups' detected boxes lie
mostly on the same walker's head (`cctv_bench.box_walker`), wrong when on two walkers', unknown
when either group has no box on a walker. Printed: persons per walker and the share of boxes
wrongly linked (as cctv_bench reports them), and per kind of link the joins right and wrong and
the boxes the wrong ones moved into another walker's person. About 20 s for four seeds' clips.

    python bench/cctv_bench.py --seeds 1 2 3 4 --variants faces,heads --reuse-deface --detections record
    python bench/link_audit.py --seeds 1 2 3 4 [--show]

The settings must be the recorded run's (`--preset balanced --redact faces,heads`); nothing checks that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cctv_bench as cb
import video_bench as vb

DETECTIONS = cb.WORK / "detections"
os.environ["VEIL_DETECTIONS"] = f"replay:{DETECTIONS}"
import replay_veil  # noqa: E402, F401  (installs the replay)

from veil.analysis import person_ids  # noqa: E402
from veil.cli import main as veil_main  # noqa: E402

Join = tuple[str, list[int], list[int]]


def replay_with_joins(clip: Path, plan: Path) -> list[Join]:
    """veil over `clip` with its recorded detections; every join of two groups, in order."""
    joins: list[Join] = []
    original: Callable[..., None] = person_ids.PersonIds._join

    def logged(self: person_ids.PersonIds, a: int, b: int, why: str) -> None:
        joins.append((why, self.members(a), self.members(b)))
        original(self, a, b, why)

    person_ids.PersonIds._join = logged  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            args = [str(clip), "-o", str(Path(tmp) / clip.name), "--preset", "balanced", "--redact", "faces,heads"]
            code = veil_main([*args, "--plan", str(plan), "--overwrite", "-q"])
    finally:
        person_ids.PersonIds._join = original  # type: ignore[method-assign]
    if code != 0:
        raise SystemExit(f"veil failed on {clip} (exit {code})")
    return joins


def walker_votes(clip: cb.Clip, plan: dict[str, Any]) -> dict[int, Counter[str]]:
    """Per track id: how many of its detected boxes lie on each walker's head."""
    return {track["id"]: Counter(cb.track_walkers(clip, track)) for track in plan["tracks"]}


def judge(joins: list[Join], votes: dict[int, Counter[str]], show: str = "") -> tuple[Counter[str], Counter[str]]:
    """Joins per (kind, verdict), and per kind the boxes the wrong joins moved."""
    verdicts: Counter[str] = Counter()
    moved: Counter[str] = Counter()
    for why, a, b in joins:
        left = sum((votes.get(t, Counter()) for t in a), Counter())
        right = sum((votes.get(t, Counter()) for t in b), Counter())
        if not left or not right:
            verdicts[f"{why} unknown"] += 1
            continue
        same = left.most_common(1)[0][0] == right.most_common(1)[0][0]
        verdicts[f"{why} {'right' if same else 'wrong'}"] += 1
        if not same:
            moved[why] += min(left.total(), right.total())
            if show:
                print(f"  {show} wrong {why}: {a} {dict(left)} + {b} {dict(right)}")
    return verdicts, moved


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=vb.DEFAULT_DATA)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--show", action="store_true", help="print each wrong join")
    args = p.parse_args(argv)
    if not (args.data / "faces.json").is_file():
        print(f"link audit: {args.data}/faces.json not found; skipped")
        return 0
    people = cb.load_people(args.data)
    verdicts: Counter[str] = Counter()
    moved: Counter[str] = Counter()
    scored: list[tuple[cb.Clip, Path]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for k in range(args.clips):
                path = cb.WORK / f"seed{seed}" / "clips" / f"cctv{k}.mp4"
                recorded = DETECTIONS / f"seed{seed}_clips_cctv{k}.pkl"
                if not recorded.is_file():
                    raise SystemExit(f"no recorded detections {recorded}: run cctv_bench.py --detections record first")
                clip = cb.make_clip(path, seed * 1000 + k, people, cb.load_background(args.data, seed + k))
                plan = Path(tmp) / f"seed{seed}_cctv{k}{cb.PLAN_SUFFIX}"
                joins = replay_with_joins(path, plan)
                votes = walker_votes(clip, json.loads(plan.read_text()))
                v, m = judge(joins, votes, f"seed {seed} clip {k}" if args.show else "")
                verdicts.update(v)
                moved.update(m)
                scored.append((clip, plan))
        summary = cb.persons_per_walker(scored)
    print(
        f"{summary['persons_per_walker']:.2f} persons and {summary['tracks_per_walker']:.2f} tracks per walker, "
        f"{summary['wrongly_linked_pct']:.1f} % of the boxes on walkers wrongly linked"
    )
    print(f"{'link':13s} {'right':>6s} {'wrong':>6s} {'unknown':>8s}  boxes moved by the wrong ones")
    for why in sorted({key.split()[0] for key in verdicts}):
        print(
            f"{why:13s} {verdicts[f'{why} right']:6d} {verdicts[f'{why} wrong']:6d} "
            f"{verdicts[f'{why} unknown']:8d}  {moved[why]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
