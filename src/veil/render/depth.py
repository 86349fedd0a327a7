"""Masks at the input's own bit depth: 16-bit and float pages are painted where the 8-bit copy was.

Detection and the first painting run on the 8-bit copy of a page (`Page.frame`), which gives
the boxes; the output is written from the deep pixels (`Page.full`), so the same boxes are
painted there again: a solid fill with the same colour at full scale, and the weaker masks
(blur, pixelate) applied to the deep samples themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from veil.media.source import Page, float_scale
from veil.render.masks import RedactionMask

# ITU-R BT.601 luma: the grey a colour fill takes on a grey page.
LUMA = (0.299, 0.587, 0.114)


def paint_page(page: Page, boxes: Iterable[Sequence[int]], mask: RedactionMask) -> None:
    """Make the painted boxes opaque and paint them at full depth (the 8-bit copy is done)."""
    boxes = [tuple(int(v) for v in box) for box in boxes]
    if page.alpha is not None:
        for x1, y1, x2, y2 in boxes:
            page.alpha[y1:y2, x1:x2] = 255  # the fill must be visible, not transparent
    full = page.full
    if full is None or not boxes:
        return
    white = 65535.0 if full.dtype == np.uint16 else float_scale(full)
    grey = full.ndim == 2 or full.shape[2] <= 2
    has_alpha = full.ndim == 3 and full.shape[2] in (2, 4)
    colour = getattr(mask, "color", None)  # solid fills carry their colour
    for x1, y1, x2, y2 in boxes:
        if x2 <= x1 or y2 <= y1:
            continue
        region = full[y1:y2, x1:x2]
        if colour is not None:
            rgb = np.asarray(colour, dtype=np.float64) / 255.0 * white
            value = float(np.dot(rgb, LUMA)) if grey else rgb
            if full.ndim == 2:
                region[:] = value
            elif grey:
                region[..., 0] = value
            else:
                region[..., :3] = value
        else:
            channels = region if full.ndim == 2 else region[..., 0] if grey else region[..., :3]
            work = np.ascontiguousarray(channels)
            mask.apply(work, (0, 0, x2 - x1, y2 - y1))
            channels[...] = work
        if has_alpha:
            region[..., -1] = white


def paint_region(page: Page, region: np.ndarray, color: Sequence[int]) -> None:
    """Fill the pixels of `region` (H x W bool: a privacy zone, a whole frame) opaquely at the
    page's own depth, and make them opaque in its alpha (the 8-bit copy is painted by redact)."""
    if page.alpha is not None:
        page.alpha[region] = 255
    full = page.full
    if full is None or not region.any():
        return
    white = 65535.0 if full.dtype == np.uint16 else float_scale(full)
    rgb = np.asarray(color, dtype=np.float64) / 255.0 * white
    grey = full.ndim == 2 or full.shape[2] <= 2
    value = float(np.dot(rgb, LUMA)) if grey else rgb
    if full.ndim == 2:
        full[region] = value
    elif grey:
        full[..., 0][region] = value
    else:
        full[..., :3][region] = value
    if full.ndim == 3 and full.shape[2] in (2, 4):
        full[..., -1][region] = white
