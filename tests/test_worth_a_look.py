"""Worth a look names a person with no mask on the head: a second opinion (the person detector,
which did not drive the redaction) looks at the output of a run that masks people for people
whose head no mask covers, and the plan's worth-a-look list names the frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import encode_frames, run_cli
from test_people import still_person_frame

from veil.analysis.classes import finds_people


def panning_clip(path: Path, frames: int = 32) -> Path:
    """A person standing in a textured scene that the camera pans across (2 px a frame): the
    default `heads` runs on fixed cameras only, so nothing masks the head."""
    image = still_person_frame()
    return encode_frames(path, (np.roll(image, -2 * i, axis=1) for i in range(frames)), fps=10)


def test_only_classes_that_mask_people_look_for_heads() -> None:
    assert finds_people(("faces", "heads")) and finds_people(("people",)) and finds_people(("persons",))
    assert not finds_people(("faces", "plates", "text"))


@pytest.mark.parametrize(("classes", "flagged"), [("heads", True), ("people", False), ("plates", False)])
def test_a_person_the_head_cue_leaves_bare_is_worth_a_look(tmp_path: Path, classes: str, flagged: bool) -> None:
    src = panning_clip(tmp_path / "pan.mp4")
    plan = tmp_path / "pan.plan.json"
    run_cli("scan", src, "-o", plan, "--redact", classes, check=True)
    items = json.loads(plan.read_text())["review"].get("flags") or []
    nohead = [it for it in items if it["kind"] == "nohead"]
    # heads: a moving camera runs neither of its cues, so the person's head is bare and the
    # second opinion names it; people: the network masks the head on any camera, nothing to
    # name; plates: the user did not ask for people, so no one looks for them.
    assert bool(nohead) == flagged, items
    if flagged:
        assert nohead[0]["frame"] % 30 == 0 and "no mask on the head" in nohead[0]["reasons"][0]


def test_a_person_standing_still_on_a_fixed_camera_gets_a_head_mask_by_default(tmp_path: Path) -> None:
    """Background subtraction never sees someone standing still; the default `heads` runs the
    person network while the camera holds still, so their head is masked and nothing is left
    for the second opinion to name."""
    image = still_person_frame()
    src = encode_frames(tmp_path / "still.mp4", (image for _ in range(32)), fps=10)
    plan = tmp_path / "still.plan.json"
    run_cli("scan", src, "-o", plan, check=True)
    data = json.loads(plan.read_text())
    heads = [t for t in data["tracks"] if t["label"] == "head"]
    assert heads, "the standing person's head is masked"
    assert not [it for it in data["review"].get("flags") or [] if it["kind"] == "nohead"]
