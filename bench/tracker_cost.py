"""CPU seconds of veil's tracker alone (linking, boxes, person grouping) on a clip's recorded
detections: for speeding up the tracker without the networks' time and the pipeline's other
threads in the way.

    VEIL_DETECTIONS=record:bench/work/mallrec python bench/replay_veil.py CLIP -o OUT.mp4 -q
    python bench/tracker_cost.py CLIP bench/work/mallrec/<recording>.pkl --frames 400

The clip's first `--frames` frames are decoded first (the camera-motion estimate needs the
pictures), then the tracker of a default video run takes them with the recorded detections,
`--runs` times; the least CPU time is printed, with the number of boxes it gave, which a change
that moves no box leaves the same, with a digest of every emitted box, label and track id (the
same digest: the same boxes, bit for bit). Not part of `make bench`.
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import time
from pathlib import Path

import av

from veil.analysis.track import LookaheadTracker
from veil.types import Frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("recording", type=Path, help="a replay_veil.py recording of this clip")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    found = pickle.loads(args.recording.read_bytes())
    images = []
    with av.open(str(args.clip)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 30)
        for frame in container.decode(stream):
            if len(images) >= args.frames:
                break
            images.append(frame.to_ndarray(format="rgb24"))
    spent = []
    for _ in range(args.runs):
        tracker = LookaheadTracker.for_video(rate)
        emitted = []
        start = time.process_time()
        for index, image in enumerate(images):
            emitted += [d for _, d in tracker.push(Frame(image, index), found.get(index))]
        emitted += [d for _, d in tracker.flush()]
        spent.append(time.process_time() - start)
        boxes = sum(len(d) for d in emitted)
        digest = hashlib.sha256()
        for d in emitted:
            digest.update(d.xyxy.astype("<f4").tobytes())
            digest.update(repr((list(d.label), d.track_id.tolist(), d.filled.tolist())).encode())
    print(
        f"tracker: {min(spent):.2f} s CPU for {len(images)} frames ({1000 * min(spent) / len(images):.1f} ms a frame; "
        f"runs {', '.join(f'{s:.2f}' for s in spent)}), {boxes} boxes, digest {digest.hexdigest()[:16]}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
