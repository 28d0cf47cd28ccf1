"""``multilabelfy propose``: top-k class proposals for every image of a dataset, as a Parquet file."""

from __future__ import annotations

import argparse
import os

from multilabelfy.models import HUB, OFFLINE_LITE0, RANDOM
from multilabelfy.scripts.options import add_catalogue_option, add_progress_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="folder of class subfolders (WordNet ids or indices 0..999), "
                                        "or a .csv/.parquet manifest with 'image' and optional 'label', 'id' columns")
    parser.add_argument("--model", required=True, help="timm model name, e.g. efficientnet_lite0")
    parser.add_argument("--weights", default=HUB,
                        help=f"'{HUB}' (timm pretrained, default), a local checkpoint path, '{OFFLINE_LITE0}' "
                             f"(offline ImageNet weights for efficientnet_lite0) or '{RANDOM}'")
    parser.add_argument("--out", required=True, help="output Parquet; unreadable images go to <out>.errors.csv")
    parser.add_argument("--top-k", type=int, default=20, help="proposals per image (default 20)")
    add_catalogue_option(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                        help="DataLoader worker processes that read and transform images (0: in the main process)")
    parser.add_argument("--chunk-size", type=int, default=1024,
                        help="images per chunk file; a killed run resumes from the last finished chunk")
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda, cuda:1 (default: cuda if available)")
    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.dataset import read_dataset
    from multilabelfy.models import create_classifier
    from multilabelfy.proposals.run import run_proposals

    catalogue = load_catalogue(args.catalogue)
    records = read_dataset(args.dataset, catalogue)
    classifier = create_classifier(args.model, args.weights)
    summary = run_proposals(
        records, classifier, catalogue, args.out,
        top_k=args.top_k, batch_size=args.batch_size, workers=args.workers, chunk_size=args.chunk_size,
        device=args.device, progress=not args.no_progress,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        state = "already up to date" if summary.up_to_date else "written"
        print(f"{summary.out}: {state}: proposals for {summary.proposed} of {summary.images} images; "
              f"{summary.errors} unreadable (listed in {summary.errors_file})")
    return 0
