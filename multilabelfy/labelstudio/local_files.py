"""Label Studio's local-files URLs, ``/data/local-files/?d=<path relative to the document root>``, both ways.

``create-project`` writes them for local images; the ML backend reads them back to open the files from disk.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

LOCAL_FILES_PATH = "/data/local-files/"


def local_files_url(relative_path: str) -> str:
    """The URL of a file at ``relative_path`` (POSIX, below the server's document root)."""
    return f"{LOCAL_FILES_PATH}?d={quote(relative_path, safe='/')}"


def is_local_files_url(path: str) -> bool:
    """Whether a server path (path and query, without scheme and host) is a local-files URL."""
    return path.startswith(LOCAL_FILES_PATH)


def local_files_relative_path(path: str) -> str:
    """The unquoted ``d`` parameter of a local-files server path ('' when missing)."""
    return parse_qs(urlsplit(path).query).get("d", [""])[0]
