"""One self-contained HTML page of the report: charts and thumbnails embedded as data URIs, so the file
can be mailed or attached to an issue and still show everything."""

from __future__ import annotations

import base64
import datetime
import html
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd

from .report import label_count_matrix

if TYPE_CHECKING:
    from .report import ReportTables

_NUMERIC = re.compile(r"^[-+−]?\d")
LOWEST_CLASSES = 20  # rows of the per-class tables: the classes that most need a look

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1150px;color:#222;
padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:2px solid #4c72b0;padding-bottom:.2em;margin-top:2em}
.meta{color:#666;font-size:.9em}
.cards{display:flex;flex-wrap:wrap;gap:.8em;margin:1em 0}
.card{background:#f4f6fa;border-radius:8px;padding:.7em 1.1em;min-width:8em}
.card b{display:block;font-size:1.5em;color:#4c72b0} .card span{font-size:.85em;color:#555}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f6fa} td:first-child,th:first-child{text-align:left}
img.chart{max-width:100%;border:1px solid #eee;margin:.5em 0}
.row{display:flex;gap:1em;align-items:flex-start} .row img.chart{max-width:49%}
td.t,th.t{text-align:left}
.gallery{display:flex;flex-wrap:wrap;gap:.6em}
.gallery figure{margin:0;width:170px;font-size:.75em;text-align:center;word-break:break-all}
.gallery img{max-width:160px;max-height:160px;border-radius:4px}
.note{color:#666;font-size:.9em}
"""


def page_head(title: str, meta: Sequence[str]) -> list[str]:
    """The start of a self-contained page: the shared style, the title and ``meta`` lines with the time written."""
    written = f"Written {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    return [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>", f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>", f"<h1>{escape(title)}</h1>",
        "<p class='meta'>" + "<br>".join(escape(line) for line in [*meta, written]) + "</p>",
    ]


def render(summary: Mapping[str, Any], tables: "ReportTables", charts: Mapping[str, Path],
           thumbnails: Sequence[bytes | None]) -> str:
    """The page as a string. ``charts``: chart key -> PNG path; ``thumbnails``: JPEG bytes (or None) for the
    first rows of ``tables.zero_label``."""
    parts = [
        *page_head("Multilabelfy report", [f"Labels: {summary['labels']}", f"Manifest: {summary['manifest']}"]),
        _summary_cards(summary),
        "<h2>How many labels each image has</h2>",
        embedded_chart(charts, "label_counts"),
        html_table(tables.distribution.assign(percent=tables.distribution["percent"].map("{:.2f}%".format)),
               {"label_count": "labels per image", "images": "images", "percent": "share"}),
    ]
    if len(tables.accuracies):
        parts += _models_section(summary, tables, charts)
    if len(tables.class_agreement):
        parts += [
            "<h2>Does the original label survive?</h2>",
            "<p>Per class, the share of its images whose original label is in the new label set.</p>",
            embedded_chart(charts, "class_agreement"),
            f"<h3>The {LOWEST_CLASSES} classes with the lowest agreement</h3>",
            html_table(tables.class_agreement.head(LOWEST_CLASSES).assign(
                agreement=lambda t: t["agreement"].map(percent)),
                {"class": "class", "name": "name", "images": "images", "kept": "kept", "no_label": "no valid label",
                 "agreement": "agreement"}),
        ]
    if tables.comparison is not None:
        parts += _comparison_section(summary, tables)
    if summary.get("audit"):
        parts += _audit_section(summary["audit"])
    parts += _gallery_section(tables, thumbnails)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _models_section(summary: Mapping[str, Any], tables: "ReportTables", charts: Mapping[str, Path]) -> list[str]:
    fit = summary["regression"]
    accuracies = tables.accuracies.sort_values("real_accuracy", ascending=False)
    models = accuracies.assign(gap=accuracies["real_accuracy"] - accuracies["top1"])
    by_count = tables.by_label_count
    cells = by_count.assign(cell=[percent(p) + ("" if _nan(u) else f" ± {100 * u:.1f}")
                                  for p, u in zip(by_count["top1"], by_count["margin"])])
    grid = label_count_matrix(cells, "cell", accuracies)
    images = dict(zip(by_count["label_count"], by_count["images"]))
    grid.columns = [f"{c} label{'' if c == '1' else 's'} (n = {images[c]:,})" for c in grid.columns]
    line = ("needs at least two models with different top-1" if fit["slope"] is None else
            f"ReaL = {fit['slope']:.3f} × top-1 + {100 * fit['intercept']:.2f} points, R² = {fit['r2']:.3f} "
            f"over {fit['n']} models")
    return [
        "<h2>Models on the original and the new labels</h2>",
        "<p>Top-1/top-5 count a prediction right when it names the original label; ReaL accuracy when the top-1 "
        "is any label of the image's new set (images with no valid label are left out, as ReaL does).</p>",
        html_table(models.assign(**{c: models[c].map(percent) for c in ("top1", "top5", "real_accuracy", "real_top5")},
                             gap=models["gap"].map(lambda g: "" if _nan(g) else f"{100 * g:+.2f}")),
               {"model": "model", "top1": "top-1", "top5": "top-5", "real_accuracy": "ReaL", "real_top5": "ReaL top-5",
                "gap": "ReaL − top-1 (points)"}),
        f"<h3>ReaL against top-1</h3><p>Linear fit: {escape(line)}.</p>",
        embedded_chart(charts, "real_vs_top1"),
        "<h3>Top-1 by label count</h3>",
        "<p>Top-1 accuracy (original labels) of images grouped by their number of new labels, with the 95% "
        "half-width U = 1.96·√(p(1−p)/n); blank where n &lt; 2.</p>",
        f"<div class='row'>{embedded_chart(charts, 'top1_heatmap')}{embedded_chart(charts, 'margin_heatmap')}</div>",
        html_table(grid.reset_index(), None),
    ]


def _comparison_section(summary: Mapping[str, Any], tables: "ReportTables") -> list[str]:
    comparison = summary["comparison"]
    _, per_image, per_class = tables.comparison  # type: ignore[misc]
    lowest = per_class.sort_values(["jaccard", "class"]).head(LOWEST_CLASSES)
    return [
        "<h2>Compared with another label set</h2>",
        f"<p>Other labels: {escape(comparison['labels'])}. Identical sets on {percent(comparison['identical'])} of images; "
        f"mean Jaccard {comparison['mean_jaccard']:.3f} (two empty sets count as agreeing).</p>",
        html_table(per_image.assign(jaccard=per_image["jaccard"].round(3)).query("~identical").head(LOWEST_CLASSES),
               {"image_id": "image", "count_a": "labels (this)", "count_b": "labels (other)", "common": "in both",
                "jaccard": "Jaccard"}, caption="First images whose sets differ"),
        html_table(lowest.assign(jaccard=lowest["jaccard"].round(3)),
               {"class": "class", "name": "name", "in_a": "images (this)", "in_b": "images (other)",
                "in_both": "in both", "jaccard": "Jaccard"},
               caption=f"The {LOWEST_CLASSES} classes the two sets agree on least"),
    ]


def _audit_section(audits: Sequence[Mapping[str, Any]]) -> list[str]:
    from multilabelfy.audit.report import headline_cards  # the audit pages' own cards (it imports this module)

    parts = ["<h2>Audit</h2>", "<p>Dataset audits run beside this report; an audit folder has its own page with the "
                               "details (the link is relative, so keep the folders side by side).</p>"]
    for audit in audits:
        where = (f"<a href='{escape(audit['page'])}'>{escape(audit['folder'])}</a>" if audit["page"]
                 else escape(audit["folder"]))
        parts += [f"<h3>{escape(audit['kind'])}: {where}</h3>",
                  headline_cards(audit["kind"], audit["figures"])]
    return parts


def _gallery_section(tables: "ReportTables", thumbnails: Sequence[bytes | None]) -> list[str]:
    zero = tables.zero_label
    parts = [f"<h2>Images with no valid label ({len(zero):,})</h2>"]
    if not len(zero):
        return parts + ["<p>Every image kept at least one label.</p>"]
    figures = []
    for (_, row), thumb in zip(zero.iterrows(), thumbnails):
        if thumb is None:
            continue
        name = row["name"] or ("" if row["class"] < 0 else str(row["class"]))
        figures.append(f"<figure><img src='data:image/jpeg;base64,{base64.b64encode(thumb).decode()}' "
                       f"alt='{escape(row['image_id'])}'><figcaption>{escape(row['image_id'])}<br><i>was: {escape(name)}</i>"
                       "</figcaption></figure>")
    if not figures:
        return parts + ["<p class='note'>No thumbnails: the manifest gives no readable local image paths. "
                        "The list is in zero_label_images.csv.</p>"]
    shown = f"{len(figures):,} of {len(zero):,} shown; " if len(figures) < len(zero) else ""
    return parts + [f"<p class='note'>{shown}all are listed in zero_label_images.csv.</p>",
                    f"<div class='gallery'>{''.join(figures)}</div>"]


def _summary_cards(summary: Mapping[str, Any]) -> str:
    shares = summary["label_count_percent"]
    more = sum(v for k, v in shares.items() if int(k) > 2)
    items = [(f"{summary['num_images']:,}", "images"), (percent(shares.get("0", 0) / 100), "no valid label"),
             (percent(shares.get("1", 0) / 100), "one label"), (percent(shares.get("2", 0) / 100), "two labels"),
             (percent(more / 100), "more than two")]
    if summary.get("original_label_kept") is not None:
        items.append((percent(summary["original_label_kept"]), "original label kept"))
    if summary["models"]:
        items.append((str(len(summary["models"])), "models"))
    return cards(items)


def cards(items: Sequence[tuple[Any, str]]) -> str:
    """A row of headline figures: (value, what it counts) pairs; values are formatted with ``format_cell``."""
    cells = "".join(f"<div class='card'><b>{escape(format_cell(v))}</b><span>{escape(k)}</span></div>"
                    for v, k in items)
    return f"<div class='cards'>{cells}</div>"


def embedded_chart(charts: Mapping[str, Path], key: str) -> str:
    if key not in charts:
        return ""
    data = base64.b64encode(Path(charts[key]).read_bytes()).decode()
    return f"<img class='chart' alt='{key}' src='data:image/png;base64,{data}'>"


def html_table(table: pd.DataFrame, headers: Mapping[str, str] | None, caption: str = "") -> str:
    columns = list(headers) if headers else list(table.columns)
    # a header sits over its column: left for words, right for numbers (judged by the first row)
    first = dict(zip(columns, next(table[columns].itertuples(index=False), [""] * len(columns))))
    head = "".join(f"<th{_align(first[c])}>{escape((headers or {}).get(c, c))}</th>" for c in columns)
    # words read left-aligned, numbers (also formatted ones such as '81.2% ± 1.3') right-aligned
    body = "".join("<tr>" + "".join(f"<td{_align(v)}>{escape(format_cell(v))}</td>" for v in row) + "</tr>"
                   for row in table[columns].itertuples(index=False))
    title = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _align(value: Any) -> str:
    return "" if _NUMERIC.match(format_cell(value)) else " class=t"


def format_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def percent(value: Any) -> str:
    return "" if _nan(value) else f"{100 * float(value):.2f}%"


def _nan(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)
