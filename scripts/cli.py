"""The ``multilabelfy`` command: one sub-command per workflow step.

Each sub-command lives in its own module under ``multilabelfy.scripts`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Only the chosen sub-command's module is
imported, so ``multilabelfy --help`` stays fast and a command that needs no torch never loads it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from multilabelfy.errors import UserError

# name -> (module under multilabelfy.scripts, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "propose": ("propose", "top-k class proposals for every image of a dataset (Parquet)"),
    "select-model": ("select_model", "rank candidate models by ReaL accuracy on a multi-labelled reference"),
    "exemplars": ("exemplars", "pick exemplar images per class from a labelled pool's proposals (JSON)"),
    "create-project": ("create_project", "create the Label Studio annotation project(s) for a proposals file"),
    "demo": ("demo", "the annotation stage on bundled photos with a local Label Studio (`make demo`)"),
    "disagreements": ("disagreements", "snapshot an annotation project and decide which images need refinement"),
    "spawn-refinement": ("spawn_refinement", "one refinement project per expert with the images that need it"),
    "finalize": ("finalize", "merge agreed and refined labels into the final multi-labels (JSON, CSV)"),
    "report": ("report", "analysis and report of the final labels: label counts, model accuracy, charts, HTML"),
    "audit": ("audit", "dataset audit: label-issue suspects, duplicates, overlapping classes, relabelings compared"),
    "connect-backend": ("connect_backend", "connect the running ML backend to a project (idempotent)"),
}


def _build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multilabelfy",
        description="Turn a single-label image dataset into a multi-label one with timm models and Label Studio.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(f"multilabelfy.scripts.{module_name}")
            module.add_arguments(sub)
            sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    args = _build_parser(chosen).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args._run(args) or 0)
    except UserError as error:
        print(f"multilabelfy: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("multilabelfy: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
