"""Bad input gets one clear line and a non-zero exit; nothing partial is ever left behind."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import pytest
from conftest import SAMPLE_IMAGE, make_video, run_cli, sigint_as_ctrl_c
from PIL import Image

import veil.media.sink
import veil.runners.pipeline
from veil.analysis.detect import FrameDetector
from veil.cli import main


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if "veil-tmp" in p.name)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("veil: error:")]
    assert errors, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert any(needle in line for line in errors), proc.stderr


def test_missing_path(tmp_path: Path) -> None:
    proc = run_cli(tmp_path / "nope.jpg", "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "no such file")


def test_not_an_image_or_video(tmp_path: Path) -> None:
    fake = tmp_path / "notes.jpg"
    fake.write_text("this is text, not a photo\n")
    other = tmp_path / "notes.xyz"
    other.write_text("hello\n")
    proc = run_cli(fake, other, "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "notes.jpg: not a readable image", "notes.xyz: not an image or video")
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "notes_veiled.jpg").exists()


def test_truncated_image(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    Image.open(SAMPLE_IMAGE).convert("RGB").save(good, quality=95)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    proc = run_cli(bad, "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "bad.jpg: corrupt or truncated image")
    assert not (tmp_path / "bad_veiled.jpg").exists()


def test_truncated_and_corrupt_video(tmp_path: Path) -> None:
    good = make_video(tmp_path / "good.mp4", frames=10)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(os.urandom(50_000))
    proc = run_cli(cut, noise, "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "cut.mp4:", "noise.mp4:")
    assert not (tmp_path / "cut_veiled.mp4").exists()
    assert not (tmp_path / "noise_veiled.mp4").exists()
    assert leftovers(tmp_path) == []


def test_video_with_zero_frames(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height = 64, 64
        s.pix_fmt = "yuv420p"
    audio_only = tmp_path / "audio.mp4"
    with av.open(str(audio_only), "w") as c:
        c.add_stream("aac", rate=44100)
    proc = run_cli(empty, audio_only, "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "empty.mp4:", "audio.mp4:")
    assert leftovers(tmp_path) == []


def test_refuses_to_overwrite_the_input(tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    shutil.copy(SAMPLE_IMAGE, src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    proc = run_cli(src, "-o", src, "--overwrite", "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "overwrite the input")
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    proc = run_cli(SAMPLE_IMAGE, "-o", out, "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "already exists")
    assert out.read_bytes() == b"keep me"
    assert main([str(SAMPLE_IMAGE), "-o", str(out), "--overwrite", "-q"]) == 0
    assert Image.open(out).size == (512, 512)


def test_batch_continues_after_a_bad_file(tmp_path: Path) -> None:
    tree = tmp_path / "in"
    (tree / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE_IMAGE, tree / "a.png")
    shutil.copy(SAMPLE_IMAGE, tree / "sub" / "c.png")
    (tree / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    make_video(tree / "sub" / "clip.mp4", frames=4)
    out = tmp_path / "out"
    proc = run_cli(tree, "-o", out, "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "b.jpg")
    assert (out / "a.png").is_file() and (out / "sub" / "c.png").is_file() and (out / "sub" / "clip.mp4").is_file()
    assert not (out / "b.jpg").exists()


def run_as_nobody(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Root can write anywhere; check permission errors as an ordinary user where possible."""
    if os.geteuid() != 0:
        return run_cli(*args)
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root without setpriv")
    cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "veil"]
    env = {**os.environ, "PYTHONPATH": str(Path(veil.__file__).parents[1])}
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture
def open_tmp() -> object:
    """A temporary directory an ordinary user can traverse (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="veil-perm-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    for p in path.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(path)


def test_unwritable_output_directory_and_unreadable_input(open_tmp: Path) -> None:
    tmp_path = open_tmp
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    secret = tmp_path / "secret.png"
    shutil.copy(SAMPLE_IMAGE, secret)
    secret.chmod(0o000)
    readable = tmp_path / "open.png"
    shutil.copy(SAMPLE_IMAGE, readable)
    readable.chmod(0o644)
    # The ordinary user must reach both the test files and veil's own code (an editable install).
    package = Path(veil.runners.pipeline.__file__).resolve().parent
    for parent in [*tmp_path.parents, *package.parents]:
        if parent == Path("/"):
            continue
        if parent.stat().st_mode & 0o001 == 0:
            pytest.skip(f"{parent} not traversable by an ordinary user")
    proc = run_as_nobody(readable, "-o", locked / "out.png", "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "not writable")
    proc = run_as_nobody(secret, "-o", locked / "x.png", "-q")
    assert proc.returncode == 1
    assert_one_line_error(proc, "not readable")


def test_no_space_left_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(path: Path, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(veil.runners.pipeline, "write_image", full_disk)
    out = tmp_path / "out.png"
    assert main([str(SAMPLE_IMAGE), "-o", str(out), "-q"]) == 1
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_detector_failure_mid_video_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail closed: if frame 7 cannot be analysed, no frame of the file is published."""
    src = make_video(tmp_path / "in.mp4", frames=12)
    calls = {"n": 0}
    real = FrameDetector.finish

    def flaky(self: FrameDetector, started: object) -> object:
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("inference failed")
        return real(self, started)  # type: ignore[arg-type]

    monkeypatch.setattr(FrameDetector, "finish", flaky)
    out = tmp_path / "out.mp4"
    assert main([str(src), "-o", str(out), "-q"]) == 1
    assert not out.exists()
    assert leftovers(tmp_path) == []
    assert veil.media.sink is not None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_output(tmp_path: Path, sig: signal.Signals) -> None:
    src = make_video(tmp_path / "long.mp4", frames=400, size=(640, 480), fps=25)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "veil", str(src), "-o", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_ctrl_c,
    )
    deadline = time.monotonic() + 120
    while not leftovers(tmp_path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert leftovers(tmp_path), "veil never started writing"
    time.sleep(0.5)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert not out.exists()
    assert leftovers(tmp_path) == []


NO_NETWORK = """
import socket
def _refuse(*args, **kwargs):
    raise RuntimeError("network access attempted")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.socket.sendto = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
"""


def test_runs_with_network_blocked(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    clip = make_video(tmp_path / "clip.mp4", frames=5, audio=True)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    check = subprocess.run(
        [sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9))"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert "network access attempted" in check.stderr  # the block is in force
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "veil",
            str(SAMPLE_IMAGE),
            str(clip),
            "-o",
            str(tmp_path / "out"),
            "--report",
            str(tmp_path / "r.json"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "network access attempted" not in proc.stderr
    assert (tmp_path / "out" / "astronaut.png").is_file() and (tmp_path / "out" / "clip.mp4").is_file()
