"""The Ray engine against a real local Ray cluster started here (skipped when Ray is absent):
the same outputs as the sequential run, segments included, resumable through the manifest."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_IMAGE, decode_frames, make_video, probe, run_cli
from test_batch import manifest_lines, regop

ray = pytest.importorskip("ray")

from veil.config import Settings  # noqa: E402
from veil.progress import Reporter  # noqa: E402
from veil.runners.batch import Runner  # noqa: E402
from veil.runners.cache import Cache  # noqa: E402
from veil.runners.pipeline import plan_jobs  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()


def _run(inputs: Path, out: Path, settings: Settings, segment_s: float | None = None) -> list:
    jobs, failed = plan_jobs([str(inputs)], str(out), settings)
    assert not failed
    cache = Cache.at()  # the test's own work directory (conftest), where manifest_lines looks
    return Runner(settings, Reporter(quiet=True), 2, segment_s, "ray", None, cache.job_dir(out), cache).run(jobs)


def test_ray_matches_sequential(tmp_path: Path, cluster: dict) -> None:
    assert cluster.get("CPU") == 2 and not cluster.get("GPU")
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLE_IMAGE, src / "a.png")
    regop(make_video(tmp_path / "raw.mp4", frames=30, audio=True), src / "v.mp4", gop=10)
    run_cli(src, "-o", tmp_path / "j1", "-j1", "--preset", "fast", "--lookahead", "0.5", check=True)
    settings = Settings(preset="fast", lookahead_s=0.5)
    results = _run(src, tmp_path / "ray", settings, segment_s=1.0)
    assert all(r.ok for r in results), [r.error for r in results]
    # Images: byte-identical. Video: segmented on Ray, same frame count and timing as -j1, and
    # the unsegmented Ray run decodes to the very frames of -j1.
    assert (tmp_path / "j1" / "a.png").read_bytes() == (tmp_path / "ray" / "a.png").read_bytes()
    seg, ref = probe(tmp_path / "ray" / "v.mp4"), probe(tmp_path / "j1" / "v.mp4")
    assert seg["frames"] == ref["frames"] == 30 and seg["times"] == ref["times"] and seg["kinds"] == ref["kinds"]
    assert sum(e["kind"] == "segment" and e["status"] == "done" for e in manifest_lines(tmp_path / "ray")) == 3
    whole = _run(src, tmp_path / "ray_whole", settings)
    assert all(r.ok for r in whole)
    a, b = decode_frames(tmp_path / "j1" / "v.mp4"), decode_frames(tmp_path / "ray_whole" / "v.mp4")
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    # Again: all done already, nothing submitted to Ray.
    before = manifest_lines(tmp_path / "ray")
    _run(src, tmp_path / "ray", Settings(preset="fast", lookahead_s=0.5, overwrite=True), segment_s=1.0)
    assert manifest_lines(tmp_path / "ray") == before


def test_gpu_design_with_a_declared_gpu(tmp_path: Path, cluster: dict) -> None:
    """The GPU path on a machine with none: a node that declares a GPU resource (as Ray does for
    a real one) makes the engine put detection in one-GPU actors and painting/encoding in CPU
    tasks. Ray schedules by declared resources, so the actor gets GPU id 0 exactly as on a GPU
    node; onnxruntime runs on the CPU here (no CUDA provider installed). The outputs must be
    those of the one-pass run: a plan renders the same pixels as the run that made it."""
    from veil.runners.batch import RayEngine

    ray.shutdown()
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(SAMPLE_IMAGE, src / "a.png")
    regop(make_video(tmp_path / "raw.mp4", frames=30), src / "v.mp4", gop=10)
    make_video(src / "w.mp4", frames=12)
    settings = Settings(preset="fast", lookahead_s=0.5)
    engine = RayEngine(2, None)
    assert len(engine.actors) == 1  # one actor per GPU
    engine.close()
    results = _run(src, tmp_path / "gpu", settings, segment_s=1.0)
    assert all(r.ok for r in results), [r.error for r in results]
    lines = manifest_lines(tmp_path / "gpu")
    segs = [e for e in lines if e["kind"] == "segment" and e["status"] == "done"]
    assert len(segs) == 3 and all(e["report"]["scanned_on_gpus"] == ["0"] for e in segs)
    files = [e for e in lines if e["kind"] == "file" and e["status"] == "done"]
    assert len(files) == 2 and all(e["report"]["scanned_on_gpus"] == ["0"] for e in files)
    run_cli(src, "-o", tmp_path / "j1", "-j1", "--preset", "fast", "--lookahead", "0.5", check=True)
    assert (tmp_path / "j1" / "a.png").read_bytes() == (tmp_path / "gpu" / "a.png").read_bytes()
    a, b = decode_frames(tmp_path / "j1" / "w.mp4"), decode_frames(tmp_path / "gpu" / "w.mp4")
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    seg, ref = probe(tmp_path / "gpu" / "v.mp4"), probe(tmp_path / "j1" / "v.mp4")
    assert seg["frames"] == ref["frames"] == 30 and seg["times"] == ref["times"]
