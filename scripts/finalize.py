"""``multilabelfy finalize``: snapshot the refinement projects, merge with the agreed images, write the labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from multilabelfy.scripts.options import (
    add_catalogue_option, add_label_studio_options, add_progress_option, comma_separated, label_studio_client,
    project_ids,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotation", required=True, help="the folder `multilabelfy disagreements` wrote")
    refinement = parser.add_mutually_exclusive_group()
    refinement.add_argument("--refinement", default="",
                            help="comma-separated refinement project ids; each is snapshot-exported to "
                                 "OUT/refinement-<id>.json first")
    refinement.add_argument("--refinement-exports", default="",
                            help="comma-separated refinement exports saved earlier (no server needed)")
    parser.add_argument("--out", required=True, help="folder for labels.json, labels_by_id.json, labels.csv, "
                                                     "unrefined.csv and summary.json")
    parser.add_argument("--manifest", default=None,
                        help="the dataset (folder, manifest or proposals Parquet) whose order labels.json follows; "
                             "its images without a task are reported (default: the tasks' order)")
    parser.add_argument("--allow-unrefined", action="store_true",
                        help="write labels even while images await refinement (as empty sets; listed in "
                             "unrefined.csv)")
    add_catalogue_option(parser)
    add_progress_option(parser)
    add_label_studio_options(parser)


def run(args: argparse.Namespace) -> int:
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.disagreement import users_by_id
    from multilabelfy.finalize import finalize

    catalogue = load_catalogue(args.catalogue)
    out = Path(args.out)
    exports = [Path(part) for part in comma_separated(args.refinement_exports)]
    users: dict[int, str] = {}
    refinement_ids = project_ids(args.refinement, "--refinement")
    if refinement_ids:
        client = label_studio_client(args)
        for project_id in refinement_ids:
            exports.append(client.export_snapshot(project_id, out / f"refinement-{project_id}.json"))
            print(f"saved a snapshot of refinement project {project_id} to {exports[-1]}")
        users = users_by_id(client.list_users())
    manifest_ids = None
    if args.manifest:
        from multilabelfy.analysis.manifest import read_manifest

        manifest_ids = read_manifest(args.manifest, catalogue).image_ids
    summary = finalize(args.annotation, exports, catalogue, out, manifest_ids=manifest_ids,
                       allow_unrefined=args.allow_unrefined, users=users, progress=not args.no_progress)
    stages = ", ".join(f"{stage} {count}" for stage, count in summary["stages"].items())
    counts = ", ".join(f"{k}: {v}" for k, v in summary["label_counts"].items())
    print(f"{summary['images']} images ({stages}); labels per image {counts}")
    if summary["stages"]["unrefined"] or summary["stages"]["not_annotated"]:
        print(f"images without final labels are listed in {out / 'unrefined.csv'} (written as empty sets)")
    if summary["changed_without_comment"]:
        print(f"{summary['changed_without_comment']} refined images changed labels without a comment (labels.csv)")
    print(f"final labels written to {out}")
    return 0
