"""Make veil's bundled sample video from the public-domain astronaut photo (see SOURCES.md).

A virtual camera pans and zooms over a canvas holding the photo at two sizes, so the clip has
a large face and a small one (16-19 px high on screen) that move; a quiet two-tone audio track is
added so the demo shows that audio is kept. Deterministic: same bytes of pixels every run.

Usage: python samples/make_sample_video.py OUTPUT.mp4
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

FPS = 25
SECONDS = 3
SIZE = (640, 360)  # output width, height
AUDIO_RATE = 44100


def canvas() -> np.ndarray:
    photo = np.asarray(Image.open(Path(__file__).with_name("astronaut.png")).convert("RGB"))
    # Background: a soft colour gradient, so the scene is not flat.
    yy, xx = np.mgrid[0:720, 0:1280].astype(np.float32)
    board = np.dstack([40 + 60 * xx / 1280, 50 + 40 * yy / 720, 90 - 30 * xx / 1280]).astype(np.uint8)
    board[104:616, 80:592] = photo  # large copy: face about 120 px high
    small = cv2.resize(photo, (160, 160), interpolation=cv2.INTER_AREA)
    board[400:560, 900:1060] = small  # small copy: face about 30 px high, 16-19 px on screen
    return board


def main(out: str) -> None:
    board = canvas()
    frames = FPS * SECONDS
    with av.open(out, "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "20", "preset": "medium"}
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        for i in range(frames):
            t = i / (frames - 1)
            # Camera window: pans left to right while zooming out from 1.6x to 2x of SIZE.
            zoom = 1.6 + 0.4 * t
            w, h = int(SIZE[0] * zoom), int(SIZE[1] * zoom)
            x = int(t * (board.shape[1] - w))
            y = int(t * (board.shape[0] - h))
            view = cv2.resize(board[y : y + h, x : x + w], SIZE, interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(view, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            for packet in video.encode(frame):
                container.mux(packet)
        samples = np.arange(AUDIO_RATE * SECONDS) / AUDIO_RATE
        tone = 0.1 * np.sin(2 * np.pi * np.where(samples < SECONDS / 2, 440, 660) * samples)
        pcm = (tone * 32767).astype(np.int16)
        for start in range(0, len(pcm), 1024):
            chunk = pcm[start : start + 1024].reshape(1, -1)
            af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            af.sample_rate = AUDIO_RATE
            af.pts = start
            af.time_base = Fraction(1, AUDIO_RATE)
            for packet in audio.encode(af):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)


if __name__ == "__main__":
    main(sys.argv[1])
