"""The Label Studio ML backend's model: the stage-1 engine's top-k proposals as pre-annotations."""

from __future__ import annotations

import logging
from typing import Any, Sequence

from label_studio_ml.model import LabelStudioMLBase

from multilabelfy.annotation import tasks as template
from multilabelfy.errors import UserError
from multilabelfy.ml_backend.config import BackendConfig, from_env
from multilabelfy.ml_backend.images import ImageError
from multilabelfy.ml_backend.runtime import load_runtime

logger = logging.getLogger(__name__)


class MultilabelfyBackend(LabelStudioMLBase):
    """Predictions for the annotation template (``project_templates/annotation.xml``).

    For each task:

    - A task that already carries proposals (the ``group_1``..``group_4`` options ``create-project`` writes)
      gets a prediction over exactly those options. Its probabilities are the task's ``proposal_probs`` when
      stored, else the model's for the task's image.
    - A task without options gets the model's top-k for its image written into its data (through the Label
      Studio API, with ``annotation.tasks.build_task_data``; a prediction cannot change task data), then its
      prediction.

    The prediction's ``score`` is the top proposal's probability; what it pre-checks follows the PRECHECK rule
    (``config.PrecheckRule``). Every prediction carries ``model_version``, the one /setup answers, so Label
    Studio never asks twice for the same task. A task that fails (unreadable image, Label Studio unreachable)
    gets a result without ``result`` and with ``error``: Label Studio logs it and skips that task only, and
    asks again next time.

    The weights live in the worker's ``Runtime``; constructing this class per request costs only parsing the
    label config.
    """

    def __init__(self, label_config: str | None = None, train_output: Any = None,
                 config: BackendConfig | None = None, **kwargs: Any):
        super().__init__(label_config=label_config, train_output=train_output, **kwargs)
        self.runtime = load_runtime(config or from_env())
        self.config = self.runtime.config
        self.model_version = self.config.model_version
        self.image_field = self._image_field()

    def _image_field(self) -> str:
        """The task field holding the image URL; a label config that is not the annotation template is refused."""
        if not self.label_config:  # no label config sent: the template's own field names
            return template.IMAGE
        tags = self.parsed_label_config
        wrong = [name for name in template.GROUPS if tags.get(name, {}).get("type") != "Choices"]
        if wrong:
            raise UserError(
                f"the project's labeling config lacks the Choices tags {wrong}; this backend serves projects made "
                f"from project_templates/annotation.xml (multilabelfy create-project)"
            )
        inputs = tags[template.GROUPS[0]].get("inputs") or [{}]
        return inputs[0].get("value") or template.IMAGE

    def predict(self, tasks: Sequence[dict], **kwargs: Any) -> list[dict]:
        """One result per task, in order. Large requests are processed ``batch_size`` tasks at a time, so that
        memory holds one batch of images however many tasks Label Studio sends."""
        results: list[dict] = []
        step = self.config.batch_size
        for start in range(0, len(tasks), step):
            results += self._predict_batch(tasks[start:start + step])
        return results

    def _predict_batch(self, tasks: Sequence[dict]) -> list[dict]:
        results: list[dict | None] = [None] * len(tasks)
        need_model: list[int] = []
        images = []
        for position, task in enumerate(tasks):
            data = task.get("data") or {}
            stored = self._stored_probs(data)
            if self._has_options(data) and stored is not None:
                results[position] = self._prediction(task, data, stored)
                continue
            try:
                images.append(self.runtime.images.read(data.get(self.image_field)))
                need_model.append(position)
            except ImageError as error:
                results[position] = self._error(task, str(error))
        if need_model:
            top = self.runtime.engine.predict_images(images)
            for row, position in enumerate(need_model):
                task = tasks[position]
                indices, probs = top.indices[row].tolist(), top.probs[row].tolist()
                try:
                    data = task.get("data") or {}
                    if self._has_options(data):
                        by_id = {self.runtime.catalogue[i].id: p for i, p in zip(indices, probs)}
                        # Classes of the task's options beyond the model's top-k count as improbable.
                        option_probs = [by_id.get(class_id, 0.0) for class_id in self._option_ids(data)]
                    else:
                        data = self._write_options(task, indices, probs)
                        option_probs = probs
                    results[position] = self._prediction(task, data, option_probs)
                except UserError as error:
                    results[position] = self._error(task, str(error))
        return results

    def _write_options(self, task: dict, indices: list[int], probs: list[float]) -> dict:
        """Put the proposals into the task's data in Label Studio; returns the new data."""
        data = dict(task.get("data") or {})
        catalogue = self.runtime.catalogue
        label = data.get("original_label")
        if label is None or label == "":
            label = data.get("label")
        try:
            original = None if label is None or label == "" else catalogue.index_of(label)
        except UserError:
            raise UserError(f"its original label {label!r} is not a class of catalogue {catalogue.source}") from None
        built = template.build_task_data(
            image_url=data.get(self.image_field),
            image_id=str(data.get("image_id") or task.get("id")),
            original_label=original,
            proposal_indices=indices[:template.MAX_PROPOSALS],
            catalogue=catalogue,
            exemplars=self.runtime.exemplars,
            # keep a note the task was imported with (the built data replaces the old fields)
            duplicate_note=str(data.get("duplicate_note") or ""),
        )
        # The task's other fields are kept: the new data replaces the old as a whole.
        new_data = {**data, **built, "proposal_probs": [round(p, 6) for p in probs[:template.MAX_PROPOSALS]]}
        self.runtime.label_studio().update_task_data(int(task["id"]), new_data)
        logger.info("task %s: wrote %d proposals into its data", task.get("id"), len(built["proposals"]))
        return new_data

    def _prediction(self, task: dict, data: dict, option_probs: Sequence[float]) -> dict:
        ids = self._option_ids(data)
        checked = [ids[i] for i in self.config.precheck.select(list(option_probs)) if i < len(ids)]
        return {
            "result": template.prediction_result(checked, data),
            "score": float(max(option_probs, default=0.0)),
            "model_version": self.model_version,
        }

    def _error(self, task: dict, reason: str) -> dict:
        message = f"task {task.get('id')}: {reason}"
        logger.warning("%s", message)
        return {"model_version": self.model_version, "error": message}

    @staticmethod
    def _has_options(data: dict) -> bool:
        return any(data.get(group) for group in template.GROUPS)

    @staticmethod
    def _option_ids(data: dict) -> list[str]:
        """The task's option values (class ids) in rank order: group 1 first."""
        return [option["value"] for group in template.GROUPS for option in data.get(group) or []]

    @staticmethod
    def _stored_probs(data: dict) -> list[float] | None:
        """The task's ``proposal_probs`` when they match its options one to one, else None."""
        probs = data.get("proposal_probs")
        if isinstance(probs, list) and len(probs) == len(MultilabelfyBackend._option_ids(data)) and all(
            isinstance(p, (int, float)) for p in probs
        ):
            return [float(p) for p in probs]
        return None
