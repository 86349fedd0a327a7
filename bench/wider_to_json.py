"""Convert WIDER FACE ground truth (`wider_face_val_bbx_gt.txt`) to the bench's `faces.json`.

    python bench/wider_to_json.py WIDER_val/images wider_face_split/wider_face_val_bbx_gt.txt \\
        -o WIDER_val/faces.json [--every 10]
    python bench/run.py --data WIDER_val --video ''

The text format is, per image: its path (relative to the images folder), the number of faces,
then one line per face `x y w h blur expression illumination invalid occlusion pose` (an image
with no face has a count of 0 followed by one all-zero line). Faces flagged `invalid` become
`ignore` boxes (neither counted for recall nor as over-redaction); every other face, however
small, is scored. Image paths in the output are relative to the output file's folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def parse_wider(lines: list[str]) -> Iterator[tuple[str, list[list[float]], list[list[float]]]]:
    """Yield `(relative image path, boxes, ignore boxes)` from the ground-truth text."""
    i = 0
    lines = [line.strip() for line in lines]
    while i < len(lines):
        name = lines[i]
        if not name:
            i += 1
            continue
        count = int(lines[i + 1])
        rows = lines[i + 2 : i + 2 + max(count, 1)]
        i += 2 + max(count, 1)
        boxes: list[list[float]] = []
        ignore: list[list[float]] = []
        for row in rows[:count]:
            values = row.split()
            x, y, w, h = (float(v) for v in values[:4])
            invalid = len(values) > 7 and values[7] == "1"
            if w <= 0 or h <= 0:
                continue
            (ignore if invalid else boxes).append([x, y, w, h])
        yield name, boxes, ignore


def convert(images: Path, gt: Path, out: Path, every: int = 1) -> list[dict[str, Any]]:
    entries = []
    for k, (name, boxes, ignore) in enumerate(parse_wider(gt.read_text().splitlines())):
        if k % every:
            continue
        path = images / name
        if not path.is_file():
            print(f"missing image, skipped: {path}", file=sys.stderr)
            continue
        entry: dict[str, Any] = {"image": Path(os.path.relpath(path, out.parent)).as_posix(), "boxes": boxes}
        if ignore:
            entry["ignore"] = ignore
        entries.append(entry)
    return entries


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", type=Path, help="WIDER_val/images (folders per event)")
    p.add_argument("gt", type=Path, help="wider_face_val_bbx_gt.txt")
    p.add_argument("-o", "--output", type=Path, required=True, help="faces.json to write")
    p.add_argument("--every", type=int, default=1, help="keep every n-th image (a quicker subset)")
    args = p.parse_args(argv)
    out = args.output.resolve()
    entries = convert(args.images.resolve(), args.gt, out, max(1, args.every))
    out.write_text(json.dumps(entries, indent=1) + "\n")
    faces = sum(len(e["boxes"]) for e in entries)
    print(f"wrote {out}: {len(entries)} images, {faces} faces")
    return 0


if __name__ == "__main__":
    sys.exit(main())
