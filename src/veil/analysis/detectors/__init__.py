"""Detectors: one file per detector, each implementing `Detector`.

A detector module registers a factory with `@register("name")`. The registry is filled by
importing every module of this package, so a new detector is one new file and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from veil.errors import VeilError
from veil.types import Detections

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
# Threads of every onnxruntime session made without an explicit count (0: onnxruntime's default,
# one per core). A batch worker sets it to its share of the cores (batch.init_worker).
DEFAULT_THREADS = 0
# Whether idle onnxruntime threads spin (busy-wait) for the next run, onnxruntime's default. They
# do not here: detection runs beside decoding, painting and encoding (runners/stages.py), and a
# spinning pool takes their cores. balanced on 150 frames of the mall clip (2 cores, shared):
# 39 s of CPU spinning, 27 s not, and no slower (bench/speed_bench.py, README "Speed").
SPIN = False
_PROVIDERS: set[str] = set()


class Detector(Protocol):
    """Finds one class of thing to redact ("face", "plate", "text", ...) in an RGB image."""

    name: str
    label: str

    def detect(self, image: np.ndarray) -> Detections:
        """Boxes in pixel coordinates of `image` (H x W x 3 uint8 RGB)."""
        ...

    def settings(self) -> dict[str, Any]:
        """Everything that changes what this detector finds, for the audit report."""
        ...


_FACTORIES: dict[str, Callable[..., Detector]] = {}


def register(name: str) -> Callable[[Callable[..., Detector]], Callable[..., Detector]]:
    def wrap(factory: Callable[..., Detector]) -> Callable[..., Detector]:
        _FACTORIES[name] = factory
        return factory

    return wrap


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def available() -> list[str]:
    _load_all()
    return sorted(_FACTORIES)


def create(name: str, **options: Any) -> Detector:
    _load_all()
    if name not in _FACTORIES:
        raise VeilError(f"unknown detector {name!r}; available: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name](**options)


def onnx_session(model_path: Path, threads: int = 0) -> Any:
    """An onnxruntime session on the best provider installed (CUDA, OpenVINO, else CPU).

    The model is read from a local file; onnxruntime never fetches anything.
    """
    import onnxruntime as ort

    # veil's import set ORT_DISABLE_TELEMETRY; a program that imported onnxruntime before veil
    # started its telemetry already, and this stops what can still be stopped.
    if hasattr(ort, "disable_telemetry_events"):
        ort.disable_telemetry_events()
    if not model_path.is_file():
        raise VeilError(f"model file missing: {model_path} (reinstall veil)")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    threads = threads or DEFAULT_THREADS
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if SPIN else "0")
    preferred = ["CUDAExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider"]
    providers = [p for p in preferred if p in ort.get_available_providers()]
    session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
    # What the session really runs on: a provider that failed to start (CUDA without its
    # libraries) is left out here, and onnxruntime falls back to the next.
    _PROVIDERS.update(session.get_providers())
    return session


def providers_in_use() -> list[str]:
    """The onnxruntime execution providers of every session made so far in this process, best
    first (CPUExecutionProvider runs whatever a GPU provider does not take)."""
    order = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider"]
    return sorted(_PROVIDERS, key=lambda p: order.index(p) if p in order else len(order))


def paced_every(late_s: float, fps: float | None) -> int:
    """Every how many calls a detector kept in time runs, seeing `fps` frames a second, so that
    what comes into view between two runs is found at most `late_s` seconds later (the face
    ensemble's whole-frame pass, the person network): 2 from 20 fps at 0.05 s, 3 from 40; every
    call at an unknown rate or without a bound."""
    return 1 + int(late_s * fps + 1e-9) if fps and late_s > 0 else 1


def sha256_of(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
