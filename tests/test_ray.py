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

from veil.batch import Runner  # noqa: E402
from veil.config import Settings  # noqa: E402
from veil.pipeline import plan_jobs  # noqa: E402
from veil.progress import Reporter  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    # One fake GPU: Ray schedules by declared resources, so tasks that ask for a GPU share must
    # find it (onnxruntime still runs on the CPU here: no CUDA provider is installed).
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()


def _run(inputs: Path, out: Path, settings: Settings, segment_s: float | None = None) -> list:
    jobs, failed = plan_jobs([str(inputs)], str(out), settings)
    assert not failed
    return Runner(settings, Reporter(quiet=True), 2, segment_s, "ray", None, out).run(jobs)


def test_ray_matches_sequential(tmp_path: Path, cluster: dict) -> None:
    assert cluster.get("GPU") == 1 and cluster.get("CPU") == 2
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
