"""Benchmark of ``multilabelfy report`` at ImageNet scale: 50,000 images (ReaL's real label sets) and 100 models.

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_report.py [--images 50000] [--models 100]``.
Synthetic top-5 predictions (a model of skill s names the original label first with probability s) are saved
as .npy files, then read, computed and written as the CLI does; seconds are printed per phase.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def make_inputs(folder: Path, num_images: int, num_models: int, seed: int = 0) -> tuple[Path, list[str]]:
    """Write manifest.csv (ReaL ids, original labels) and one top-5 .npy per model; return their paths."""
    from multilabelfy.analysis.labelsets import IMAGENET_REAL, read_label_sets

    rng = np.random.default_rng(seed)
    real = read_label_sets(IMAGENET_REAL)
    sets = real.labels[:num_images]
    # the original label: one of the ReaL labels mostly, another class sometimes (as in ImageNet)
    original = rng.integers(0, 1000, num_images)
    for i, labels in enumerate(sets):
        if labels and rng.random() < 0.9:
            original[i] = labels[rng.integers(len(labels))]
    manifest = folder / "manifest.csv"
    manifest.write_text("image_id,label\n" + "".join(f"{real.image_ids[i]},{original[i]}\n"
                                                      for i in range(num_images)))
    specs = []
    for m, skill in enumerate(np.linspace(0.55, 0.9, num_models)):
        topk = rng.integers(0, 1000, (num_images, 5), dtype=np.int16)
        hit = rng.random(num_images) < skill
        topk[hit, 0] = original[hit]
        np.save(folder / f"model_{m:03d}.npy", topk)
        specs.append(str(folder / f"model_{m:03d}.npy"))
    return manifest, specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--keep", metavar="DIR", help="copy the written report to DIR to look at it")
    args = parser.parse_args()

    from multilabelfy.analysis.labelsets import IMAGENET_REAL, read_label_sets
    from multilabelfy.analysis.manifest import read_manifest
    from multilabelfy.analysis.predictions import read_predictions
    from multilabelfy.analysis.report import compute_report, write_report
    from multilabelfy.catalogue import load_catalogue

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest_path, specs = make_inputs(folder, args.images, args.models)
        clock = _Clock()
        catalogue = load_catalogue()
        clock.lap("catalogue (timm import)")
        manifest = read_manifest(manifest_path, catalogue)
        # ReaL's sets; a smaller manifest of val ids takes the matching subset
        label_sets = read_label_sets(IMAGENET_REAL, manifest, catalogue)
        models = [read_predictions(spec, manifest, len(catalogue)) for spec in specs]
        clock.lap("read inputs")
        tables = compute_report(manifest, label_sets, models, len(catalogue), [c.name for c in catalogue])
        clock.lap("compute")
        write_report(tables, folder / "report")
        clock.lap("write all (JSON, CSV, charts, HTML)")
        if args.keep:
            import shutil

            shutil.copytree(folder / "report", args.keep, dirs_exist_ok=True)

    print(f"images {args.images:,}, models {args.models}; wall s (CPU s of this process)")
    for name, wall, cpu in clock.laps:
        print(f"  {name:38s} {wall:6.2f} ({cpu:6.2f})")
    print(f"  {'of which charts':38s} {tables.seconds['charts']:6.2f} ({tables.seconds['charts_cpu']:6.2f})")


class _Clock:
    """Wall and CPU seconds per phase: on a shared machine CPU time shows the work, wall time the wait."""

    def __init__(self) -> None:
        self.laps: list[tuple[str, float, float]] = []
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.laps.append((name, wall - self._wall, cpu - self._cpu))
        self._wall, self._cpu = wall, cpu


if __name__ == "__main__":
    main()
