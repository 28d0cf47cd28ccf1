"""The report: read inputs, compute every table (``metrics``), then write JSON, CSV, PNG and one HTML file.

Computing (:func:`compute_report`) and writing (:func:`write_report`) are apart, so the numbers can be had
without drawing anything; :func:`build_report` does both from file paths, as ``multilabelfy report`` does.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from multilabelfy.errors import UserError
from multilabelfy.fileio import atomic_write, write_json

from . import metrics
from .labelsets import LabelSets, read_label_sets
from .manifest import UNKNOWN, Manifest, read_manifest
from .predictions import Predictions, read_predictions

# files of DIR; index.html is written last
SUMMARY, HTML = "summary.json", "index.html"
COMPARISON_CSVS = ("comparison_per_image.csv", "comparison_per_class.csv")
CHARTS = {
    "label_counts": "label_counts.png",
    "real_vs_top1": "real_vs_top1.png",
    "top1_heatmap": "top1_by_label_count.png",
    "margin_heatmap": "margin_by_label_count.png",
    "class_agreement": "class_agreement.png",
}


@dataclass
class ReportTables:
    """Everything the report shows, as tables (fractions in [0, 1]; see ``metrics`` for each one's meaning)."""

    manifest: Manifest
    label_sets: LabelSets
    distribution: pd.DataFrame
    accuracies: pd.DataFrame
    regression: dict[str, float]
    by_label_count: pd.DataFrame
    class_agreement: pd.DataFrame
    zero_label: pd.DataFrame
    comparison: tuple[LabelSets, pd.DataFrame, pd.DataFrame] | None = None
    # audit folders' headline figures (``multilabelfy.audit.report.read_headlines``), shown as the Audit section
    audits: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def compute_report(manifest: Manifest, label_sets: LabelSets, predictions: Sequence[Predictions],
                   num_classes: int, class_names: Sequence[str] = (), cap: int = 4,
                   compare: LabelSets | None = None) -> ReportTables:
    """All tables of the report. ``label_sets`` and every prediction must be in ``manifest`` order."""
    started = time.perf_counter()
    names = [p.name for p in predictions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(f"model name {duplicates[0]!r} is given twice; name models apart with NAME=PATH")
    topk = {p.name: p.topk for p in predictions}
    counts = label_sets.counts()
    labels = manifest.labels
    accuracies = metrics.model_accuracies(topk, labels, label_sets)
    zero = np.flatnonzero(counts == 0)
    tables = ReportTables(
        manifest=manifest,
        label_sets=label_sets,
        distribution=metrics.label_count_distribution(counts),
        accuracies=accuracies,
        regression=metrics.linear_fit(accuracies["top1"], accuracies["real_accuracy"]),
        by_label_count=metrics.top1_by_label_count(topk, labels, counts, cap),
        class_agreement=with_class_names(metrics.class_agreement(labels, label_sets, num_classes), class_names),
        zero_label=with_class_names(pd.DataFrame({
            "image_id": [manifest.image_ids[i] for i in zero],
            "image": [manifest.images[i] for i in zero],
            "class": labels[zero],
        }), class_names),
    )
    if compare is not None:
        per_image, per_class = metrics.compare_label_sets(label_sets, compare, num_classes)
        tables.comparison = (compare, per_image, with_class_names(per_class, class_names))
    tables.seconds["compute"] = time.perf_counter() - started
    return tables


def summary(tables: ReportTables) -> dict[str, Any]:
    """The numbers as JSON-ready data (NaN becomes ``null``); the layout is documented in docs/architecture.md."""
    distribution = tables.distribution
    known = tables.manifest.labels != UNKNOWN
    agreement = tables.class_agreement
    models: dict[str, Any] = {}
    for _, row in tables.accuracies.iterrows():
        groups = tables.by_label_count[tables.by_label_count["model"] == row["model"]]
        models[row["model"]] = {
            **{k: _number(row[k]) for k in ("top1", "top5", "real_accuracy", "real_top5")},
            "top1_by_label_count": {g: _number(v) for g, v in zip(groups["label_count"], groups["top1"])},
            "margin_by_label_count": {g: _number(v) for g, v in zip(groups["label_count"], groups["margin"])},
        }
    first = tables.by_label_count.drop_duplicates("label_count")
    result: dict[str, Any] = {
        "labels": tables.label_sets.source,
        "manifest": tables.manifest.source,
        "num_images": len(tables.label_sets),
        "label_count_distribution": {str(c): int(n)
                                     for c, n in zip(distribution["label_count"], distribution["images"])},
        "label_count_percent": {str(c): _number(p)
                                for c, p in zip(distribution["label_count"], distribution["percent"])},
        "images_with_original_label": int(known.sum()),
        "original_label_kept": _number(agreement["kept"].sum() / max(int(agreement["images"].sum()), 1))
        if len(agreement) else None,
        "images_by_label_count": {g: int(n) for g, n in zip(first["label_count"], first["images"])},
        "models": models,
        "regression": {k: v if k == "n" else _number(v) for k, v in tables.regression.items()},
    }
    if tables.comparison is not None:
        other, per_image, per_class = tables.comparison
        result["comparison"] = {
            "labels": other.source,
            "identical": _number(per_image["identical"].mean()),
            "mean_jaccard": _number(per_image["jaccard"].mean()),
            "classes_compared": int(len(per_class)),
        }
    if tables.audits:
        result["audit"] = tables.audits
    return result


def write_report(tables: ReportTables, out: str | os.PathLike, gallery_size: int = 200) -> dict[str, Any]:
    """Write summary.json, the CSVs, the PNG charts and index.html into ``out``; return the summary.

    Every file is written atomically; index.html comes last. At most ``gallery_size`` zero-label images get
    thumbnails. Re-running over the same ``out`` replaces the files.
    """
    from . import gallery, html_report, plots

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"report folder {out} is a file; pass --out a folder")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = summary(tables)
    write_json(out / SUMMARY, result)
    write_csv(tables.distribution, out / "label_counts.csv")
    write_csv(tables.accuracies, out / "models.csv")
    write_csv(tables.by_label_count, out / "top1_by_label_count.csv")
    write_csv(tables.class_agreement, out / "class_agreement.csv")
    write_csv(tables.zero_label, out / "zero_label_images.csv")
    if tables.comparison is not None:
        for table, name in zip(tables.comparison[1:], COMPARISON_CSVS):
            write_csv(table, out / name)

    charts: dict[str, Path] = {}
    steps = [("label_counts", lambda p: plots.plot_label_counts(tables.distribution, p))]
    if len(tables.accuracies):
        top1 = label_count_matrix(tables.by_label_count, "top1", tables.accuracies)
        margin = label_count_matrix(tables.by_label_count, "margin", tables.accuracies)
        steps += [
            ("real_vs_top1", lambda p: plots.plot_real_vs_top1(tables.accuracies, tables.regression, p)),
            ("top1_heatmap", lambda p: plots.plot_heatmap(
                top1, p, "Top-1 accuracy (original labels) by label count", "top-1 (%)")),
            ("margin_heatmap", lambda p: plots.plot_heatmap(
                margin, p, "95% half-width U of top-1 by label count", "U (percentage points)", cmap="magma_r")),
        ]
    if len(tables.class_agreement):
        steps.append(("class_agreement", lambda p: plots.plot_class_agreement(tables.class_agreement, p)))
    charts_started, charts_cpu = time.perf_counter(), time.process_time()
    for key, draw in tqdm(steps, desc="charts", unit="chart", disable=None):
        draw(out / CHARTS[key])
        charts[key] = out / CHARTS[key]
    tables.seconds["charts"] = time.perf_counter() - charts_started
    tables.seconds["charts_cpu"] = time.process_time() - charts_cpu
    # a re-run without models or --compare must not leave the previous run's charts and tables beside it
    stale = [CHARTS[key] for key in CHARTS if key not in charts]
    stale += list(COMPARISON_CSVS) if tables.comparison is None else []
    for name in stale:
        (out / name).unlink(missing_ok=True)

    shown = tables.zero_label.head(gallery_size)
    thumbs = gallery.thumbnails(shown["image"].tolist())
    with atomic_write(out / HTML, "w", encoding="utf-8") as handle:
        handle.write(html_report.render(result, tables, charts, thumbs))
    tables.seconds["write"] = time.perf_counter() - started
    return result


def build_report(labels: str | os.PathLike, manifest: str | os.PathLike, predictions: Sequence[str],
                 out: str | os.PathLike, catalogue: str | None = None, compare: str | None = None,
                 cap: int = 4, gallery_size: int = 200, audits: Sequence[str | os.PathLike] = ()) -> ReportTables:
    """Read the files, compute and write the report (``multilabelfy report``). ``predictions``: PATH or NAME=PATH;
    ``audits``: folders written by ``multilabelfy audit duplicates|classes|compare`` (linked from the report) and
    ranking files of ``multilabelfy audit suspects``."""
    from multilabelfy.audit.report import read_headlines
    from multilabelfy.catalogue import load_catalogue

    # read before anything is computed or written, so a bad folder leaves no report behind
    headlines = [read_headlines(folder, out) for folder in audits]
    classes = load_catalogue(catalogue)
    the_manifest = read_manifest(manifest, classes)

    def read(path: str | os.PathLike) -> LabelSets:
        return read_label_sets(path, the_manifest, classes)

    label_sets = read(labels)
    other = read(compare) if compare else None
    models = [read_predictions(spec, the_manifest, len(classes))
              for spec in tqdm(predictions, desc="predictions", unit="model", disable=None)]
    tables = compute_report(the_manifest, label_sets, models, len(classes), [c.name for c in classes], cap, other)
    tables.audits = headlines
    write_report(tables, out, gallery_size)
    return tables


def _number(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def label_count_matrix(long: pd.DataFrame, column: str, accuracies: pd.DataFrame) -> pd.DataFrame:
    """``column`` of ``top1_by_label_count``'s long table as models x label-count groups, best top-1 model
    first (so a heatmap or table of it reads as a ranking)."""
    order = accuracies.sort_values("top1", ascending=False, na_position="last")["model"]
    table = long.pivot(index="model", columns="label_count", values=column)
    return table.loc[order, list(dict.fromkeys(long["label_count"]))]


def with_class_names(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Insert a ``name`` column after ``class`` (class index), blank for unknown classes or no names."""
    table = table.copy()
    table.insert(table.columns.get_loc("class") + 1, "name",
                 [names[c] if 0 <= c < len(names) else "" for c in table["class"]])
    return table


def write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        table.to_csv(handle, index=False)
