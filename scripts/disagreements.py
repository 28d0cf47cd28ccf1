"""``multilabelfy disagreements``: snapshot the annotation project(s) to disk, then decide every image."""

from __future__ import annotations

import argparse
from pathlib import Path

from multilabelfy.scripts.options import (
    add_catalogue_option, add_label_studio_options, add_progress_option, comma_separated, label_studio_client,
    project_ids,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--project", help="annotation project id, or comma-separated ids of its batches: each "
                                          "one's snapshot export is saved to OUT/export-<id>.json first")
    source.add_argument("--export", help="analyse Label Studio JSON exports saved earlier (comma-separated; "
                                         "no server needed)")
    parser.add_argument("--out", required=True, help="folder for the exports, decisions.parquet, "
                                                     "annotations.parquet and summary.json")
    parser.add_argument("--min-annotators", type=int, default=None,
                        help="distinct annotators an image needs to be AGREED (default: the projects' largest "
                             "overlap, or 2 with --export)")
    add_catalogue_option(parser)
    add_label_studio_options(parser)
    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.disagreement import analyse_exports, format_summary, users_by_id

    catalogue = load_catalogue(args.catalogue)
    out = Path(args.out)
    users: dict[int, str] = {}
    source: dict = {}
    batches = None
    required = args.min_annotators
    if args.project is not None:
        ids = project_ids(args.project, "--project")
        client = label_studio_client(args)
        projects = [client.get_project(project_id) for project_id in ids]
        exports = []
        for project in projects:  # every snapshot is on disk before anything is analysed
            exports.append(client.export_snapshot(project["id"], out / f"export-{project['id']}.json"))
            print(f"saved a snapshot of project {project['id']} ({project.get('title')!r}) to {exports[-1]}")
        users = users_by_id(client.list_users())
        batches = [project.get("title") or str(project["id"]) for project in projects]
        source = {"projects": ids, "titles": batches, "url": client.url}
        required = required or max(int(project.get("maximum_annotations") or 2) for project in projects)
    else:
        exports = [Path(part) for part in comma_separated(args.export)]
    summary = analyse_exports(exports, out, catalogue, required=required or 2, users=users, batches=batches,
                              source=source, progress=not args.no_progress)
    print(format_summary(summary))
    print(f"decisions, annotator rows and summary written to {out}")
    return 0
