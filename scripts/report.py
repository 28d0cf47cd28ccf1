"""``multilabelfy report``: what the new labels say about models and the dataset, as JSON, CSV, PNG and HTML."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", required=True,
                        help="multi-label sets: labels.json (ReaL style), real.json, a keyed JSON such as "
                             "Multilabelfy's ImageNetV2 file, a CSV with image_id,labels, or 'imagenet-real'")
    parser.add_argument("--manifest", required=True,
                        help="the dataset in order: its folder or CSV/Parquet manifest (as for propose), a CSV of "
                             "image_id,label, or the proposals Parquet")
    parser.add_argument("--predictions", nargs="*", default=[], metavar="[NAME=]PATH",
                        help="top-k predictions per model: .npy (N, k), .csv or proposals .parquet; "
                             "the model's name is NAME or the file's name")
    parser.add_argument("--out", required=True, help="folder for summary.json, CSVs, PNG charts and index.html")
    parser.add_argument("--compare", help="a second label set of the same images to compare with --labels")
    parser.add_argument("--catalogue", default=None,
                        help="class catalogue: 'imagenet-1k' (default) or a CSV with an 'id' column")
    parser.add_argument("--max-label-count", type=int, default=4, metavar="K",
                        help="group images with K or more labels together in per-label-count figures (default 4)")
    parser.add_argument("--gallery", type=int, default=200, metavar="N",
                        help="thumbnails of at most N zero-label images in index.html (default 200)")
    parser.add_argument("--audit", nargs="+", default=[], metavar="DIR|RANKING",
                        help="folders written by `multilabelfy audit duplicates|classes|compare` and ranking files "
                             "of `multilabelfy audit suspects`: their headline figures go into summary.json and an "
                             "Audit section of index.html (with links to the audits' pages)")


def run(args: argparse.Namespace) -> int:
    from multilabelfy.analysis.report import HTML, build_report
    from multilabelfy.errors import UserError

    if args.max_label_count < 1:
        raise UserError(f"--max-label-count must be at least 1, got {args.max_label_count}")
    if args.gallery < 0:
        raise UserError(f"--gallery must be 0 or more, got {args.gallery}")
    tables = build_report(args.labels, args.manifest, args.predictions, args.out, catalogue=args.catalogue,
                          compare=args.compare, cap=args.max_label_count, gallery_size=args.gallery,
                          audits=args.audit)
    log.info("report of %d images and %d models: %s/%s (compute %.2f s, files %.2f s)", len(tables.label_sets),
             len(tables.accuracies), args.out, HTML, tables.seconds["compute"], tables.seconds["write"])
    return 0
