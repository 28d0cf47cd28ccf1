"""Writing the audit's results: CSV/JSON for programs, PNG and one self-contained HTML page for people.

Each page uses the report's HTML helpers (``multilabelfy.analysis.html_report``), so the audit looks like the
main report; every file is written atomically, the HTML page last.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from multilabelfy.analysis import html_report as page
from multilabelfy.analysis.gallery import thumbnails
from multilabelfy.analysis.report import with_class_names, write_csv
from multilabelfy.errors import UserError
from multilabelfy.fileio import atomic_write, write_json

from .compare import Consolidation
from .suspects import KINDS

HTML, SUMMARY = "index.html", "summary.json"
SHOWN = 50  # rows of long tables and figures in galleries on a page
# each audit folder's summary.json names its kind under "audit"; these are the figures the main report
# (`multilabelfy report --audit DIR`) shows of it, as (summary key, what it counts)
HEADLINES: dict[str, tuple[tuple[str, str], ...]] = {
    "suspects": (("images", "images ranked"), ("wrong", "label likely wrong"),
                 ("incomplete", "label likely incomplete"), ("unsure", "unsure")),
    "duplicates": (("images", "images"), ("groups", "duplicate groups"), ("removable", "removable copies"),
                   ("exact_groups", "exact groups"), ("conflicting_groups", "groups with conflicting labels"),
                   ("cross_split_groups", "groups across splits"), ("unreadable", "unreadable")),
    "classes": (("synonym_pairs", "synonym pairs"), ("nested_pairs", "nested pairs"),
                ("co-occurring_pairs", "co-occurring pairs"), ("groups", "groups")),
    "compare": (("images_compared", "images in every source"), ("all_agree", "labelled identically"),
                ("all_agree_rate", "consistent subset")),
}


def _write_page(path: Path, title: str, source: str, parts: Sequence[str]) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join([*page.page_head(title, [source]), *parts, "</body></html>\n"]))


def _figure(thumb: bytes | None, caption: str) -> str:
    image = (f"<img src='data:image/jpeg;base64,{base64.b64encode(thumb).decode()}' alt=''>" if thumb
             else "<div class='note'>(no thumbnail)</div>")
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def _out_dir(out: str | os.PathLike) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"audit folder {out} is a file; pass --out a folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_suspects_page(ranking: pd.DataFrame, images: Mapping[str, str], path: str | os.PathLike,
                        source: str, shown: int = SHOWN) -> None:
    """HTML page of the ranking: counts per kind and the first ``shown`` suspects with thumbnails.

    ``ranking``: from ``rank_label_issues`` with ``add_class_names``; ``images``: image id -> path.
    """
    counts = ranking["kind"].astype(str).value_counts()
    top = ranking[ranking["kind"].astype(str).isin(("wrong", "incomplete"))].head(shown)
    thumbs = thumbnails([images.get(i) for i in top["image_id"]])
    figures = [_figure(t, f"#{r.rank} {page.escape(r.image_id)}<br><i>label: {page.escape(r.label_name)} "
                          f"({r.label_prob:.2f})</i><br>{page.escape(r.kind)}: {page.escape(r.suggested_name)} "
                          f"({r.suggested_prob:.2f})")
               for r, t in zip(top.itertuples(index=False), thumbs)]
    columns = ["rank", "image_id", "label_name", "label_prob", "top1_name", "top1_prob", "margin",
               "suggested_name", "kind"]
    head = min(shown, len(ranking))
    _write_page(Path(path), "Label-issue suspects", f"Proposals: {source}", [
        page.cards([(int(counts.get(k, 0)), k) for k in KINDS]),
        "<p>Confident learning on the proposals' top-k probabilities: <b>wrong</b> = the original label is below "
        "its class's usual confidence and another class is above its own; <b>incomplete</b> = both are; "
        "<b>unsure</b> = no class is. Ranked by kind, then margin (top-1 probability − label probability).</p>",
        f"<h2>The first {len(top)} suspects (wrong or incomplete)</h2>",
        f"<div class='gallery'>{''.join(figures)}</div>",
        f"<h2>The ranking's first {head} of {len(ranking)} images</h2>",
        page.html_table(ranking.head(shown)[columns].assign(
            label_prob=lambda t: t["label_prob"].round(3), top1_prob=lambda t: t["top1_prob"].round(3),
            margin=lambda t: t["margin"].round(3), kind=lambda t: t["kind"].astype(str)), None),
    ])


def write_duplicates(pairs: pd.DataFrame, groups: pd.DataFrame, summary: Mapping[str, Any],
                     errors: Sequence[tuple[str, str]], out: str | os.PathLike, class_names: Sequence[str] = (),
                     shown: int = SHOWN) -> Path:
    """``pairs.csv``, ``groups.csv``, ``unreadable.csv``, ``summary.json`` and ``index.html`` (the first ``shown``
    groups as thumbnail strips, conflicting groups first) into folder ``out``."""
    out = _out_dir(out)
    write_csv(pairs, out / "pairs.csv")
    write_csv(groups, out / "groups.csv")
    write_csv(pd.DataFrame(errors, columns=["image_id", "reason"]), out / "unreadable.csv")
    write_json(out / SUMMARY, {"audit": "duplicates", **summary})
    first = groups.drop_duplicates("group").sort_values(["conflict", "cross_split", "group_size", "group"],
                                                        ascending=[False, False, False, True]).head(shown)
    chosen = groups[groups["group"].isin(first["group"])]
    thumbs = dict(zip(chosen["image_id"], thumbnails(chosen["image"].tolist())))
    name = (lambda c: class_names[c] if 0 <= c < len(class_names) else ("?" if c < 0 else str(c)))
    strips = []
    for group in first["group"]:
        members = chosen[chosen["group"] == group]
        head = members.iloc[0]
        flags = ", ".join(f for f, on in (("labels conflict", head["conflict"]), ("across splits", head["cross_split"]))
                          if on)
        strips.append(f"<h3>Group {group}: {len(members)} {page.escape(head['kind'])} copies"
                      f"{' — ' + flags if flags else ''}</h3><div class='gallery'>" + "".join(
                          _figure(thumbs.get(r.image_id), f"{page.escape(r.image_id)}<br><i>{page.escape(r.split)}: "
                                                          f"{page.escape(name(int(r.label)))}</i>")
                          for r in members.itertuples(index=False)) + "</div>")
    _write_page(out / HTML, "Duplicates", f"Splits: {', '.join(summary['splits'])}", [
        headline_cards("duplicates", summary),
        "<p><b>Exact</b>: identical decoded pixels. <b>Near</b>: perceptual hash within the Hamming limit or "
        "embedding cosine similarity above the threshold (resized, re-encoded, cropped, brightened copies). "
        "All groups are in groups.csv, all pairs with their evidence in pairs.csv.</p>",
        *(strips or ["<p>No duplicates found.</p>"]),
    ])
    return out


def write_classes(pairs: pd.DataFrame, groups: pd.DataFrame, mass, class_names: Sequence[str], source: str,
                  out: str | os.PathLike, min_affinity: float) -> Path:
    """``pairs.csv``, ``groups.csv``, ``dendrogram.png`` (of the grouped classes), ``summary.json`` (pairs per
    relation, groups) and ``index.html`` into folder ``out``. ``pairs``/``groups``: from
    ``classes.overlapping_pairs``/``overlapping_groups``; ``mass``: (C, C)."""
    from .classes import RELATIONS, plot_dendrogram

    out = _out_dir(out)
    name = (lambda c: class_names[c] if 0 <= c < len(class_names) else str(c))
    pairs = pairs.assign(name_a=pairs["class_a"].map(name), name_b=pairs["class_b"].map(name))
    groups = groups.assign(name=groups["class"].map(name))
    dendrogram = out / "dendrogram.png"
    plot_dendrogram(mass, groups["class"].tolist(), [name(c) for c in range(len(mass))], dendrogram, min_affinity)
    write_csv(pairs, out / "pairs.csv")
    write_csv(groups, out / "groups.csv")
    counts = pairs["relation"].value_counts()
    members = groups.groupby("group")["name"].agg(" / ".join).reset_index(name="classes")
    summary = {"audit": "classes", "source": source, "pairs": int(len(pairs)),
               **{f"{r}_pairs": int(counts.get(r, 0)) for r in RELATIONS}, "groups": int(len(members))}
    write_json(out / SUMMARY, summary)
    _write_page(out / HTML, "Overlapping classes", f"Proposals: {source}", [
        headline_cards("classes", summary),
        "<p><b>synonym</b>: the model confuses the two both ways about equally; <b>nested</b>: images of the "
        "first class are often taken for the second, rarely the reverse (part of, or a subtype); "
        "<b>co-occurring</b>: rarely confused but often probable together (two objects in one picture). "
        "Groups: average-linkage clusters of the symmetrised probability mass.</p>",
        "<h2>Groups</h2>", page.embedded_chart({"dendrogram": dendrogram}, "dendrogram"),
        page.html_table(members, None),
        "<h2>Pairs</h2>",
        page.html_table(pairs.head(4 * SHOWN).round(3), {
            "name_a": "class a", "name_b": "class b", "relation": "relation", "strength": "strength",
            "a_to_b": "a taken for b", "b_to_a": "b taken for a", "together": "probable together",
            "images_a": "images a", "images_b": "images b"}),
    ])
    return out


def write_comparison(result: Consolidation, out: str | os.PathLike, class_names: Sequence[str] = ()) -> Path:
    """``per_image.csv``, ``per_class.csv`` (with a ``name`` column from ``class_names``), ``pairwise.csv``,
    ``consistent.json`` (a keyed label file that ``read_label_sets`` reads), ``summary.json`` and ``index.html``
    into folder ``out``."""
    out = _out_dir(out)
    summary = {"audit": "compare", **result.summary()}
    per_class = with_class_names(result.per_class, class_names)
    write_csv(result.per_image, out / "per_image.csv")
    write_csv(per_class, out / "per_class.csv")
    write_csv(result.pairwise, out / "pairwise.csv")
    write_json(out / "consistent.json", result.consistent, indent=None)
    write_json(out / SUMMARY, summary)
    differ = result.per_image[~result.per_image["agree"]].head(SHOWN)
    _write_page(out / HTML, "Relabelings compared", f"Sources: {', '.join(result.sources)}", [
        headline_cards("compare", summary),
        "<p>The consistent subset (consistent.json) holds the images every source labels identically.</p>",
        page.html_table(result.coverage, None, caption="Images per source"),
        page.html_table(result.pairwise.round(4), None, caption="Agreement of each pair of sources"),
        page.html_table(pd.DataFrame(summary["differing_most"], columns=["source", "images where it differs"]), None,
                    caption="Which source differs from the majority"),
        page.html_table(per_class.head(SHOWN).round(3), None, caption="Classes with the least agreement"),
        page.html_table(differ, None, caption="First images whose sets differ"),
    ])
    return out


def headline_cards(kind: str, figures: Mapping[str, Any]) -> str:
    """The cards of an audit's headline figures (``HEADLINES[kind]``; rates as percentages), on its own page and
    in the main report's Audit section."""
    return page.cards([(page.percent(figures[key]) if key.endswith("_rate") else figures[key], label)
                       for key, label in HEADLINES[kind]])


def read_headlines(folder: str | os.PathLike, relative_to: str | os.PathLike) -> dict[str, Any]:
    """What the main report shows of an audit: ``{"kind", "folder", "page" (its index.html relative to
    ``relative_to``, the report's folder; None for a suspects ranking, which has no page of its own), "figures":
    {summary key: value}}``. ``folder`` is a folder written by ``multilabelfy audit duplicates|classes|compare``
    or the ranking file of ``multilabelfy audit suspects``; anything else is a ``UserError``."""
    if Path(folder).is_file():
        return _suspects_headlines(Path(folder))
    folder = Path(folder)
    path = folder / SUMMARY
    if not path.is_file():
        raise UserError(f"audit folder {folder} has no {SUMMARY}; pass a folder written by `multilabelfy audit "
                        f"duplicates|classes|compare` or a ranking file of `multilabelfy audit suspects`")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}); re-run the audit") from None
    kind = summary.get("audit") if isinstance(summary, dict) else None
    if kind not in HEADLINES:
        raise UserError(f"{path} is not an audit summary (no 'audit' kind among {', '.join(HEADLINES)}); pass a "
                        f"folder written by `multilabelfy audit duplicates|classes|compare`")
    missing = [key for key, _ in HEADLINES[kind] if key not in summary]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; re-run `multilabelfy audit {kind}`")
    return {"kind": kind, "folder": str(folder), "page": Path(os.path.relpath(folder / HTML, relative_to)).as_posix(),
            "figures": {key: summary[key] for key, _ in HEADLINES[kind]}}


def _suspects_headlines(path: Path) -> dict[str, Any]:
    from .suspects import issue_counts, read_ranking

    ranking = read_ranking(path)
    figures = {"images": len(ranking), **issue_counts(ranking)}
    return {"kind": "suspects", "folder": str(path), "page": None,
            "figures": {key: figures[key] for key, _ in HEADLINES["suspects"]}}
