"""Simulated annotators, so that a demo runs every stage without anyone clicking.

Nothing here is used by the real workflow. Annotators tick proposals at random in proportion to the model's
probabilities (``proposal_probs`` in the task data, else a rank-based stand-in) and mostly confirm the
original label, so that some images are agreed and some are not; experts keep the proposals the model finds
likely. All annotations go through the API as the named Label Studio users (created when missing), and only
what is missing is added: a re-run after an interruption completes the work and never annotates twice.
"""

from __future__ import annotations

import random
from typing import Sequence

from multilabelfy.annotation.tasks import COMMENT, IMAGE, NONE_OF_THESE, NONE_OF_THESE_VALUE, prediction_result
from multilabelfy.errors import UserError

# How the simulated people behave (tuned so that about half the images need refinement, as in the paper).
TICK_SCALE = 1.5  # a proposal with probability p is ticked with probability min(1, TICK_SCALE * p)
CONFIRM_ORIGINAL = 0.85  # chance to tick the original label when it is among the proposals
SKIP_RATE = 0.02  # chance to skip an image
EXPERT_THRESHOLD = 0.15  # experts keep the top proposal and every proposal at least this probable


def _probabilities(data: dict) -> list[float]:
    proposals = data.get("proposals", [])
    probs = data.get("proposal_probs")
    if probs and len(probs) == len(proposals):
        return [float(p) for p in probs]
    weights = [1 / (rank + 1) ** 2 for rank in range(len(proposals))]  # no probabilities: favour the top
    return [w / sum(weights) for w in weights]


def _result(data: dict, chosen: Sequence[str], comment: str = "") -> list[dict]:
    result = prediction_result(chosen, data) if chosen else [
        {"from_name": NONE_OF_THESE, "to_name": IMAGE, "type": "choices", "value": {"choices": [NONE_OF_THESE_VALUE]}}]
    if comment:
        result.append({"from_name": COMMENT, "to_name": IMAGE, "type": "textarea", "value": {"text": [comment]}})
    return result


def annotator_result(data: dict, rng: random.Random) -> list[dict] | None:
    """One simulated annotator's result for an annotation task; ``None`` means the image is skipped."""
    if rng.random() < SKIP_RATE:
        return None
    chosen = [class_id for class_id, p in zip(data.get("proposals", []), _probabilities(data))
              if rng.random() < min(1.0, TICK_SCALE * p)]
    original = data.get("original_label")
    if original in data.get("proposals", []) and original not in chosen and rng.random() < CONFIRM_ORIGINAL:
        chosen.append(original)
    return _result(data, chosen)


def expert_result(data: dict) -> list[dict]:
    """A simulated expert's refinement: the top proposal and every proposal the model finds likely."""
    pairs = list(zip(data.get("proposals", []), _probabilities(data)))
    chosen = [class_id for rank, (class_id, p) in enumerate(pairs) if rank == 0 or p >= EXPERT_THRESHOLD]
    return _result(data, chosen, comment="simulated expert: kept the likely proposals")


def _user_ids(client, emails: Sequence[str]) -> dict[str, int]:
    return {email: int(client.ensure_user(email)["id"]) for email in emails}


def simulate_annotation(client, project_ids: Sequence[int], annotators: Sequence[str], seed: int = 0) -> int:
    """Fill each task of the annotation projects up to the project's overlap; returns annotations added."""
    rng = random.Random(seed)
    users = _user_ids(client, annotators)
    added = 0
    for project_id in project_ids:
        overlap = int(client.get_project(project_id).get("maximum_annotations") or 1)
        if overlap > len(users):
            raise UserError(f"project {project_id} wants {overlap} annotators per image; simulate at least that many")
        for task in client.iter_tasks(project_id):
            done = {_author(a) for a in task.get("annotations") or []}
            free = [email for email in users if users[email] not in done]
            for email in rng.sample(free, max(0, overlap - len(done))):
                result = annotator_result(task["data"], rng)
                client.create_annotation(task["id"], result or [], completed_by=users[email],
                                         was_cancelled=result is None)
                added += 1
    return added


def simulate_refinement(client, experts: dict[int, str]) -> int:
    """Refine every task without an annotation in each refinement project, as its expert.

    ``experts``: refinement project id -> the expert's email (``refinement.json``'s ``project``/``annotator``).
    """
    added = 0
    for project_id, expert in experts.items():
        user = _user_ids(client, [expert])[expert]
        for task in client.iter_tasks(project_id):
            if not task.get("annotations"):
                client.create_annotation(task["id"], expert_result(task["data"]), completed_by=user)
                added += 1
    return added


def _author(annotation: dict) -> int | None:
    who = annotation.get("completed_by")
    return who.get("id") if isinstance(who, dict) else who
