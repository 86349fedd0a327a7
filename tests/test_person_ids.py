"""One person, one `person` number: a walker who is crossed by another and then stops out of
sight of the detectors for longer than the look-ahead keeps one number for all their head and
face tracks, and the two walkers keep different ones; the plan field is checked where plans
are read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from veil.analysis.person_ids import PersonIds
from veil.analysis.track import LookaheadTracker
from veil.plan import PlanBuilder, PlanError, plan_from_json
from veil.types import Detections, Frame

W, H = 320, 240
FRAMES = 110
# Walker A walks right and meets B (walking left) at frame 20, stops at frame 40 and is lost to
# every detector from frame 44 to 69 (26 frames: more than the 10-frame look-ahead, so the head
# track ends and a new one starts), then walks on.
STOP, LOST = (40, 75), range(44, 70)


def scene() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.kron(rng.integers(0, 256, size=(24, 32, 3)).astype(np.uint8), np.ones((10, 10, 1), np.uint8))


def head_a(i: int) -> np.ndarray:
    walked = min(i, STOP[0]) + max(0, i - STOP[1])
    x = 40.0 + 4.0 * walked
    return np.array([x, 100.0, x + 20.0, 120.0], np.float32)


def head_b(i: int) -> np.ndarray:
    x = 240.0 - 4.0 * i
    return np.array([x, 102.0, x + 20.0, 122.0], np.float32)


def face_in(head: np.ndarray) -> np.ndarray:
    return head + np.array([4.0, 5.0, -4.0, -2.0], np.float32)


def detections(i: int) -> Detections:
    boxes, scores, labels = [], [], []
    if i not in LOST:
        boxes.append(head_a(i)), scores.append(0.8), labels.append("head")
        if i % 7 in (0, 1):  # the face detector finds A's face now and then
            boxes.append(face_in(head_a(i))), scores.append(0.6), labels.append("face")
    if -20 < head_b(i)[0] < W:
        boxes.append(head_b(i)), scores.append(0.8), labels.append("head")
        if i % 9 == 4:
            boxes.append(face_in(head_b(i))), scores.append(0.3), labels.append("face")
    if not boxes:
        return Detections.empty()
    return Detections(np.stack(boxes), np.asarray(scores), np.asarray(labels, dtype=object))


def plan_tracks(tmp_path: Path) -> list[dict]:
    tracker = LookaheadTracker(window=10)
    builder = PlanBuilder(tmp_path)
    builder.follow(tracker.persons)
    img = scene()
    try:
        for i in range(FRAMES):
            for frame, final in tracker.push(Frame(img.copy(), i), detections(i)):
                builder.add(frame.index, final)
        for frame, final in tracker.flush():
            builder.add(frame.index, final)
        builder.finish()
        return [json.loads(line) for line in builder.track_lines()]
    finally:
        builder.close()


def walker(track: dict) -> str:
    """Which walker a plan track follows: the one nearest its detected boxes."""
    votes = {"A": 0, "B": 0}
    for b in track["boxes"]:
        if b.get("detected"):
            c = np.asarray(b["box"]).reshape(2, 2).mean(axis=0)
            da = np.linalg.norm(c - head_a(b["frame"]).reshape(2, 2).mean(axis=0))
            db = np.linalg.norm(c - head_b(b["frame"]).reshape(2, 2).mean(axis=0))
            votes["A" if da < db else "B"] += 1
    return max(votes, key=votes.__getitem__)


def test_a_walker_crossed_and_stopped_out_of_sight_keeps_one_person(tmp_path: Path) -> None:
    tracks = plan_tracks(tmp_path)
    persons: dict[str, set[int]] = {"A": set(), "B": set()}
    for t in tracks:
        assert isinstance(t.get("person"), int), f"track {t['id']} ({t['label']}) has no person"
        persons[walker(t)].add(t["person"])
    a_heads = [t for t in tracks if t["label"] == "head" and walker(t) == "A"]
    # The stop is longer than the look-ahead: A's head is two tracks (else nothing is tested).
    assert len(a_heads) >= 2
    assert len(persons["A"]) == 1, f"walker A is persons {persons['A']}"
    assert len(persons["B"]) == 1, f"walker B is persons {persons['B']}"
    assert persons["A"] != persons["B"]
    # Persons are numbered from 0 in order of appearance.
    assert sorted(persons["A"] | persons["B"]) == [0, 1]


def detect(ids: PersonIds, found: dict[int, tuple[str, list[float]]]) -> None:
    """One detection pass: track id -> (label, box) of what it found."""
    tids = list(found)
    ids.contain(tids, np.asarray([found[t][0] for t in tids], dtype=object), np.asarray([found[t][1] for t in tids]))


def test_two_heads_seen_at_once_are_never_one_person() -> None:
    ids = PersonIds()
    ids.track(0, "head", 0, 10)
    ids.track(1, "head", 5, 20)
    ids.track(2, "face", 6, 6)
    head_0, head_1 = [100.0, 100.0, 130.0, 130.0], [200.0, 100.0, 230.0, 130.0]
    for frame in range(21):
        found: dict[int, tuple[str, list[float]]] = {}
        if frame <= 10:
            found[0] = ("head", head_0)
        if frame >= 5:
            found[1] = ("head", head_1)
        detect(ids, found)
    assert ids.union(2, 0, "containment")
    assert not ids.union(1, 2, "containment"), "would put heads 0 and 1 (both seen at 5-10) in one person"
    assert ids.person(1) != ids.person(0)
    ids.track(3, "head", 11, 30)
    assert ids.continues(3, 0)
    assert not ids.continues(4, 0), "an unknown track"
    ids.track(4, "head", 31, 40)
    assert not ids.continues(4, 0), "track 0 is already continued"


def test_tracks_never_found_at_once_may_be_one_person() -> None:
    """Spans that overlap are no evidence of two people when no pass found both: a head found in
    alternate frames by two tracks (each pass's box a little off the other's) can be one
    person, and a face lying in it joins it; two heads found side by side by two passes cannot.
    One pass is no evidence either: a stray box beside a head turns up once now and then."""
    ids = PersonIds()
    ids.track(0, "head", 0, 10)
    ids.track(1, "head", 1, 11)
    ids.track(2, "face", 4, 4)
    for frame in range(12):
        tid = frame % 2
        detect(ids, {tid: ("head", [100.0 + 8 * tid, 100.0, 130.0 + 8 * tid, 130.0])})
    assert ids.union(2, 0, "containment")
    assert ids.union(1, 2, "continuation"), "heads 0 and 1 were never found at once"
    ids.track(3, "head", 12, 12)
    ids.track(0, "head", 0, 12)
    detect(ids, {0: ("head", [100.0, 100.0, 130.0, 130.0]), 3: ("head", [200.0, 100.0, 230.0, 130.0])})
    assert ids.compatible(3, 0), "heads 0 and 3 were found side by side by one pass only"
    ids.track(3, "head", 12, 13)
    ids.track(0, "head", 0, 13)
    detect(ids, {0: ("head", [100.0, 100.0, 130.0, 130.0]), 3: ("head", [201.0, 100.0, 231.0, 130.0])})
    assert not ids.union(3, 0, "continuation"), "heads 0 and 3 were found side by side by two passes"


def test_a_box_on_a_head_found_once_with_it_is_a_double() -> None:
    """A head box from one pass of the network, lying on a head track's box in the one pass that
    found both (and found alone in the next, where the head track was missed), is that head's:
    one person once the clip is done."""
    ids = PersonIds()
    ids.track(0, "head", 0, 9)
    ids.track(1, "head", 4, 5)
    for frame in range(10):
        found = {0: ("head", [100.0, 100.0, 130.0, 130.0])} if frame != 5 else {}
        if frame in (4, 5):
            found[1] = ("head", [104.0, 96.0, 138.0, 132.0])
        detect(ids, found)
    ids.numbering([0, 1])
    assert ids.person(1) == ids.person(0)


def test_a_track_drifting_between_two_heads_is_no_double() -> None:
    """A head track that lies on A's head in most of the passes that found both, and on the
    neighbour's beside it in the rest (apart from A's box), is not a second box on A's head: it
    joins neither by the double rule, so a subject-access render of A does not show the
    neighbour. A second box that stays on A's head, jittering, is a double."""
    head_a, neighbour = [100.0, 100.0, 130.0, 130.0], [140.0, 100.0, 170.0, 130.0]
    # (passes, the passes where track 1's box is the neighbour's, one person?): one stray box
    # among six passes is jitter.
    for passes, apart, double in ((20, range(0, 20, 3), False), (20, (), True), (6, (3,), True)):
        ids = PersonIds()
        ids.track(0, "head", 0, passes - 1)
        ids.track(1, "head", 0, passes - 1)
        for frame in range(passes):
            on_a = [104.0 + frame % 3, 98.0, 134.0 + frame % 3, 128.0]
            detect(ids, {0: ("head", head_a), 1: ("head", neighbour if frame in apart else on_a)})
        ids.numbering([0, 1])
        assert (ids.person(1) == ids.person(0)) is double, apart


def test_a_face_beside_a_found_head_does_not_continue_its_face() -> None:
    """A walker's head is found in every frame; their face is found at frames 0-2 (standing
    still in the head box, so its own motion says it stays put), then lost. At frame 8 a face
    box appears where that face was last seen, on its path, but the head has walked on and the
    box lies beside it: it is someone or something else and starts a person of its own. The
    same box inside the head continues the face."""
    img = scene()

    def head(i: int) -> np.ndarray:
        return np.array([50.0 + 4 * i, 100.0, 90.0 + 4 * i, 140.0], np.float32)

    for inside in (False, True):
        tracker = LookaheadTracker(window=4)
        for i in range(30):
            boxes, labels = [head(i)], ["head"]
            if i <= 2:
                boxes.append(np.array([62.0, 108.0, 78.0, 126.0], np.float32)), labels.append("face")
            elif 8 <= i <= 14:
                x = head(i)[0] + 12.0 if inside else 62.0
                boxes.append(np.array([x, 108.0, x + 16.0, 126.0], np.float32)), labels.append("face")
            found = Detections(np.stack(boxes), np.full(len(boxes), 0.8), np.asarray(labels, dtype=object))
            tracker.push(Frame(img.copy(), i), found)
        tracker.flush()
        ids = tracker.persons
        faces = sorted({t for t in ids._span if ids._span[t].label == "face"})
        heads = [t for t in ids._span if ids._span[t].label == "head"]
        assert len(faces) == 2 and len(heads) == 1, (faces, heads)
        assert (ids.person(faces[1]) == ids.person(heads[0])) is inside, inside


def face_in_head_frame(faces: list[list[float]]) -> tuple[list[int], np.ndarray, np.ndarray]:
    head = [100.0, 100.0, 140.0, 128.0]
    labels = np.asarray(["head"] + ["face"] * len(faces), dtype=object)
    return list(range(1 + len(faces))), labels, np.asarray([head, *faces])


def test_a_head_box_over_two_faces_links_neither() -> None:
    one = [104.0, 106.0, 120.0, 124.0]
    beside = [122.0, 104.0, 138.0, 122.0]  # a second face, side by side with the first
    on_it = [108.0, 104.0, 124.0, 122.0]  # a second box on the same face (overlapping it)
    for faces, linked in (([one], True), ([one, beside], False), ([one, on_it], True)):
        ids = PersonIds()
        tids, labels, boxes = face_in_head_frame(faces)
        for t, label in zip(tids, labels, strict=True):
            ids.track(t, label, 0, 0)
        ids.contain(tids, labels, boxes)
        for t in tids[1:]:
            ids.settle(t)  # the face tracks ended: seen once, inside one head box
        assert (ids.person(1) == ids.person(0)) is linked, faces
        if len(faces) == 2:
            # Two boxes on one face are one person; two faces side by side never.
            assert (ids.person(2) == ids.person(1)) is linked, faces


def minimal_plan(**track: object) -> dict:
    return {
        "veil_plan": 1,
        "input": {"sha256": "0" * 64, "kind": "video", "frames": 10, "width": 64, "height": 48},
        "settings": {},
        "tracks": [{"id": 0, "label": "head", "boxes": [{"frame": 0, "box": [1, 1, 9, 9]}], **track}],
    }


@pytest.mark.parametrize("value", [-1, True, 1.5, "3", None])
def test_a_bad_person_number_is_refused_in_one_line(value: object) -> None:
    if value is None:
        plan = plan_from_json(minimal_plan())
        assert plan.tracks[0].person is None
        return
    with pytest.raises(PlanError, match="person") as info:
        plan_from_json(minimal_plan(person=value))
    assert "\n" not in str(info.value)


def test_person_round_trips_through_a_plan() -> None:
    plan = plan_from_json(minimal_plan(person=7))
    assert plan.tracks[0].person == 7
    assert plan.tracks[0].to_json()["person"] == 7
    assert "person" not in plan.tracks[0].extra


def test_segments_keep_person_numbers_distinct(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from veil.plan import Plan, PlanBox, Track, write_plan
    from veil.runners.segments import merged_plan

    source = tmp_path / "in.mp4"
    source.write_bytes(b"x")
    results = []
    for k in range(2):
        box = [PlanBox(0, np.array([1.0, 1.0, 9.0, 9.0]), True, 0.9)]
        tracks = [Track(0, "head", box, person=0), Track(1, "face", box, person=0), Track(2, "head", box, person=1)]
        info = {"sha256": "0" * 64, "kind": "video", "frames": 5, "width": 64, "height": 48}
        write_plan(Plan(info, {}, tracks), tmp_path / f"{k}.json")
        results.append({"segment": {"index": k, "start": 5 * k}, "plan": str(tmp_path / f"{k}.json")})
    merged = merged_plan(source, "0" * 64, SimpleNamespace(frames=10, duration_s=1.0), results)
    assert [t.person for t in merged.tracks] == [0, 0, 1, 2, 2, 3]
    assert [t.id for t in merged.tracks] == list(range(6))


def test_a_second_box_on_a_face_does_not_take_a_neighbours_track() -> None:
    """ByteTrack's order matches strong boxes first; a strong duplicate of B's face must not
    take A's track (A's own box is weak) just because it comes first."""
    from veil.analysis.tracklets import Linker

    def dets(boxes: list[tuple[float, float]]) -> Detections:
        xyxy = np.asarray([[x, 100.0, x + 30.0, 130.0] for x, _ in boxes])
        return Detections(xyxy, np.asarray([s for _, s in boxes]), np.full(len(boxes), "face", dtype=object))

    linker = Linker()
    tracks = linker.link([], 0, dets([(110.0, 0.2), (160.0, 0.9)]), 0, 10)
    a, b = tracks
    for i in range(1, 6):
        linker.link(tracks, i, dets([(160.0, 0.9)]), 0, 10)  # A unseen for a while
    linker.link(tracks, 6, dets([(160.0, 0.9), (152.0, 0.66), (110.0, 0.2)]), 0, 10)
    assert linker.assigned[0] is b and linker.assigned[2] is a


def face_dets(boxes: list[tuple[float, float, float, str]]) -> Detections:
    """(x, size, score, label) boxes on one row."""
    xyxy = np.asarray([[x, 100.0, x + size, 100.0 + size] for x, size, _, _ in boxes])
    return Detections(xyxy, np.asarray([s for _, _, s, _ in boxes]), np.asarray([lb for *_, lb in boxes], dtype=object))


def test_a_weak_box_inside_a_stronger_one_starts_no_track() -> None:
    """A weak face guess lying in a head box (or in a stronger face box) is masked by that box:
    it starts no track of its own (no person of its own in the review's list); the same guess
    beside the head, or scoring as high as the head, does."""
    from veil.analysis.tracklets import Linker

    inside, beside, strong = (108.0, 12.0, 0.2, "face"), (150.0, 12.0, 0.2, "face"), (108.0, 12.0, 0.9, "face")
    for guess, new_tracks in ((inside, 1), (beside, 2), (strong, 2)):
        linker = Linker()
        tracks = linker.link([], 0, face_dets([(100.0, 30.0, 0.8, "head"), guess]), 0, 10)
        assert len(tracks) == new_tracks, guess
        assert len(linker.assigned) == 2 and linker.assigned[0] is tracks[0]


def test_a_track_seen_once_follows_a_walker_at_ten_frames_a_second() -> None:
    """At 10 fps a walker moves about 0.6 face heights a frame: a face seen once, then 1.1 of
    its size further on (beyond the gate of a track whose speed is known), is the same face when
    nothing else is near (at 30 fps that is too far for a walk); with a second face as far the
    other way, either could be it, and the box starts a track of its own."""
    from veil.analysis.tracklets import Linker

    for fps, others, linked in ((10.0, [], True), (30.0, [], False), (10.0, [(78.0, 20.0, 0.8, "face")], False)):
        linker = Linker(fps=fps)
        (first,) = linker.link([], 0, face_dets([(100.0, 20.0, 0.8, "face")]), 0, 10)
        linker.link([first], 1, face_dets([(122.0, 20.0, 0.8, "face"), *others]), 0, 10)
        assert (linker.assigned[0] is first) is linked, (fps, others)


def test_a_track_seen_once_takes_the_next_tile_pass_box_of_its_size() -> None:
    """A distant walker found only by the person network's tiles (every 4th frame at 10 fps) is
    seen once, then 4 frames later two box sizes on: that box is theirs when it is about the
    same size and nothing else is near; a box half as large again, or one 0.6 s later, starts a
    track of its own (a box seen once and then missed for longer could have gone anywhere)."""
    from veil.analysis.tracklets import Linker

    for frame, size, linked in ((4, 20.0, True), (4, 30.0, False), (6, 20.0, False)):
        linker = Linker(fps=10.0)
        (first,) = linker.link([], 0, face_dets([(100.0, 20.0, 0.8, "head")]), 0, 10)
        linker.link([first], frame, face_dets([(140.0, size, 0.8, "head")]), 0, 10)
        assert (linker.assigned[0] is first) is linked, (frame, size)


def test_stray_and_double_boxes_join_the_person_they_lie_on() -> None:
    """A face guess seen once, half of it on a head track's box (too little to be a face in that
    head), joins that person; two head tracks whose boxes lay one on the other frame after frame
    are one person. A guess lying half on A's head but also touching B's stays a person of its
    own, and two heads side by side are two people."""
    ids = PersonIds()
    head_a, head_b = [100.0, 100.0, 130.0, 130.0], [136.0, 100.0, 166.0, 130.0]
    double_a = [102.0, 98.0, 134.0, 130.0]  # a second head box on A, from another pass
    on_a = [110.0, 122.0, 122.0, 138.0]  # half on A's head, below it
    between = [116.0, 110.0, 144.0, 122.0]  # half on A's head, a third on B's
    for frame in range(6):
        tids, labels, boxes = [0, 1, 2], ["head", "head", "head"], [head_a, head_b, double_a]
        if frame == 2:
            tids, labels, boxes = tids + [3, 4], labels + ["face", "face"], boxes + [on_a, between]
        for t, label in zip(tids, labels, strict=True):
            ids.track(t, label, 0 if t < 3 else 2, 5 if t < 3 else 2)
        ids.contain(tids, np.asarray(labels, dtype=object), np.asarray(boxes))
    for t in (3, 4):
        ids.settle(t)
    ids.numbering([0, 1, 2, 3, 4])
    assert ids.person(2) == ids.person(0), "two head boxes on A all along are one person"
    assert ids.person(3) == ids.person(0), "a face guess lying on A's head joins A"
    assert ids.person(1) != ids.person(0), "two heads side by side are two people"
    assert ids.person(4) not in (ids.person(0), ids.person(1)), "a guess touching both joins neither"


def test_continuation_reads_kept_rows_as_fresh_ones() -> None:
    """The tracker keeps each track's end row until it is found again and reads only tracks last
    found before a new track started (`LookaheadTracker._continue`). On a crowd of walkers that
    the detector loses now and then, every continuation candidate and cost is the one a fresh
    reading of every lost and live track gives."""
    import veil.analysis.track as track_module
    from veil.analysis.person_ids import Lost, continuation_costs

    rng = np.random.default_rng(11)
    tracker = LookaheadTracker.for_video(10.0)
    compared = calls = 0

    def checked(lost: Lost, later: object, reach: int) -> np.ndarray:
        nonlocal compared, calls
        calls += 1
        rebuilt = Lost(list(lost.tracks))  # the same tracks' rows, read now
        for name in ("label", "shot", "last", "seen_twice", "centre", "size", "velocity"):
            np.testing.assert_array_equal(getattr(lost, name), getattr(rebuilt, name), err_msg=name)
        fresh = Lost([t for t in (*tracker._lost, *tracker.tracks) if t.frames])
        got = continuation_costs(lost, later, reach)  # type: ignore[arg-type]
        want = continuation_costs(fresh, later, reach)  # type: ignore[arg-type]
        kept = {(lost.tracks[k].id, float(got[k])) for k in np.flatnonzero(np.isfinite(got))}
        assert kept == {(fresh.tracks[k].id, float(want[k])) for k in np.flatnonzero(np.isfinite(want))}
        compared += len(kept)
        return got

    original = track_module.continuation_costs
    track_module.continuation_costs = checked  # type: ignore[assignment]
    try:
        start = rng.uniform([0, 40], [W - 30, H - 40], size=(8, 2))
        step = rng.uniform(-4, 4, size=(8, 2))
        # Each walker is missed now and then, and lost for 12-20 frames (past the 10-frame
        # look-ahead, so a new track starts) twice.
        gaps = [(int(g), int(rng.integers(12, 21))) for _ in range(8) for g in rng.integers(0, 180, 2)]
        gone = [{g + d for g, n in gaps[2 * k : 2 * k + 2] for d in range(n)} for k in range(8)]
        image = scene()
        for i in range(200):
            boxes = []
            for k in range(8):
                if i in gone[k] or rng.random() < 0.15:
                    continue
                x, y = (start[k] + step[k] * i) % [W - 24, H - 24]
                boxes.append([x, y, x + 20.0, y + 20.0])
            dets = Detections.from_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.8), "head")
            tracker.push(Frame(image, i), dets)
        tracker.flush()
    finally:
        track_module.continuation_costs = original
    assert calls >= 25 and compared >= 10, "the crowd gave continuations to compare"


def test_a_continuation_gives_way_to_a_face_seen_inside_the_head() -> None:
    """A face track F1 that the tracker takes to continue another person's lost face F0 (a guess
    across a gap) and that is then seen inside head H, whose person already holds a face found
    apart from F0 pass after pass, is H's: the links from boxes seen together are joined first,
    and the continuation, which would now put two faces seen at once into one person, is
    refused."""
    ids = PersonIds()
    head, face_0, face_1, face_2 = 0, 1, 2, 3
    ids.track(head, "head", 0, 20)
    ids.track(face_2, "face", 0, 4)
    ids.track(face_0, "face", 0, 4)
    for _ in range(5):  # H with its face F2 in it; another person's face F0 beside it
        detect(
            ids,
            {
                head: ("head", [100.0, 100.0, 130.0, 130.0]),
                face_2: ("face", [106.0, 108.0, 124.0, 126.0]),
                face_0: ("face", [300.0, 108.0, 318.0, 126.0]),
            },
        )
    ids.settle(face_2)
    ids.settle(face_0)
    assert ids.person(face_2) == ids.person(head) != ids.person(face_0)
    ids.track(face_1, "face", 6, 20)
    assert ids.continues(face_1, face_0), "nothing yet says F1 and F0 are two people"
    for _ in range(6, 21):
        detect(ids, {head: ("head", [100.0, 100.0, 130.0, 130.0]), face_1: ("face", [106.0, 108.0, 124.0, 126.0])})
    ids.settle(face_1)
    numbers = ids.numbering([head, face_0, face_1, face_2])
    assert ids.person(face_1) == ids.person(head), "F1, seen inside H all along, is not H's person"
    assert ids.person(face_0) != ids.person(head), "F0 (seen apart from H's face) joined H's person"
    assert len(set(numbers.values())) == 2
