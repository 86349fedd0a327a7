"""Redaction masks: one file per mask, each implementing `RedactionMask`.

A mask module registers its class with `@register("name")`; a new mask is one new file.
Masks paint in place over integer pixel boxes that the caller has already grown and clipped.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from veil.errors import VeilError


class RedactionMask(Protocol):
    name: str
    # Irreversible masks destroy every pixel of the region; weak ones (blur, pixelate) keep
    # some signal that machines can match. The report and the docs say which is which.
    irreversible: bool

    def apply(self, image: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Paint over image[y1:y2, x1:x2] in place (H x W x 3 uint8 RGB)."""
        ...

    def settings(self) -> dict[str, Any]: ...


_FACTORIES: dict[str, Callable[..., RedactionMask]] = {}


def register(name: str) -> Callable[[Callable[..., RedactionMask]], Callable[..., RedactionMask]]:
    def wrap(factory: Callable[..., RedactionMask]) -> Callable[..., RedactionMask]:
        _FACTORIES[name] = factory
        return factory

    return wrap


def available() -> list[str]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return sorted(_FACTORIES)


def create(name: str, **options: Any) -> RedactionMask:
    names = available()
    if name not in _FACTORIES:
        raise VeilError(f"unknown mask {name!r}; choose one of {', '.join(names)}")
    return _FACTORIES[name](**options)
