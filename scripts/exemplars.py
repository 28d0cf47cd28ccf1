"""``multilabelfy exemplars``: about ten exemplar images per class, as JSON for the annotation UI."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("proposals", help="proposals Parquet of a labelled pool (`multilabelfy propose POOL ...`)")
    parser.add_argument("--out", required=True, help="JSON file: {class_id: [image path or URL, ...]}")
    parser.add_argument("--per-class", type=int, default=10, help="images per class (default 10)")
    parser.add_argument("--catalogue", default=None,
                        help="class catalogue (default: the one recorded in the proposals file)")


def run(args: argparse.Namespace) -> int:
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.errors import UserError
    from multilabelfy.exemplars import pick_exemplars
    from multilabelfy.fileio import write_json
    from multilabelfy.proposals.store import read_metadata, read_proposals

    if args.per_class < 1:
        raise UserError(f"--per-class must be at least 1, not {args.per_class}")
    proposals = read_proposals(args.proposals)
    catalogue = load_catalogue(args.catalogue or read_metadata(args.proposals).get("catalogue"))
    exemplars = pick_exemplars(proposals, catalogue, args.per_class)
    write_json(args.out, exemplars)
    short = sum(len(images) < args.per_class for images in exemplars.values())
    print(f"{args.out}: exemplars for {len(exemplars)} of {len(catalogue)} classes "
          f"({short} with fewer than {args.per_class})")
    return 0
