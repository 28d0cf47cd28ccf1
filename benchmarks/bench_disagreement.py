"""Benchmark of ``disagreements`` and ``finalize`` on a synthetic Label Studio export, against merely parsing it.

Run by hand (not a test): ``.venv/bin/python benchmarks/bench_disagreement.py [--images 500000] [--work DIR]``.
Writes an export of N tasks x 2 annotations (task data as ``create-project`` makes it: 20 proposals in four
groups of five, 1,000 classes; kept in ``--work`` and reused by the next run), then runs each phase in a fresh
process and prints its wall seconds, CPU seconds (user + system: what counts on a shared machine) and peak
resident memory (VmHWM):

- ``parse``: stream the export with ijson and touch every annotation (the floor);
- ``disagreements``: ``analyse_exports`` (decisions.parquet, annotations.parquet, summary.json);
- ``parse-refinement``/``finalize``: a refinement export for every image that needs it, then ``finalize``.

Ratios are phase CPU seconds over the CPU seconds to parse the same input.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NUM_CLASSES = 1000
ANNOTATORS = [f"annotator{k:02d}@lab.org" for k in range(14)]  # as in the paper: 14 annotators


def write_catalogue(path: Path) -> Path:
    path.write_text("id,name\n" + "".join(f"n{k:08d},class {k}\n" for k in range(NUM_CLASSES)))
    return path


def write_export(path: Path, catalogue_path: Path, images: int, seed: int = 0) -> int:
    """A JSON export of ``images`` tasks with two annotations each (some skipped, some disagreeing)."""
    from multilabelfy.annotation.tasks import build_task_data, prediction_result
    from multilabelfy.catalogue import from_csv

    catalogue = from_csv(catalogue_path)
    rng = random.Random(seed)
    annotations = 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        for i in range(images):
            label = rng.randrange(NUM_CLASSES)
            proposals = [label] + rng.sample([c for c in range(label + 1, label + 40)], 19)
            proposals = [c % NUM_CLASSES for c in proposals]
            rng.shuffle(proposals)
            data = build_task_data(f"/data/local-files/?d=val/{i:07d}.JPEG", f"val/{i:07d}", label, proposals,
                                   catalogue, extra={"position": i, "batch": f"batch{i * 7 // images}"})
            pair = rng.sample(range(len(ANNOTATORS)), 2)
            shared = {label} if rng.random() < 0.75 else set(rng.sample(proposals[:5], rng.randint(1, 2)))
            items = []
            for number, user in enumerate(pair):
                chosen = set(shared)
                if rng.random() < 0.3:
                    chosen.add(rng.choice(proposals[:5]))
                cancelled = rng.random() < 0.02
                result = [] if cancelled else prediction_result([catalogue[c].id for c in chosen], data)
                if rng.random() < 0.05:
                    result.append({"from_name": "comment", "to_name": "image", "type": "textarea",
                                   "value": {"text": ["hard to see"]}})
                items.append({"id": 2 * i + number, "completed_by": user + 1, "result": result,
                              "was_cancelled": cancelled, "ground_truth": False, "lead_time": 3.5,
                              "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                              "task": i + 1})
            annotations += len(items)
            task = {"id": i + 1, "project": 1, "data": data, "annotations": items, "drafts": [], "predictions": []}
            handle.write(("," if i else "") + json.dumps(task))
        handle.write("]")
    return annotations


def write_refinement_export(decisions_folder: Path, path: Path, catalogue_path: Path) -> int:
    """One refinement (the union of earlier choices) for every image that needs one; returns their number."""
    from multilabelfy.catalogue import from_csv
    from multilabelfy.disagreement import NEEDS_REFINEMENT, read_decisions

    catalogue = from_csv(catalogue_path)
    table = read_decisions(decisions_folder, ["image_id", "decision", "chosen_labels"])
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[")
        for image_id, decision, chosen in zip(*(table.column(c).to_pylist() for c in table.column_names)):
            if decision != NEEDS_REFINEMENT:
                continue
            result = [{"from_name": "group_1", "to_name": "image", "type": "choices",
                       "value": {"choices": [catalogue[c].id for c in chosen]}},
                      {"from_name": "comment", "to_name": "image", "type": "textarea", "value": {"text": ["ok"]}}]
            task = {"id": count + 1, "project": 2, "data": {"image_id": image_id},
                    "annotations": [{"id": count + 1, "completed_by": 99, "result": result, "was_cancelled": False,
                                     "updated_at": "2026-01-02T00:00:00Z"}]}
            handle.write(("," if count else "") + json.dumps(task))
            count += 1
        handle.write("]")
    return count


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_phase(phase: str, folder: Path) -> None:
    """One phase in this process; prints ``{"seconds", "cpu_seconds", "peak_mib"}`` as JSON."""
    start, cpu_start = time.perf_counter(), time.process_time()
    if phase in ("parse", "parse-refinement"):
        import ijson

        name = "export.json" if phase == "parse" else "refinement.json"
        count = 0
        with open(folder / name, "rb") as handle:
            for task in ijson.items(handle, "item", use_float=True):
                count += len(task["annotations"])
    else:
        from multilabelfy.catalogue import from_csv

        catalogue = from_csv(folder / "classes.csv")
        if phase == "disagreements":
            from multilabelfy.disagreement import analyse_exports

            analyse_exports([folder / "export.json"], folder / "analysis", catalogue, required=2, progress=False)
        else:
            from multilabelfy.finalize import finalize

            finalize(folder / "analysis", [folder / "refinement.json"], catalogue, folder / "final")
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu_start,
                      "peak_mib": peak_mib()}))


def measure(phase: str, folder: Path) -> dict:
    output = subprocess.run([sys.executable, __file__, "--phase", phase, "--folder", str(folder)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500_000, help="tasks in the export (2 annotations each)")
    parser.add_argument("--work", help="folder for the export and outputs, kept (default: a temporary folder)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args.phase, Path(args.folder))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.work or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        catalogue = write_catalogue(folder / "classes.csv")
        meta = folder / "export.meta.json"
        if meta.is_file() and json.loads(meta.read_text()) == {"images": args.images}:
            print(f"export: reusing {folder / 'export.json'}")
        else:
            start = time.perf_counter()
            annotations = write_export(folder / "export.json", catalogue, args.images)
            meta.write_text(json.dumps({"images": args.images}))
            print(f"export: {args.images:,} images, {annotations:,} annotations (written in "
                  f"{time.perf_counter() - start:.0f} s)")
        print(f"export file: {(folder / 'export.json').stat().st_size / 2**20:,.0f} MiB")
        parse = measure("parse", folder)
        analysis = measure("disagreements", folder)
        refined = write_refinement_export(folder / "analysis", folder / "refinement.json", catalogue)
        parse_refinement = measure("parse-refinement", folder)
        final = measure("finalize", folder)
        print(f"refinement export: {refined:,} images")
        print(f"{'phase':<18}{'wall s':>9}{'CPU s':>9}{'peak MiB':>10}{'CPU x parse':>13}")
        for name, figures, floor in (("parse export", parse, parse), ("disagreements", analysis, parse),
                                     ("parse refinement", parse_refinement, parse_refinement),
                                     ("finalize", final, parse_refinement)):
            print(f"{name:<18}{figures['seconds']:>9.1f}{figures['cpu_seconds']:>9.1f}{figures['peak_mib']:>10.0f}"
                  f"{figures['cpu_seconds'] / floor['cpu_seconds']:>13.2f}")

if __name__ == "__main__":
    main()
