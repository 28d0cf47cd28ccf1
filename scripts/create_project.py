"""``multilabelfy create-project``: the Label Studio annotation project(s) for a proposals file."""

from __future__ import annotations

import argparse
import os

from multilabelfy.scripts.options import add_catalogue_option, add_label_studio_options, label_studio_client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--proposals", required=True, help="proposals Parquet from `multilabelfy propose`")
    parser.add_argument("--exemplars", default=None,
                        help="exemplars JSON {class_id: [image path or URL, ...]} from `multilabelfy exemplars`")
    parser.add_argument("--title", required=True, help="project title (with --batches K: 'TITLE (batch i/K)')")
    parser.add_argument("--annotators-per-image", type=int, default=2,
                        help="distinct annotators each image needs (project overlap; default: %(default)s)")
    parser.add_argument("--batches", type=int, default=1,
                        help="split the images, in manifest order, into this many projects (default: %(default)s)")
    add_catalogue_option(parser)
    parser.add_argument("--show-original-label", action="store_true",
                        help="show the dataset's label above the proposals (off by default: it anchors annotators)")
    add_label_studio_options(parser)
    parser.add_argument("--document-root", default=None,
                        help="the server's local-files document root, for local images "
                             "(default: $LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)")
    parser.add_argument("--chunk-size", type=int, default=500, help="tasks per import request (default: %(default)s)")
    parser.add_argument("--priority", default=None, metavar="RANKING",
                        help="ranking from `multilabelfy audit suspects`: its wrong/incomplete suspects come first, "
                             "in rank order (with --batches, in the first batch)")
    parser.add_argument("--priority-top", type=int, default=None, metavar="N",
                        help="with --priority: only the first N suspects go into the project(s) (a priority batch)")
    parser.add_argument("--duplicates", default=None, metavar="DIR",
                        help="folder from `multilabelfy audit duplicates` of the same images: each duplicated image's "
                             "task shows a 'possible duplicate of ...' note above the proposals")


def run(args: argparse.Namespace) -> int:
    from multilabelfy.annotation.project import DOCUMENT_ROOT_ENV, create_annotation_projects, read_exemplars
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.proposals.store import read_proposals

    proposals = read_proposals(args.proposals)
    if args.priority:
        from multilabelfy.audit.suspects import prioritise, read_ranking

        proposals = prioritise(proposals, read_ranking(args.priority), args.priority_top)
    exemplars = read_exemplars(args.exemplars) if args.exemplars else None
    catalogue = load_catalogue(args.catalogue)
    notes = None
    if args.duplicates:
        from multilabelfy.audit.duplicates import read_duplicate_notes

        notes = read_duplicate_notes(args.duplicates, [c.name for c in catalogue])
    client = label_studio_client(args)
    outcomes = create_annotation_projects(
        client, proposals, catalogue, args.title, exemplars=exemplars,
        annotators_per_image=args.annotators_per_image, batches=args.batches,
        document_root=args.document_root or os.environ.get(DOCUMENT_ROOT_ENV),
        show_original_label=args.show_original_label, source=str(args.proposals), chunk_size=args.chunk_size,
        duplicate_notes=notes,
    )
    for outcome in outcomes:
        state = "created" if outcome.created else "found"
        print(f"{outcome.title}: {state}, {outcome.imported} tasks imported, {outcome.already_present} already "
              f"there, {args.annotators_per_image} annotators per image: {outcome.url}")
    return 0
