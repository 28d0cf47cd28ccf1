"""``multilabelfy spawn-refinement``: one refinement project per expert, with the images that need it."""

from __future__ import annotations

import argparse

from multilabelfy.scripts.options import (
    add_catalogue_option, add_label_studio_options, add_progress_option, label_studio_client,
)



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="folder", required=True, help="the folder `multilabelfy disagreements` wrote")
    parser.add_argument("--annotators", required=True,
                        help="comma-separated emails of the experienced annotators, e.g. a@lab.org,b@lab.org; "
                             "missing Label Studio users are created")
    parser.add_argument("--title", default=None,
                        help="base of the projects' titles, '<title> - refine <annotator>' (default: the "
                             "annotation project's title without its batch suffix)")
    add_catalogue_option(parser)
    add_label_studio_options(parser)
    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    from multilabelfy.catalogue import load_catalogue
    from multilabelfy.refinement import ASSIGNMENT_FILE, spawn_refinement

    client = label_studio_client(args)
    assignment = spawn_refinement(client, args.folder, args.annotators.split(","), load_catalogue(args.catalogue),
                                  title=args.title, progress=not args.no_progress)
    for project in assignment["projects"]:
        print(f"{project['annotator']}: project {project['project']} with {project['images']} images "
              f"({project['imported_now']} added now): {project['url']}")
    if not assignment["projects"]:
        print(f"no image of {args.folder} needs refinement; nothing was created. Next: "
              f"multilabelfy finalize --annotation {args.folder} --out FINAL")
        return 0
    ids = ",".join(str(project["project"]) for project in assignment["projects"])
    print(f"assignment written to {args.folder}/{ASSIGNMENT_FILE}; when done: "
          f"multilabelfy finalize --annotation {args.folder} --refinement {ids} --out FINAL")
    return 0
