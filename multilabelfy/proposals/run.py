"""A proposal run: a dataset through the top-k engine into a chunked, resumable, shardable Parquet.

The dataset is cut into chunks of consecutive positions. Each finished chunk is written at once as its own
file, so a killed run loses at most the chunks in flight and a re-run computes only the missing ones. Under
``torchrun --nproc_per_node N`` the missing chunks are dealt round-robin to the N processes; the first one merges.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from tqdm import tqdm

from multilabelfy.catalogue import Catalogue
from multilabelfy.dataset import ImageBatch, ImageDataset, ImageRecord, collate_images
from multilabelfy.errors import UserError
from multilabelfy.models import Classifier
from multilabelfy.proposals import store
from multilabelfy.proposals.distributed import current_shard
from multilabelfy.proposals.engine import TopK, TopKEngine

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    out: Path
    images: int  # images in the dataset
    proposed: int  # images with proposals in ``out``
    errors: int  # unreadable images, listed in ``errors_file``
    errors_file: Path
    computed: int  # images this process computed now (0 when the output was already up to date)
    up_to_date: bool  # True when ``out`` already held this run and nothing was done


def run_proposals(
    records: Sequence[ImageRecord],
    classifier: Classifier,
    catalogue: Catalogue,
    out: str | Path,
    top_k: int = 20,
    batch_size: int = 64,
    workers: int = 2,
    chunk_size: int = 1024,
    device: str | None = None,
    progress: bool = True,
) -> RunSummary:
    """Write top-k proposals for ``records`` to ``out`` (schema: ``store.SCHEMA``) and unreadable images to
    ``<out>.errors.csv``. Resumes from ``<out>.parts/``; returns at once if ``out`` already holds this run."""
    out = Path(out)
    if classifier.num_classes != len(catalogue):
        raise UserError(
            f"model {classifier.name} has {classifier.num_classes} classes but catalogue {catalogue.source} has "
            f"{len(catalogue)}; pass the matching --catalogue"
        )
    if chunk_size < 1:
        raise UserError(f"--chunk-size must be at least 1, not {chunk_size}")
    card = _run_card(records, classifier, catalogue, top_k, chunk_size)
    summary = RunSummary(out=out, images=len(records), proposed=0, errors=0,
                         errors_file=store.errors_path(out), computed=0, up_to_date=False)
    if out.is_file() and store.errors_path(out).is_file() and store.read_metadata(out) == card:
        summary.proposed = _count_rows(out)
        summary.errors = summary.images - summary.proposed
        summary.up_to_date = True
        return summary

    shard = current_shard()
    engine = TopKEngine(classifier, top_k=top_k, device=device or shard.device, batch_size=batch_size)
    parts = store.parts_dir(out)
    if shard.is_main:
        store.write_run_card(parts, card)
    shard.barrier()
    store.check_run_card(parts, card)
    chunks = range((len(records) + chunk_size - 1) // chunk_size)
    done = store.done_chunks(parts)
    pending = [c for c in chunks if c not in done]
    shard.barrier()  # every process listed the same finished chunks before anyone writes new ones
    if pending and len(pending) < len(chunks) and shard.is_main:
        log.info("resuming: %d of %d chunks already done in %s", len(chunks) - len(pending), len(chunks), parts)

    mine = pending[shard.rank::shard.world_size]
    summary.computed = _compute_chunks(engine, records, mine, chunk_size, parts, workers, progress and shard.is_main)
    shard.barrier()
    if shard.is_main:
        summary.proposed, summary.errors = store.merge_chunks(parts, out, len(records), card)
        shutil.rmtree(parts)  # our own scratch folder; the merged file now holds everything
    shard.barrier()  # every process returns with the merged output in place
    if not shard.is_main:
        summary.proposed = _count_rows(out)
        summary.errors = summary.images - summary.proposed
    return summary


def predict_records(
    engine: TopKEngine, records: Sequence[ImageRecord], workers: int = 2, progress: bool = True
) -> Iterator[tuple[ImageBatch, TopK]]:
    """Read ``records`` with a DataLoader (``workers`` processes) and run the engine: yields each batch (its
    positions, labels and failures) with the batch's top-k, in record order, advancing a progress bar."""
    loader = torch.utils.data.DataLoader(
        ImageDataset(records, engine.classifier.transform),
        batch_size=engine.batch_size,
        num_workers=workers,
        collate_fn=collate_images,
        pin_memory=engine.device.type == "cuda",
    )
    unreadable = 0
    with tqdm(total=len(records), unit="img", desc="proposals", disable=not progress, dynamic_ncols=True) as bar:
        for batch in loader:
            yield batch, engine.predict_tensors(batch.pixels, batch.labels)
            unreadable += len(batch.failed)
            bar.update(len(batch.positions) + len(batch.failed))
            if unreadable:
                bar.set_postfix(unreadable=unreadable)


def _compute_chunks(
    engine: TopKEngine,
    records: Sequence[ImageRecord],
    chunks: Sequence[int],
    chunk_size: int,
    parts: Path,
    workers: int,
    progress: bool,
) -> int:
    """Run the engine over ``chunks`` and write each chunk's file as soon as its last image is done."""
    chunk_records = {c: records[c * chunk_size:(c + 1) * chunk_size] for c in chunks}
    todo = [record for c in chunks for record in chunk_records[c]]
    results: dict[int, store.Result] = {}
    remaining = list(chunks)  # the loader keeps order, so chunks complete first to last
    for batch, top in predict_records(engine, todo, workers, progress):
        for row, position in enumerate(batch.positions.tolist()):
            results[position] = (top.indices[row], top.probs[row], int(top.label_rank[row]))
        for position, reason in batch.failed:
            results[position] = reason
        while remaining and all(r.position in results for r in chunk_records[remaining[0]]):
            chunk = remaining.pop(0)
            store.write_chunk(parts, chunk, chunk_records[chunk], results)
            for record in chunk_records[chunk]:
                del results[record.position]
    return len(todo)


def _run_card(
    records: Sequence[ImageRecord], classifier: Classifier, catalogue: Catalogue, top_k: int, chunk_size: int
) -> dict[str, str]:
    """What identifies a run: the output metadata and the resume check both use it."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(f"{record.image_id}\t{record.image}\t{record.label}\n".encode())
    return {
        "model": classifier.name,
        "weights": classifier.weights,
        "top_k": str(top_k),
        "catalogue": catalogue.source,
        "dataset_sha256": digest.hexdigest(),
        "chunk_size": str(chunk_size),
    }


def _count_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
