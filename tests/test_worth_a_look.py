"""Worth a look names a person with no mask on the head: a second opinion (the person detector,
which did not drive the redaction) looks at the output of a fixed-camera run for people whose
head no mask covers, and the plan's worth-a-look list names the frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import encode_frames, run_cli
from test_people import still_person_frame

from veil.analysis.classes import finds_people


def still_clip(path: Path, frames: int = 32) -> Path:
    """A person standing still in a textured scene: the motion cue never sees them."""
    image = still_person_frame()
    return encode_frames(path, (image for _ in range(frames)), fps=10)


def test_only_classes_that_mask_people_look_for_heads() -> None:
    assert finds_people(("faces", "heads")) and finds_people(("people",)) and finds_people(("persons",))
    assert not finds_people(("faces", "plates", "text"))


@pytest.mark.parametrize(("classes", "flagged"), [("heads", True), ("people", False), ("plates", False)])
def test_a_still_person_the_head_cue_misses_is_worth_a_look(tmp_path: Path, classes: str, flagged: bool) -> None:
    src = still_clip(tmp_path / "still.mp4")
    plan = tmp_path / "still.plan.json"
    run_cli("scan", src, "-o", plan, "--redact", classes, check=True)
    items = json.loads(plan.read_text())["review"].get("flags") or []
    nohead = [it for it in items if it["kind"] == "nohead"]
    # heads: background subtraction sees no one standing still, so the person's head is bare
    # and the second opinion names it; people: the network masks the head, nothing to name;
    # plates: the user did not ask for people, so no one looks for them.
    assert bool(nohead) == flagged, items
    if flagged:
        assert nohead[0]["frame"] % 30 == 0 and "no mask on the head" in nohead[0]["reasons"][0]
