"""Command-line options that several sub-commands share, defined once."""

from __future__ import annotations

import argparse

from multilabelfy.catalogue import IMAGENET_1K
from multilabelfy.errors import UserError


def add_label_studio_options(parser: argparse.ArgumentParser, url_flag: str = "--url") -> None:
    """``--url`` (or ``url_flag``) and ``--api-key`` of the Label Studio to talk to, falling back to the
    environment variables Label Studio users already set."""
    parser.add_argument(url_flag, dest="ls_url", default=None, help="Label Studio URL (default: $LABEL_STUDIO_URL)")
    parser.add_argument("--api-key", default=None, help="Label Studio API key (default: $LABEL_STUDIO_API_KEY)")


def label_studio_client(args: argparse.Namespace):
    """The client for the options added by ``add_label_studio_options`` (checks URL and key on connect)."""
    from multilabelfy.labelstudio.client import LabelStudioClient

    return LabelStudioClient.from_env(args.ls_url, args.api_key)


def add_catalogue_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalogue", default=IMAGENET_1K,
                        help=f"class catalogue: '{IMAGENET_1K}' (default) or a CSV of the team's classes "
                             f"(the one `propose` used)")


def add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def comma_separated(text: str) -> list[str]:
    """The non-empty items of a comma-separated option value."""
    return [part.strip() for part in text.split(",") if part.strip()]


def project_ids(text: str, flag: str) -> list[int]:
    """Label Studio project ids from ``flag``'s value, e.g. ``12,13``."""
    try:
        return [int(part) for part in comma_separated(text)]
    except ValueError:
        raise UserError(f"{flag} {text!r} must be a project id or comma-separated ids, e.g. 12,13") from None
