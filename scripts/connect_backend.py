"""``multilabelfy connect-backend``: make a running ML backend the project's pre-annotation source."""

from __future__ import annotations

import argparse
import os

from multilabelfy.errors import UserError
from multilabelfy.scripts.options import add_label_studio_options, label_studio_client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", type=int, required=True, help="Label Studio project id")
    parser.add_argument("--url", required=True,
                        help="the backend's URL as Label Studio reaches it, e.g. http://127.0.0.1:9090")
    parser.add_argument("--title", default="multilabelfy", help="the backend entry's title (default: %(default)s)")
    add_label_studio_options(parser, url_flag="--ls-url")
    parser.add_argument("--basic-auth", action="store_true",
                        help="the backend requires basic auth: send $BASIC_AUTH_USER and $BASIC_AUTH_PASS")
    parser.add_argument("--no-prelabel", action="store_true",
                        help="leave the project's pre-labelling settings alone")
    parser.add_argument("--retrieve", action="store_true",
                        help="then ask the backend for predictions of every task that has none from this version")


def run(args: argparse.Namespace) -> int:
    from multilabelfy.ml_backend.connect import connect_backend, retrieve_predictions

    if not args.url.startswith(("http://", "https://")):
        raise UserError(f"--url {args.url!r} must start with http:// or https://")
    basic_auth = None
    if args.basic_auth:
        user, password = os.environ.get("BASIC_AUTH_USER", ""), os.environ.get("BASIC_AUTH_PASS", "")
        if not user or not password:
            raise UserError("--basic-auth needs BASIC_AUTH_USER and BASIC_AUTH_PASS in the environment")
        basic_auth = (user, password)
    client = label_studio_client(args)
    connection = connect_backend(client, args.project, args.url, title=args.title, basic_auth=basic_auth,
                                 prelabel=not args.no_prelabel)
    backend = connection.backend
    print(f"{'connected' if connection.created else 'already connected'}: ML backend {backend.get('id')} "
          f"({args.url}, state {backend.get('state')}) on project {args.project}"
          + (f"; removed {connection.webhooks_removed} stray webhook(s)" if connection.webhooks_removed else ""))
    if args.retrieve:
        count = retrieve_predictions(client, args.project)
        print(f"predictions requested for {count} task(s) of project {args.project} (Label Studio skips those that "
              f"have them): {client.project_url(args.project)}")
    return 0
