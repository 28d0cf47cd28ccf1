"""The top-k engine: a classifier's k most probable classes per image, and the rank of a given label.

Written once and shared: ``multilabelfy propose`` feeds it batches from a DataLoader, the ML backend feeds it
PIL images. The model is moved to the device once, at construction; calls are stateless afterwards.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import PIL.Image
import torch

from multilabelfy.errors import UserError
from multilabelfy.models import Classifier


@dataclass
class TopK:
    indices: np.ndarray  # (N, k) int64 class indices, most probable first
    probs: np.ndarray  # (N, k) float32 softmax probabilities of those classes
    label_rank: np.ndarray | None  # (N,) int64: 1-based rank of the given label among all classes, -1 where no label


class TopKEngine:
    """Run a ``Classifier`` in inference mode and keep only the top-k of each softmax.

    ``device`` ``None`` picks CUDA when available, else the CPU. On CUDA the model runs in channels_last
    memory format under bf16 autocast; probabilities are always computed in float32.
    """

    def __init__(
        self,
        classifier: Classifier,
        top_k: int = 20,
        device: str | torch.device | None = None,
        batch_size: int = 64,
    ):
        if not 1 <= top_k <= classifier.num_classes:
            raise UserError(f"--top-k must be between 1 and the model's {classifier.num_classes} classes, not {top_k}")
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, not {batch_size}")
        self.classifier = classifier
        self.top_k = top_k
        self.batch_size = batch_size
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self._cuda = self.device.type == "cuda"
        model = classifier.model.eval().to(self.device)
        self.model = model.to(memory_format=torch.channels_last) if self._cuda else model

    def predict_tensors(self, pixels: torch.Tensor, labels: torch.Tensor | None = None) -> TopK:
        """Top-k of already transformed images.

        ``pixels``: (N, 3, H, W) float, as the classifier's transform makes them; processed in slices of
        ``batch_size``. ``labels``: (N,) int class indices, -1 where unknown; gives ``label_rank``.
        """
        if labels is not None and len(labels) != len(pixels):
            raise ValueError(f"{len(labels)} labels for {len(pixels)} images")
        parts = [
            self._predict_batch(
                pixels[start:start + self.batch_size],
                None if labels is None else labels[start:start + self.batch_size],
            )
            for start in range(0, len(pixels), self.batch_size)
        ]
        if not parts:
            return TopK(
                indices=np.zeros((0, self.top_k), np.int64),
                probs=np.zeros((0, self.top_k), np.float32),
                label_rank=None if labels is None else np.zeros((0,), np.int64),
            )
        return TopK(
            indices=np.concatenate([p.indices for p in parts]),
            probs=np.concatenate([p.probs for p in parts]),
            label_rank=None if labels is None else np.concatenate([p.label_rank for p in parts]),
        )

    def predict_images(self, images: Sequence[PIL.Image.Image]) -> TopK:
        """Top-k of PIL images (converted to RGB), through the classifier's own eval transform."""
        transform = self.classifier.transform
        tensors = [transform(image.convert("RGB")) for image in images]
        if not tensors:
            return self.predict_tensors(torch.zeros((0, 3, 1, 1)))
        return self.predict_tensors(torch.stack(tensors))

    def _predict_batch(self, pixels: torch.Tensor, labels: torch.Tensor | None) -> TopK:
        pixels = pixels.to(self.device, non_blocking=True)
        if self._cuda:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self._cuda else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            logits = self.model(pixels)
        with torch.inference_mode():
            probs = logits.float().softmax(dim=-1)
            top_probs, top_indices = probs.topk(self.top_k, dim=-1)
            rank = None
            if labels is not None:
                labels = labels.to(self.device).long()
                known = labels >= 0
                own = probs.gather(1, labels.clamp(min=0).unsqueeze(1))
                # rank = 1 + number of classes strictly more probable than the label (ties favour the label)
                rank = torch.where(known, (probs > own).sum(dim=1) + 1, torch.full_like(labels, -1))
        return TopK(
            indices=top_indices.cpu().numpy().astype(np.int64),
            probs=top_probs.cpu().numpy().astype(np.float32),
            label_rank=None if rank is None else rank.cpu().numpy().astype(np.int64),
        )
