"""Writing outputs so that a crash never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _temp_beside(path: Path, prefix: str, suffix: str) -> str:
    """A new empty file in ``path``'s folder, with the permissions an ordinary ``open`` would give it.

    (mkstemp makes files 0600; outputs such as reports are meant to be shared like any other file.)
    """
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return tmp_name


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds.

    Readers see either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = _temp_beside(path, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(tmp_name, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for writers that want a filename (Parquet, PNG, ...).

    The temporary file replaces ``path`` only if the block succeeds.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = _temp_beside(path, prefix=f".{path.stem}.", suffix=path.suffix or ".tmp")
    try:
        yield Path(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_json(path: str | os.PathLike, data: Any, indent: int | None = 2) -> None:
    """Write ``data`` as UTF-8 JSON, atomically.

    Large files should pass ``indent=None``: only then does ``json`` use its C encoder (and ``dumps`` rather
    than ``dump``, which always takes the pure-Python path).
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.write("\n")
