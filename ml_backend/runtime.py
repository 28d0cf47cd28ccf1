"""What a backend worker process holds for its lifetime: the engine with its weights, the catalogue, the image
reader and the Label Studio connection.

``load_runtime(config)`` builds it once per process and configuration (gunicorn imports ``_wsgi`` once per
worker); every request's model object only points at it, which keeps /setup fast.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import lru_cache

from multilabelfy.annotation.project import ImageLinker, read_exemplars
from multilabelfy.catalogue import Catalogue, load_catalogue
from multilabelfy.errors import UserError
from multilabelfy.labelstudio.client import LabelStudioClient
from multilabelfy.ml_backend.config import BackendConfig
from multilabelfy.ml_backend.images import ImageReader
from multilabelfy.models import create_classifier
from multilabelfy.proposals.engine import TopKEngine

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: BackendConfig
    engine: TopKEngine
    catalogue: Catalogue
    exemplars: dict[str, list[str]] = field(default_factory=dict)
    images: ImageReader = field(init=False)
    _client: LabelStudioClient | None = field(default=None, init=False, repr=False)
    _client_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.images = ImageReader(
            self.config.label_studio_url,
            self.config.document_root,
            self._download if self.config.api_key else None,
        )

    def label_studio(self) -> LabelStudioClient:
        """The connection to LABEL_STUDIO_URL with LABEL_STUDIO_API_KEY, opened on first use.

        Opened lazily so that the backend starts even while Label Studio does not answer yet (e.g. both started
        by docker compose); a failure is a ``UserError`` for the task that needed it, and the next task retries.
        """
        if not self.config.api_key:
            raise UserError(
                "LABEL_STUDIO_API_KEY is not set, so the backend cannot read from or write to Label Studio; set it "
                "to a token of a user of the project"
            )
        with self._client_lock:
            if self._client is None:
                self._client = LabelStudioClient(self.config.label_studio_url, self.config.api_key, timeout=30.0,
                                                 retries=2)
            return self._client

    def _download(self, path: str) -> bytes:
        return self.label_studio().download(path)


@lru_cache(maxsize=None)
def load_runtime(config: BackendConfig) -> Runtime:
    """The process's runtime for ``config``: weights loaded once, however many requests and /setup calls come."""
    engine = _load_engine(config.model_name, config.weights, config.top_k, config.device, config.batch_size)
    catalogue = load_catalogue(config.catalogue)
    if len(catalogue) != engine.classifier.num_classes:
        raise UserError(
            f"model {config.model_name} has {engine.classifier.num_classes} classes but catalogue {catalogue.source} "
            f"has {len(catalogue)}; set CATALOGUE to the model's class list"
        )
    return Runtime(config=config, engine=engine, catalogue=catalogue, exemplars=_read_exemplars(config))


@lru_cache(maxsize=None)
def _load_engine(model_name: str, weights: str, top_k: int, device: str | None, batch_size: int) -> TopKEngine:
    # Keyed apart from the rest of the settings: configurations that differ only in, say, the pre-check rule
    # share one copy of the weights.
    return TopKEngine(create_classifier(model_name, weights), top_k=top_k, device=device, batch_size=batch_size)


def _read_exemplars(config: BackendConfig) -> dict[str, list[str]]:
    """The EXEMPLARS file (``multilabelfy exemplars`` output) with its images as URLs, as create-project links them."""
    if config.exemplars is None:
        return {}
    linker = ImageLinker(config.document_root)
    return {
        class_id: [linker.url(image, f"exemplar {image} of class {class_id} in EXEMPLARS") for image in images]
        for class_id, images in read_exemplars(config.exemplars).items()
    }
