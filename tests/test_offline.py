"""No network at run time, and nothing left behind that identifies the machine.

onnxruntime's official wheels send usage telemetry from Linux since 1.29: on its first session it
writes a device id and an event database under ~/.cache/Microsoft/DeveloperTools/.onnxruntime
and a session file in the temp folder, and about 9 s later its uploader looks up its collector
(DNS on port 53), unless ORT_DISABLE_TELEMETRY is set before it starts. veil sets it (and Ray's
usage stats off) when it is imported (veil/__init__.py). These tests run veil in a fresh process
with its own home and temp folders and look at what it wrote, and, with strace, at every socket
it connected."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_IMAGE


def private_env(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "RAY_USAGE_STATS_ENABLED")}
    env.update(HOME=str(home), TMPDIR=str(tmp), VEIL_CACHE_DIR=str(tmp_path / "veil-cache"))
    env.pop("XDG_CACHE_HOME", None)
    return env, home, tmp


def test_a_run_writes_no_telemetry_state(tmp_path: Path) -> None:
    """A whole CLI run (every detector of the default preset loaded and run) leaves nothing in
    the home folder and nothing in the temp folder: no device id, no event database to upload
    later, no session file."""
    env, home, tmp = private_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "veil", str(SAMPLE_IMAGE), "-o", str(tmp_path / "out.png"), "-q"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not [str(p.relative_to(home)) for p in home.rglob("*")]
    assert not [p.name for p in tmp.iterdir()]


SESSIONS_AND_WAIT = """
import time
import veil
from veil.analysis.detectors import onnx_session
from pathlib import Path
for model in sorted(Path(veil.__file__).parent.joinpath("models").glob("*.onnx"))[:2]:
    onnx_session(model)
from veil.speech import recognizer
if recognizer.available():  # the speech extra: Whisper on CTranslate2, Silero VAD on onnxruntime
    import numpy as np
    noise = (np.random.default_rng(0).normal(0, 3000, 16000 * 2)).astype(np.int16)
    recognizer.recognize_samples(noise)
time.sleep({wait})
"""


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace absent (make sysdeps installs it)")
def test_no_network_connection_after_onnxruntime_starts(tmp_path: Path) -> None:
    """veil's networks loaded (and the speech extra's recognizer, where installed), then the
    process waits longer than onnxruntime's uploader takes to start (about 9 s here, without
    the setting): strace sees no connection to any IPv4 or IPv6 address (a DNS look-up is one)."""
    env, _, _ = private_env(tmp_path)
    log = tmp_path / "strace.log"
    proc = subprocess.run(
        ["strace", "-f", "-e", "trace=connect", "-o", str(log), sys.executable, "-c",
         SESSIONS_AND_WAIT.format(wait=15)],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
    )  # fmt: skip
    if proc.returncode != 0 and "ptrace" in proc.stderr.lower():
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    inet = re.compile(r"connect\(\d+, \{sa_family=AF_INET6?,")
    connects = [line for line in log.read_text().splitlines() if inet.search(line)]
    assert not connects, connects[:5]


def test_ray_usage_stats_are_off_once_veil_is_imported() -> None:
    """A local Ray cluster that veil starts reads this from the environment it inherits."""
    pytest.importorskip("ray")
    # Ray moved this module from ray._private to ray._common in 2.5x.
    code = (
        "import veil\n"
        "try:\n"
        "    from ray._common.usage import usage_lib\n"
        "except ImportError:\n"
        "    from ray._private.usage import usage_lib\n"
        "print(usage_lib.usage_stats_enabled())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_USAGE_STATS_ENABLED"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
