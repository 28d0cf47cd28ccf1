"""Benchmark of ``create-project`` at scale: build task data, chunked import, paging through the tasks, a snapshot
export, and an idempotent re-run, against a local Label Studio (SQLite).

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_annotation_import.py [--images 10000]
[--exemplars 10] [--seed-dir DIR]``. Images and exemplars are URLs (no files); each image gets 20 random
proposals. ``--seed-dir``: a migrated Label Studio data dir to copy (the tests keep one under
``/tmp/pytest-of-$USER/multilabelfy-label-studio-seed-*``), else a new one is initialised (about a minute).
Seconds per phase and the task data's size are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def synthetic_proposals(num_images: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "position": np.arange(num_images),
        "image_id": [f"val/{i:06d}" for i in range(num_images)],
        "image": [f"https://images.example.org/val/{i:06d}.JPEG" for i in range(num_images)],
        "label": pd.array(rng.integers(0, 1000, num_images), dtype="Int64"),
        "topk_indices": [rng.choice(1000, 20, replace=False).astype(np.int32) for _ in range(num_images)],
        "topk_probs": [np.sort(rng.random(20).astype(np.float32))[::-1] for _ in range(num_images)],
        "label_rank": pd.array(np.ones(num_images, dtype=np.int32), dtype="Int32"),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--exemplars", type=int, default=10, help="exemplar URLs per class")
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--seed-dir", default=None)
    args = parser.parse_args()

    from multilabelfy.annotation.project import ImageLinker, build_tasks, create_annotation_projects
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.labelstudio.client import LabelStudioClient
    from multilabelfy.labelstudio.server import LabelStudioServer

    catalogue = load_catalogue()
    proposals = synthetic_proposals(args.images)
    exemplars = {c.id: [f"https://images.example.org/train/{c.id}/{c.id}_{j:05d}.JPEG" for j in range(args.exemplars)]
                 for c in catalogue}
    timings = {}

    start = time.perf_counter()
    items = build_tasks(proposals, catalogue, ImageLinker(None), exemplars)
    timings["build task data"] = time.perf_counter() - start
    task_bytes = np.mean([len(json.dumps(item["data"])) for item in items[:1000]])

    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "ls"
        if args.seed_dir:
            shutil.copytree(args.seed_dir, data_dir)
        with LabelStudioServer(data_dir) as server:
            client = LabelStudioClient(server.url, server.api_key)
            start = time.perf_counter()
            create_annotation_projects(client, proposals, catalogue, "bench", exemplars=exemplars,
                                       chunk_size=args.chunk_size)
            timings["create-project (build + import)"] = time.perf_counter() - start
            project = client.find_project("bench")
            start = time.perf_counter()
            count = sum(1 for _ in client.iter_tasks(project["id"], with_annotations=False))
            timings[f"page through {count} tasks"] = time.perf_counter() - start
            start = time.perf_counter()
            [outcome] = create_annotation_projects(client, proposals, catalogue, "bench", exemplars=exemplars,
                                                   chunk_size=args.chunk_size, progress=False)
            timings[f"re-run (imported {outcome.imported})"] = time.perf_counter() - start
            start = time.perf_counter()
            export = client.export_snapshot(project["id"], Path(scratch) / "export.json")
            timings["snapshot export + download"] = time.perf_counter() - start
            export_mb = export.stat().st_size / 2**20
            db_mb = (data_dir / "label_studio.sqlite3").stat().st_size / 2**20

    print(f"{args.images} images, 20 proposals, {args.exemplars} exemplars per class, chunks of {args.chunk_size}")
    print(f"task data: {task_bytes / 1024:.1f} KiB per task; export {export_mb:.0f} MiB; database {db_mb:.0f} MiB")
    for phase, seconds in timings.items():
        print(f"{phase:40s} {seconds:8.1f} s")


if __name__ == "__main__":
    main()
