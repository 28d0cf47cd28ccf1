"""Thumbnails of images worth a look (e.g. those left with no valid label), small enough to embed in HTML."""

from __future__ import annotations

import io
import logging
import os
from typing import Sequence

from tqdm import tqdm

log = logging.getLogger(__name__)


def thumbnail(path: str | os.PathLike, size: int = 160) -> bytes | None:
    """JPEG bytes of the image at ``path`` shrunk to fit ``size`` x ``size``; ``None`` if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # lets JPEG decode at a reduced scale: much faster for big photos
            image = image.convert("RGB")
            image.thumbnail((size, size))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
            return buffer.getvalue()
    except (OSError, UnidentifiedImageError, ValueError) as error:
        log.warning("no thumbnail for %s: %s", path, error)
        return None


def thumbnails(paths: Sequence[object], size: int = 160) -> list[bytes | None]:
    """Thumbnails of local files, in order; ``None`` for URLs, unknown paths (None/NaN) and unreadable files."""
    local = [isinstance(p, str) and "://" not in p and os.path.isfile(p) for p in paths]
    progress = tqdm(total=sum(local), desc="thumbnails", unit="image", disable=sum(local) < 50)
    result = []
    for path, is_local in zip(paths, local):
        result.append(thumbnail(path, size) if is_local else None)  # type: ignore[arg-type]
        progress.update(is_local)
    progress.close()
    return result
