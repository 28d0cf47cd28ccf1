"""The demo's simulated annotators, offline: reproducible, and they give the decision rule work to do."""

import math
import random

import pytest

from multilabelfy import disagreement as dis
from multilabelfy.annotation.tasks import build_task_data, parse_annotation
from multilabelfy.catalogue import from_csv
from multilabelfy.simulate import annotator_result, expert_result


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    path = tmp_path_factory.mktemp("catalogue") / "classes.csv"
    path.write_text("id,name\n" + "".join(f"c{i},class {i}\n" for i in range(50)))
    return from_csv(path)


def simulated_task(catalogue, number, rng):
    proposals = rng.sample(range(50), 20)
    logits = [-1.2 * rank + rng.gauss(0, 0.5) for rank in range(20)]  # peaked, like a trained model's softmax
    probs = [math.exp(x) / sum(math.exp(y) for y in logits) for x in logits]
    data = build_task_data("u", f"img{number}", proposals[0], proposals, catalogue, extra={"proposal_probs": probs})
    annotations = []
    for user in (1, 2):
        result = annotator_result(data, rng)
        annotations.append({"id": 10 * number + user, "completed_by": user, "result": result or [],
                            "was_cancelled": result is None})
    return {"id": number, "data": data, "annotations": annotations}


def test_simulated_annotators_are_reproducible_and_mixed(catalogue):
    tasks = [simulated_task(catalogue, n, random.Random(n)) for n in range(300)]
    again = [simulated_task(catalogue, n, random.Random(n)) for n in range(300)]
    assert tasks == again
    decisions = [dis.decide_task(task, catalogue, 2)[1] for task in tasks]
    agreed = sum(d.decision == dis.AGREED for d in decisions) / len(decisions)
    assert 0.15 < agreed < 0.85  # both outcomes are common, so the demo shows every stage
    confirmed = sum(d.original_label in s for d in decisions for s in d.label_sets)
    assert confirmed / sum(len(d.label_sets) for d in decisions) > 0.8  # annotators mostly confirm the label


def test_simulated_expert_keeps_the_top_and_the_likely_proposals(catalogue):
    data = build_task_data("u", "x", 0, [3, 4, 5, 6], catalogue, extra={"proposal_probs": [0.5, 0.3, 0.15, 0.05]})
    parsed = parse_annotation(expert_result(data))
    assert parsed.selected == {"c3", "c4", "c5"} and parsed.comment
    nothing_likely = build_task_data("u", "y", 0, [7, 8], catalogue, extra={"proposal_probs": [0.1, 0.1]})
    assert parse_annotation(expert_result(nothing_likely)).selected == {"c7"}
