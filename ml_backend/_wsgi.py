"""Server entry of the ML backend: the WSGI ``app`` for gunicorn, and a launcher that runs gunicorn.

    gunicorn --bind 127.0.0.1:9090 multilabelfy.ml_backend._wsgi:app    # what the Dockerfile runs
    python -m multilabelfy.ml_backend._wsgi                             # the same, settings from the environment

Gunicorn takes ``app`` once in each worker process: that reads the settings from the environment and loads
the model, so that /setup, which Label Studio allows 3 s, never waits for weights.
label-studio-ml 1.0.9 pins Flask 1.1.2 and Werkzeug 2.0.2, which have published advisories: Flask's
development server is never used, the default bind is loopback, and BASIC_AUTH_USER/PASS protect every route.
"""

from __future__ import annotations

import hmac
import logging
import os
import sys

from flask import Flask, Response, request

from multilabelfy.errors import UserError

logger = logging.getLogger("multilabelfy.ml_backend")


def _configure_logging() -> None:
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
        format="[%(asctime)s] [%(levelname)s] [%(process)d] [%(name)s] %(message)s",
    )
    # label-studio-ml logs request headers and bodies at DEBUG: basic-auth credentials and the access token
    # Label Studio sends in /setup. Secrets stay out of logs, so its loggers never go below INFO.
    logging.getLogger("label_studio_ml").setLevel(max(logging.getLogger().level, logging.INFO))


def _require_basic_auth(app: Flask, user: str, password: str) -> None:
    @app.before_request
    def check_basic_auth():
        auth = request.authorization
        if (
            auth is not None
            and hmac.compare_digest((auth.username or "").encode(), user.encode())
            and hmac.compare_digest((auth.password or "").encode(), password.encode())
        ):
            return None
        return Response("Unauthorized\n", 401, {"WWW-Authenticate": 'Basic realm="multilabelfy ML backend"'})


def create_app() -> Flask:
    """Read the settings, load the model into this process and build the label-studio-ml Flask app."""
    from label_studio_ml import api

    from multilabelfy.ml_backend.config import from_env
    from multilabelfy.ml_backend.manager import FixedModelManager
    from multilabelfy.ml_backend.model import MultilabelfyBackend
    from multilabelfy.ml_backend.runtime import load_runtime

    config = from_env()
    runtime = load_runtime(config)  # the weights, once per worker process
    logger.info(
        "model %s (weights %s) on %s, version %s", config.model_name, config.weights, runtime.engine.device,
        config.model_version,
    )
    # The library's routes call the module-level manager; ours keeps a fixed version and ignores webhooks.
    api._manager = FixedModelManager()
    app = api.init_app(
        model_class=MultilabelfyBackend,
        model_dir=str(config.model_dir) if config.model_dir else os.path.dirname(__file__),
        config=config,
    )
    if config.basic_auth:
        _require_basic_auth(app, *config.basic_auth)
    return app


def _gunicorn_command() -> list[str]:
    """gunicorn with HOST/PORT/WORKERS/THREADS from the environment; binds 127.0.0.1 unless told otherwise."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "9090")
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "--workers", os.environ.get("WORKERS", "1"),
        "--threads", os.environ.get("THREADS", "4"),
        # The watchdog must outlast loading the weights in a new worker and Label Studio's 100 s /predict.
        "--timeout", os.environ.get("GUNICORN_TIMEOUT", "300"),
        "--log-level", os.environ.get("LOG_LEVEL", "info").lower(),
        "--no-control-socket",  # gunicorn 27's admin socket in ~/.gunicorn: not needed, and shared between instances
        "multilabelfy.ml_backend._wsgi:app",
    ]


def __getattr__(name: str) -> Flask:
    """``app``, built on first access (gunicorn's, in each worker), so that importing this module does nothing."""
    global app
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    _configure_logging()
    try:
        app = create_app()
    except UserError as error:
        # One line for the operator instead of a traceback per worker; gunicorn then stops.
        logger.error("multilabelfy ML backend: %s", error)
        raise SystemExit(3) from None
    return app


if __name__ == "__main__":
    os.execv(sys.executable, _gunicorn_command())
