"""Reading a task's image the ways this project stores them.

- ``/data/local-files/?d=<path>``: from disk under Label Studio's document root when this machine shares it
  (``LOCAL_FILES_DOCUMENT_ROOT``), else downloaded from Label Studio with the API key.
- ``/data/upload/...`` and any other path on the Label Studio server: downloaded with the API key.
- ``http(s)://`` URLs on other hosts: downloaded without credentials (the key never leaves for a third party).

Each failure is an ``ImageError`` whose message names the URL and what to do; the caller turns it into an
error for that one task.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import PIL
import PIL.Image
import requests

from multilabelfy.dataset import load_image
from multilabelfy.labelstudio.local_files import is_local_files_url, local_files_relative_path

# Downloads a Label Studio-served path or URL with the API key, returning the body.
LabelStudioFetch = Callable[[str], bytes]


class ImageError(Exception):
    """One image that cannot be read; the message is one line."""


class ImageReader:
    """Turns the image URL of a task into an RGB ``PIL.Image``.

    Args:
        label_studio_url: base URL of the Label Studio server the tasks come from.
        document_root: that server's ``LOCAL_FILES_DOCUMENT_ROOT`` if it is readable here, else None.
        fetch_from_label_studio: downloads a path on the server with the API key; None when no key is set.
    """

    def __init__(
        self,
        label_studio_url: str,
        document_root: Path | None = None,
        fetch_from_label_studio: LabelStudioFetch | None = None,
    ):
        self.label_studio_url = label_studio_url.rstrip("/")
        self.document_root = document_root.resolve() if document_root else None
        self.fetch_from_label_studio = fetch_from_label_studio

    def read(self, url: str) -> PIL.Image.Image:
        if not isinstance(url, str) or not url:
            raise ImageError(f"image URL {url!r} is empty or not text; the task's image field must hold a URL")
        path = self._server_path(url)
        if path is None:
            if urlsplit(url).scheme not in ("http", "https"):
                raise ImageError(
                    f"image {url}: unsupported URL; use a Label Studio local-files or upload URL, or http(s)"
                )
            return _open(url, url)  # another host: downloaded without credentials
        if is_local_files_url(path) and self.document_root is not None:
            return _open(url, self._local_file(url, path))
        if self.fetch_from_label_studio is None:
            raise ImageError(
                f"image {url} is served by Label Studio: set LABEL_STUDIO_API_KEY (or LOCAL_FILES_DOCUMENT_ROOT "
                f"for local files) so that the backend can read it"
            )
        try:
            body = self.fetch_from_label_studio(path)
        except Exception as error:  # client errors of many kinds: all mean "not readable from Label Studio"
            raise ImageError(f"image {url} could not be downloaded from Label Studio ({_reason(error)})") from None
        return _open(url, body)

    def _server_path(self, url: str) -> str | None:
        """The path-and-query on the Label Studio server, or None for a URL elsewhere."""
        if url.startswith("/"):
            return url
        if url.startswith(self.label_studio_url + "/"):
            return url[len(self.label_studio_url):]
        return None

    def _local_file(self, url: str, path: str) -> str:
        relative = local_files_relative_path(path)
        if not relative:
            raise ImageError(f"image {url}: a local-files URL needs ?d=<path under the document root>")
        candidate = (self.document_root / relative.lstrip("/")).resolve()  # parse_qs has unquoted it
        # The same rule as Label Studio's: nothing outside the document root is served.
        if not candidate.is_relative_to(self.document_root):
            raise ImageError(f"image {url} points outside LOCAL_FILES_DOCUMENT_ROOT; fix the task's image URL")
        if not candidate.is_file():
            raise ImageError(
                f"image {url} is not readable at {candidate} (no such file); is LOCAL_FILES_DOCUMENT_ROOT the same "
                f"folder as Label Studio's?"
            )
        return str(candidate)


def _open(url: str, source: str | bytes) -> PIL.Image.Image:
    """Decode ``source`` (a path, an http(s) URL or downloaded bytes) as RGB; failures become ``ImageError``."""
    try:
        if isinstance(source, bytes):
            with PIL.Image.open(io.BytesIO(source)) as opened:
                return opened.convert("RGB")  # convert() decodes all: a truncated file fails here
        return load_image(source)
    except requests.RequestException as error:
        status = getattr(error.response, "status_code", None)
        hint = (" (if that is your Label Studio, set LABEL_STUDIO_URL to the same address so that the API key is "
                "used)") if status in (401, 403) else ""
        raise ImageError(f"image {url} could not be downloaded ({_reason(error)}){hint}") from None
    except PIL.UnidentifiedImageError:
        raise ImageError(f"image {url} is not an image file PIL can read; fix or replace the file") from None
    except (OSError, PIL.Image.DecompressionBombError, ValueError) as error:
        raise ImageError(f"image {url} is not a readable image ({_reason(error)})") from None


def _reason(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
