"""label-studio-ml 1.0.9's model manager, with the three changes Label Studio 1.23 needs of this backend.

The library's manager keeps one model made by the last /setup, versions it by training jobs, and starts a
process per /webhook event. For a backend that serves fixed weights that goes wrong three ways:

- /setup answers ``INITIAL`` or a job id, which changes after any webhook, so Label Studio stops recognising
  earlier predictions and duplicates them on the next retrieve. Here the version is the configuration's
  (``BackendConfig.model_version``), the same in every worker and after every restart.
- /predict fails with 500 "Model is not loaded" in every gunicorn worker that did not itself receive the
  /setup. Here each request builds its model object from the label config it carries; that is cheap, since
  the weights are loaded once per worker process (``runtime.load_runtime``).
- /webhook forks a process that re-imports torch for every annotation event. This backend does not train, so
  webhooks (and the older /train) are acknowledged and nothing is started.

Routes, JSON shapes and error answers stay the library's own (``label_studio_ml.api``).
"""

from __future__ import annotations

import logging
from typing import Any

from label_studio_ml.model import LabelStudioMLManager, ModelWrapper

logger = logging.getLogger(__name__)


class FixedModelManager(LabelStudioMLManager):
    """Serves a model with fixed weights: a constant version, any worker can predict, no training jobs."""

    @classmethod
    def _model(cls, label_config: str | None) -> ModelWrapper:
        model = cls.model_class(label_config=label_config, **cls.init_kwargs)
        return ModelWrapper(model=model, model_version=model.model_version)

    @classmethod
    def fetch(cls, project=None, label_config=None, force_reload=False, **kwargs) -> ModelWrapper:
        """/setup: check that the label config suits the model and answer its version."""
        # kwargs carry /setup's hostname and the project owner's access token: ignored, the backend uses
        # LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY, so that one worker's /setup changes nothing in another.
        cls._current_model = cls._model(label_config)
        return cls._current_model

    @classmethod
    def predict(cls, tasks, project=None, label_config=None, force_reload=False, try_fetch=True, **kwargs):
        """/predict: one result per task, in order, from a model made for this request's label config."""
        wrapper = cls._model(label_config)
        return wrapper.model.predict(tasks or [], **kwargs), wrapper

    @classmethod
    def train(cls, tasks, project=None, label_config=None, **kwargs) -> None:
        """/train (Label Studio before 1.4.1): nothing to train, no job started."""
        logger.debug("/train ignored: the backend serves fixed weights")
        return None

    @classmethod
    def webhook(cls, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """/webhook: acknowledged without work; this backend does not learn from annotations."""
        logger.debug("webhook %s ignored: the backend serves fixed weights", event)
        return {"status": "ignored", "event": event}
