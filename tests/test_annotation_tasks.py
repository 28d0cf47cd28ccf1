"""The annotation template's data contract: task data, predictions for it, parsing results."""

import pytest

from multilabelfy.annotation import tasks
from multilabelfy.annotation.tasks import ParsedAnnotation, build_task_data, parse_annotation, prediction_result
from multilabelfy.catalogue import load_catalogue

TABBY, TIGER_CAT, EGYPTIAN_CAT = 281, 282, 285


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


@pytest.fixture(scope="module")
def twenty(catalogue):
    return [TABBY, TIGER_CAT, EGYPTIAN_CAT] + list(range(300, 317))


def test_twenty_proposals_become_four_groups_of_five_in_rank_order(catalogue, twenty):
    data = build_task_data("/data/local-files/?d=a/cat.png", "a/cat", TIGER_CAT, twenty, catalogue)
    groups = [data[name] for name in tasks.GROUPS]
    assert [len(group) for group in groups] == [5, 5, 5, 5]
    values = [option["value"] for group in groups for option in group]
    assert values == [catalogue[i].id for i in twenty] == data["proposals"]
    assert values[0] == "n02123045"
    assert [option["hotkey"] for group in groups for option in group] == list("1234567890qwertyuiop")
    assert data["image"] == "/data/local-files/?d=a/cat.png" and data["image_id"] == "a/cat"
    assert (data["original_label"], data["original_label_index"], data["original_label_name"]) == \
        ("n02123159", TIGER_CAT, "tiger cat")


def test_option_html_shows_synonyms_definition_and_escaped_exemplar_strip(catalogue):
    exemplars = {"n02123045": ["/data/local-files/?d=ex/tabby 1.jpg", 'https://x.org/a"b.jpg']}
    data = build_task_data("u", "i", None, [TABBY, TIGER_CAT], catalogue, exemplars)
    tabby, tiger = data["group_1"]
    assert "<b class=\"mlf-name\">tabby</b>" in tabby["html"] and "tabby cat" in tabby["html"]
    assert catalogue[TABBY].definition in tabby["html"]
    assert tabby["html"].count("<img ") == 2 and tabby["html"].count('target="_blank"') == 2
    assert 'href="https://x.org/a&quot;b.jpg"' in tabby["html"]
    assert "<img" not in tiger["html"]  # no exemplars for that class: no strip
    assert data["original_label"] is None and data["original_label_name"] is None
    assert data["group_2"] == [] and data["group_4"] == []


def test_class_names_cannot_inject_markup(catalogue):
    from multilabelfy.catalogue import Catalogue, ClassInfo

    evil = Catalogue([ClassInfo(0, "c0", ("<script>x</script>",), "a <b> c")], source="test")
    html = build_task_data("u", "i", 0, [0], evil)["group_1"][0]["html"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "a &lt;b&gt; c" in html


def test_bad_proposals_and_clashing_extra_fields_are_refused(catalogue, twenty):
    with pytest.raises(ValueError, match="at most 20"):
        build_task_data("u", "img7", None, twenty + [400], catalogue)
    with pytest.raises(ValueError, match="repeat"):
        build_task_data("u", "img7", None, [1, 1], catalogue)
    with pytest.raises(ValueError, match="overwrite"):
        build_task_data("u", "img7", None, [1], catalogue, extra={"image": "other"})
    data = build_task_data("u", "img7", None, [1], catalogue, extra={"proposal_probs": [0.9]})
    assert data["proposal_probs"] == [0.9]


def test_every_task_carries_the_duplicate_note_and_the_template_shows_it(catalogue):
    import xml.etree.ElementTree as ET

    from multilabelfy.annotation.project import annotation_template

    plain = build_task_data("u", "a", None, [TABBY], catalogue)
    assert plain["duplicate_note"] == ""  # present though empty: Label Studio refuses tasks lacking the field
    noted = build_task_data("u", "b", None, [TABBY], catalogue, duplicate_note="possible exact duplicate of c")
    assert noted["duplicate_note"] == "possible exact duplicate of c"
    assert {k: v for k, v in noted.items() if k != "duplicate_note"} == \
        {k: (v if k != "image_id" else "b") for k, v in plain.items() if k != "duplicate_note"}
    shown = [el for el in ET.fromstring(annotation_template()).iter() if el.get("value") == "$duplicate_note"]
    assert [el.tag for el in shown] == ["Header"]


def test_prediction_result_places_each_class_in_its_group(catalogue, twenty):
    data = build_task_data("u", "i", None, twenty, catalogue)
    chosen = [catalogue[twenty[12]].id, catalogue[TABBY].id, catalogue[twenty[3]].id]
    result = prediction_result(chosen, data)
    assert result == [
        {"from_name": "group_1", "to_name": "image", "type": "choices",
         "value": {"choices": [catalogue[TABBY].id, catalogue[twenty[3]].id]}},
        {"from_name": "group_3", "to_name": "image", "type": "choices", "value": {"choices": [catalogue[twenty[12]].id]}},
    ]
    assert parse_annotation(result).selected == set(chosen)
    with pytest.raises(ValueError, match="not options"):
        prediction_result(["n99999999"], data)
    assert prediction_result([], data) == []


def test_parse_annotation_reads_choices_none_of_these_and_comment():
    result = [
        {"from_name": "group_1", "type": "choices", "value": {"choices": ["n1", "n2"]}},
        {"from_name": "group_4", "type": "choices", "value": {"choices": ["n3"]}},
        {"from_name": "none", "type": "choices", "value": {"choices": ["none_of_these"]}},
        {"from_name": "comment", "type": "textarea", "value": {"text": ["  blurry\n", ""]}},
        {"from_name": "something_else", "type": "choices", "value": {"choices": ["n9"]}},
    ]
    assert parse_annotation(result) == ParsedAnnotation(frozenset({"n1", "n2", "n3"}), True, "blurry")
    assert parse_annotation([]) == ParsedAnnotation(frozenset(), False, "")


def test_selected_indices_use_the_catalogue(catalogue):
    parsed = ParsedAnnotation(frozenset({"n02123045", "n02123159"}), False, "")
    assert parsed.selected_indices(catalogue) == {TABBY, TIGER_CAT}
