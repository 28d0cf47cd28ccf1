"""``multilabelfy audit``: what to annotate first and what to fix without annotating.

Sub-commands: ``suspects`` (label-issue ranking), ``duplicates`` (exact and near copies within and across splits),
``classes`` (overlapping classes), ``compare`` (several relabelings of the same images).
"""

from __future__ import annotations

import argparse
import logging
import os

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from multilabelfy.audit.duplicates import DEFAULT_MAX_HAMMING, DEFAULT_MIN_COSINE, DEFAULT_NEIGHBOURS
    from multilabelfy.models import HUB, OFFLINE_LITE0, RANDOM

    commands = parser.add_subparsers(dest="audit_command", metavar="AUDIT", required=True)
    catalogue_help = "class catalogue: 'imagenet-1k' or a CSV with an 'id' column (default: the proposals' own)"

    sub = commands.add_parser("suspects", help="rank images whose original label is most likely wrong or incomplete")
    sub.add_argument("--proposals", required=True, help="proposals Parquet from `multilabelfy propose`")
    sub.add_argument("--out", required=True, help="the ranking: .csv or .parquet")
    sub.add_argument("--html", help="also an HTML page of the first suspects with thumbnails")
    sub.add_argument("--catalogue", help=catalogue_help)
    sub.add_argument("--min-images", type=int, default=1,
                     help="classes with fewer labelled images use the mean threshold of the others (default 1)")
    sub.set_defaults(_audit=_suspects)

    sub = commands.add_parser("duplicates", help="exact and near duplicate images, within a split and across two")
    sub.add_argument("dataset", help="folder of class subfolders or a .csv/.parquet manifest")
    sub.add_argument("--against", help="a second split (e.g. train) to search for copies of DATASET's images; "
                                       "the outputs name each split by its folder or manifest name")
    sub.add_argument("--out", required=True, help="folder for pairs.csv, groups.csv, summary.json, index.html")
    sub.add_argument("--cross-only", action="store_true", help="with --against: only pairs across the two splits")
    sub.add_argument("--model", help="timm model for the embeddings, e.g. efficientnet_lite0")
    sub.add_argument("--weights", default=HUB, help=f"'{HUB}' (default), a checkpoint path, '{OFFLINE_LITE0}' "
                                                    f"or '{RANDOM}'")
    sub.add_argument("--no-embeddings", action="store_true",
                     help="hashes only (no model): finds exact and resized/re-encoded copies, not crops")
    sub.add_argument("--max-hamming", type=int, default=DEFAULT_MAX_HAMMING,
                     help=f"perceptual-hash bits two near copies may differ in (default {DEFAULT_MAX_HAMMING})")
    sub.add_argument("--min-cosine", type=float, default=DEFAULT_MIN_COSINE,
                     help=f"embedding cosine similarity of near copies (default {DEFAULT_MIN_COSINE})")
    sub.add_argument("--neighbours", type=int, default=DEFAULT_NEIGHBOURS,
                     help=f"nearest neighbours searched per image (default {DEFAULT_NEIGHBOURS})")
    sub.add_argument("--search", choices=("auto", "exact", "faiss"), default="auto",
                     help="nearest-neighbour search: exact blocks, or a faiss IVF index (auto: faiss for large sets)")
    sub.add_argument("--catalogue", default=None, help="class catalogue (default imagenet-1k)")
    sub.add_argument("--batch-size", type=int, default=64)
    sub.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    sub.add_argument("--device", default=None, help="e.g. cpu, cuda (default: cuda if available)")
    sub.add_argument("--no-progress", action="store_true")
    sub.set_defaults(_audit=_duplicates)

    sub = commands.add_parser("classes", help="groups of overlapping classes from the model's confusion")
    sub.add_argument("--proposals", required=True, help="proposals Parquet of a labelled set")
    sub.add_argument("--out", required=True, help="folder for pairs.csv, groups.csv, dendrogram.png, index.html")
    sub.add_argument("--catalogue", help=catalogue_help)
    sub.add_argument("--min-confusion", type=float, default=0.1,
                     help="top-1 confusion rate that makes a synonym or nested pair (default 0.1)")
    sub.add_argument("--symmetry", type=float, default=0.5,
                     help="smaller/larger confusion rate of a synonym pair; below: nested (default 0.5)")
    sub.add_argument("--min-together", type=float, default=0.2,
                     help="share of images where both classes are probable, for co-occurring (default 0.2)")
    sub.add_argument("--min-prob", type=float, default=0.1, help="'probable' for co-occurrence (default 0.1)")
    sub.add_argument("--min-affinity", type=float, default=0.2,
                     help="group cut: classes whose mutual probability mass is at least this (default 0.2)")
    sub.set_defaults(_audit=_classes)

    sub = commands.add_parser("compare", help="consolidate several relabelings of the same images")
    sub.add_argument("labels", nargs="+", metavar="[NAME=]LABELS",
                     help="label files: labels.json, real.json or 'imagenet-real', keyed JSON, CSV image_id,labels")
    sub.add_argument("--out", required=True, help="folder for per_image.csv, per_class.csv, consistent.json, ...")
    sub.add_argument("--manifest", help="names the images of positional (ReaL-style list) files")
    sub.add_argument("--catalogue", default=None, help="class catalogue, to read class ids such as WordNet ids")
    sub.set_defaults(_audit=_compare)


def run(args: argparse.Namespace) -> int:
    return int(args._audit(args) or 0)


def _catalogue(spec, proposals_path):
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.proposals.store import read_metadata

    return load_catalogue(spec or read_metadata(proposals_path).get("catalogue"))


def _proposal_arrays(args):
    from multilabelfy.audit.suspects import topk_arrays
    from multilabelfy.errors import UserError
    from multilabelfy.proposals.store import read_proposals

    proposals = read_proposals(args.proposals)
    catalogue = _catalogue(args.catalogue, args.proposals)
    indices, probs = topk_arrays(proposals)
    if len(indices) and indices.max() >= len(catalogue):
        raise UserError(f"proposals file {args.proposals} has class {indices.max()} beyond catalogue "
                        f"{catalogue.source}; pass the matching --catalogue")
    labels = proposals["label"].fillna(-1).to_numpy(dtype="int64")
    return proposals, catalogue, labels, indices, probs


def _suspects(args) -> int:
    from multilabelfy.audit import suspects
    from multilabelfy.audit.report import write_suspects_page

    proposals, catalogue, labels, indices, probs = _proposal_arrays(args)
    ranking = suspects.rank_label_issues(indices, probs, labels, len(catalogue), proposals["image_id"].tolist(),
                                         args.min_images)
    ranking = suspects.add_class_names(ranking, [c.name for c in catalogue])
    suspects.write_ranking(ranking, args.out)
    if args.html:
        write_suspects_page(ranking, dict(zip(proposals["image_id"], proposals["image"])), args.html, args.proposals)
    counts = suspects.issue_counts(ranking)
    print(f"{args.out}: {len(ranking)} labelled images ranked: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    return 0


def _duplicates(args) -> int:
    from multilabelfy.audit import duplicates as dup
    from multilabelfy.audit.report import write_duplicates
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.dataset import read_dataset
    from multilabelfy.errors import UserError

    if args.no_embeddings == bool(args.model):
        raise UserError("pass --model NAME for embeddings (e.g. efficientnet_lite0), or --no-embeddings for hashes "
                        "only")
    if args.cross_only and not args.against:
        raise UserError("--cross-only needs --against OTHER_SPLIT")
    catalogue = load_catalogue(args.catalogue)
    classifier = None
    if args.model:
        from multilabelfy.models import create_classifier

        classifier = create_classifier(args.model, args.weights)
    splits = [(_split_name(args.dataset, "dataset"), args.dataset)]
    if args.against:
        other = _split_name(args.against, "against")
        splits.append((other if other != splits[0][0] else "against", args.against))
    fingerprints = dup.Fingerprints.concat([
        dup.fingerprint_records(read_dataset(path, catalogue), name, classifier, args.batch_size, args.workers,
                                args.device, progress=not args.no_progress)
        for name, path in splits])
    pairs, groups = dup.find_duplicates(fingerprints, args.max_hamming, args.min_cosine, args.neighbours,
                                        args.search, args.cross_only, progress=not args.no_progress)
    summary = dup.duplicate_summary(pairs, groups, fingerprints)
    out = write_duplicates(pairs, groups, summary, fingerprints.errors, args.out, [c.name for c in catalogue])
    print(f"{out}: {summary['groups']} duplicate groups ({summary['exact_groups']} exact) holding "
          f"{summary['images_in_groups']} of {summary['images']} images; {summary['conflicting_groups']} with "
          f"conflicting labels, {summary['cross_split_groups']} across splits; {summary['unreadable']} unreadable")
    return 0


def _split_name(path: str, default: str) -> str:
    """A split's name in the outputs: its folder or manifest name (``val``, ``train``), else ``default``."""
    from pathlib import Path

    return Path(path).resolve().stem or default


def _classes(args) -> int:
    from multilabelfy.audit import classes
    from multilabelfy.audit.report import write_classes

    _, catalogue, labels, indices, probs = _proposal_arrays(args)
    top1, mass, together, images = classes.confusion_rates(labels, indices, probs, len(catalogue), args.min_prob)
    pairs = classes.overlapping_pairs(top1, together, images, args.min_confusion, args.symmetry, args.min_together)
    groups = classes.overlapping_groups(mass, pairs, args.min_affinity)
    out = write_classes(pairs, groups, mass, [c.name for c in catalogue], args.proposals, args.out,
                        args.min_affinity)
    counts = pairs["relation"].value_counts()
    print(f"{out}: {len(pairs)} overlapping pairs (" + ", ".join(f"{int(counts.get(r, 0))} {r}" for r in
                                                              classes.RELATIONS)
          + f") in {groups['group'].nunique()} groups")
    return 0


def _compare(args) -> int:
    from multilabelfy.analysis.labelsets import read_label_sets
    from multilabelfy.analysis.manifest import read_manifest
    from multilabelfy.analysis.predictions import parse_spec
    from multilabelfy.audit.compare import consolidate
    from multilabelfy.audit.report import write_comparison
    from multilabelfy.catalogue import load_catalogue

    catalogue = load_catalogue(args.catalogue)
    manifest = read_manifest(args.manifest, catalogue) if args.manifest else None
    sources, names = [], []
    for spec in args.labels:
        name, path = parse_spec(spec)
        raw = str(path)
        # a positional list needs the manifest for its ids; a keyed file keeps its own ids (any coverage)
        keyed = raw.lower().endswith(".csv") or (os.path.isfile(raw) and _starts_with_object(raw))
        sources.append(read_label_sets(raw, None if keyed else manifest, catalogue))
        names.append(name or path.stem)
    result = consolidate(sources, names, len(catalogue))
    out = write_comparison(result, args.out, [c.name for c in catalogue])
    summary = result.summary()
    print(f"{out}: {summary['all_agree']} of {summary['images_compared']} images labelled identically by "
          f"{len(names)} sources ({100 * (summary['all_agree_rate'] or 0):.2f}%)")
    return 0


def _starts_with_object(path: str) -> bool:
    """Whether a JSON file holds an object (keyed by image id) rather than a list, from its first character."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        head = handle.read(4096).lstrip()
    return head.startswith("{")

