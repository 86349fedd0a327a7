"""`veil live` when the source goes away for good: the output ends after --max-gap with a line
saying so, instead of masked filler written until someone stops it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_live import DELAY, FPS, decode, free_port, read_log, send

from veil.errors import VeilError
from veil.runners.live import max_gap


def test_max_gap_option() -> None:
    assert max_gap(0) is None  # no limit
    assert max_gap(5) == 5
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(VeilError):
            max_gap(bad)


def test_a_source_that_ends_ends_the_output(tmp_path: Path) -> None:
    port = free_port()
    out, log = tmp_path / "out.mp4", tmp_path / "live.jsonl"
    gap = 3.0
    proc = subprocess.Popen(
        [sys.executable, "-m", "veil", "live", f"udp://127.0.0.1:{port}", str(out), "--preset", "fast",
         "--delay", str(DELAY), "--log", str(log), "--max-gap", str(gap), "--duration", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and '"start"' in log.read_text()):
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "veil live did not start"
            time.sleep(0.1)
        time.sleep(0.5)
        sent: dict[int, float] = {}
        send(f"udp://127.0.0.1:{port}?pkt_size=1316", range(0, 2 * FPS), sent)
        ended = time.monotonic()
        _, stderr = proc.communicate(timeout=60)
        waited = time.monotonic() - ended
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    # It ended by itself, soon after the gap (a read timeout and a reconnect attempt on top).
    assert waited < gap + 10, waited
    assert "(--max-gap); output ended" in stderr
    final = [r for r in read_log(log) if r.get("event") == "exit"][-1]
    assert final["ended"] and not final["interrupted"]
    # The masked filler after the last frame is bounded by the gap.
    _, times = decode(out)
    assert times[-1] - times[0] <= 2.0 + gap + 1.0, times[-1] - times[0]
