"""The backend's settings, read once from environment variables that Label Studio users already know.

Every setting has a default that works offline on one machine: EfficientNet-Lite0 with the offline ImageNet
weights, top-20, nothing pre-checked, served on 127.0.0.1:9090. A bad value is a ``UserError`` naming the
variable and what it accepts, raised when the worker starts, not on the first request.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from multilabelfy.annotation.tasks import MAX_PROPOSALS
from multilabelfy.errors import UserError
from multilabelfy.models import HUB, OFFLINE_LITE0, RANDOM

DEFAULT_PORT = 9090
_THRESHOLD = re.compile(r"^threshold:(0(\.\d+)?|1(\.0+)?)$")


@dataclass(frozen=True)
class PrecheckRule:
    """Which of a task's proposals a prediction pre-checks.

    ``none`` (default): nothing; annotators choose from an empty form, as the Multilabelfy protocol asks, and the
    proposals only order the options. ``top1``: the most probable class. ``threshold:P``: every proposal whose
    probability is at least P (0..1), which may be none.
    """

    spec: str
    threshold: float | None = None

    @classmethod
    def parse(cls, spec: str) -> "PrecheckRule":
        spec = spec.strip().lower()
        if spec in ("none", "top1"):
            return cls(spec)
        match = _THRESHOLD.match(spec)
        if match:
            return cls(spec, float(match.group(1)))
        raise UserError(f"PRECHECK={spec!r} is not a rule; use 'none', 'top1' or 'threshold:P' with P in 0..1")

    def select(self, probs: list[float]) -> list[int]:
        """Positions (into a task's options, in the task's order) that the prediction pre-checks."""
        if self.spec == "top1":
            # The most probable option, wherever the task lists it (its options may come from another ranking).
            return [max(range(len(probs)), key=probs.__getitem__)] if probs else []
        if self.threshold is not None:
            return [i for i, p in enumerate(probs) if p >= self.threshold]
        return []


@dataclass(frozen=True)
class BackendConfig:
    model_name: str = "efficientnet_lite0"
    weights: str = OFFLINE_LITE0  # HUB, OFFLINE_LITE0, RANDOM or a checkpoint path
    top_k: int = 20
    device: str | None = None  # None: CUDA when available, else the CPU
    # Images per forward pass, and tasks read per step of a large /predict. Small by default: on a CPU, batches
    # of 4-8 ran faster per image than 16 (ml_backend/README.md, load test); raise it on a GPU.
    batch_size: int = 8
    catalogue: str | None = None  # None: ImageNet-1k; else a catalogue CSV (multilabelfy.catalogue)
    exemplars: Path | None = None  # `multilabelfy exemplars` JSON, shown in the options of tasks we fill in
    precheck: PrecheckRule = PrecheckRule("none")
    document_root: Path | None = None  # Label Studio's LOCAL_FILES_DOCUMENT_ROOT, when it is on this machine
    label_studio_url: str = "http://localhost:8080"
    # Secrets never appear in repr() or logs.
    api_key: str | None = field(default=None, repr=False)
    basic_auth_user: str | None = None
    basic_auth_pass: str | None = field(default=None, repr=False)
    model_dir: Path | None = None

    @property
    def model_version(self) -> str:
        """The version string /setup answers and every prediction carries.

        It depends only on what changes the predictions, so it is the same in every worker and after every
        restart: Label Studio then skips tasks that already hold this version's prediction instead of adding
        a duplicate. Changing the model, weights, top-k or pre-check rule gives a new version, on purpose.
        """
        weights = self.weights if self.weights in (HUB, OFFLINE_LITE0, RANDOM) else Path(self.weights).name
        return f"multilabelfy-{self.model_name}-{weights}-top{self.top_k}-precheck-{self.precheck.spec}"

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        if self.basic_auth_user and self.basic_auth_pass:
            return self.basic_auth_user, self.basic_auth_pass
        return None


def from_env(environ: Mapping[str, str] | None = None) -> BackendConfig:
    """Read the settings from ``environ`` (default ``os.environ``); see ml_backend/README.md for the table."""
    env = os.environ if environ is None else environ

    def text(name: str, default: str | None = None) -> str | None:
        value = env.get(name, "").strip()
        return value or default

    def positive(name: str, default: int) -> int:
        raw = text(name, str(default))
        if not raw.isdigit() or int(raw) < 1:
            raise UserError(f"{name}={raw!r} must be a whole number of at least 1")
        return int(raw)

    model_dir = text("MODEL_DIR")
    weights = text("MODEL_WEIGHTS", OFFLINE_LITE0)
    if weights not in (HUB, OFFLINE_LITE0, RANDOM) and model_dir and not os.path.isabs(weights):
        weights = os.path.join(model_dir, weights)  # a checkpoint named relative to MODEL_DIR, as in the examples
    document_root = text("LOCAL_FILES_DOCUMENT_ROOT") or text("IMAGE_ROOT")
    if document_root and not os.path.isdir(document_root):
        raise UserError(f"LOCAL_FILES_DOCUMENT_ROOT={document_root} is not a directory; unset it or fix the path")
    basic_user, basic_pass = text("BASIC_AUTH_USER"), text("BASIC_AUTH_PASS")
    if bool(basic_user) != bool(basic_pass):
        raise UserError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
    url = text("LABEL_STUDIO_URL") or text("LABEL_STUDIO_HOST") or BackendConfig.label_studio_url
    if not url.startswith(("http://", "https://")):
        raise UserError(f"LABEL_STUDIO_URL={url!r} must start with http:// or https://")
    top_k = positive("TOP_K", BackendConfig.top_k)
    if top_k > MAX_PROPOSALS:
        raise UserError(f"TOP_K={top_k}: the annotation template shows at most {MAX_PROPOSALS} proposals")
    exemplars = text("EXEMPLARS")
    if exemplars and not os.path.isfile(exemplars):
        raise UserError(f"EXEMPLARS={exemplars} is not a file; pass the JSON `multilabelfy exemplars` writes")
    return BackendConfig(
        model_name=text("MODEL_NAME", BackendConfig.model_name),
        weights=weights,
        top_k=top_k,
        device=text("DEVICE"),
        batch_size=positive("BATCH_SIZE", BackendConfig.batch_size),
        catalogue=text("CATALOGUE"),
        exemplars=Path(exemplars) if exemplars else None,
        precheck=PrecheckRule.parse(text("PRECHECK", "none")),
        document_root=Path(document_root).resolve() if document_root else None,
        label_studio_url=url.rstrip("/"),
        api_key=text("LABEL_STUDIO_API_KEY"),
        basic_auth_user=basic_user,
        basic_auth_pass=basic_pass,
        model_dir=Path(model_dir) if model_dir else None,
    )
