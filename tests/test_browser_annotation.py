"""An annotation task in a real browser (headless Debian Chromium driven by playwright), logged in as an annotator
would be: the 20 proposals in their 4 groups, synonyms, exemplar images, keyboard ticks, a prediction's
pre-selection, and a submitted annotation read back through the API. Saves screenshots under the test's tmp dir."""

import uuid

import pytest

from multilabelfy.annotation.project import create_annotation_projects
from multilabelfy.annotation.tasks import GROUPS, HOTKEYS, parse_annotation, prediction_result
from multilabelfy.catalogue import load_catalogue

from test_annotation_project import write_proposals

DUPLICATE_NOTE = "possible exact duplicate of img/000"
pytestmark = [pytest.mark.label_studio, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def annotation_project(ls_client, label_studio, tmp_path_factory):
    """A project with a real photo (the cat), its 20 proposals, exemplar strips, and a second task with a
    prediction and a duplicate note."""
    import skimage.data
    from PIL import Image

    catalogue = load_catalogue()
    folder = label_studio.document_root / f"browser-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    image = folder / "chelsea.png"
    Image.fromarray(skimage.data.chelsea()).save(image)
    exemplar_paths = []
    for name in ["chelsea", "coffee", "astronaut"]:
        exemplar_paths.append(folder / f"exemplar-{name}.jpg")
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB").save(exemplar_paths[-1])
    proposals = write_proposals(tmp_path_factory.mktemp("browser") / "p.parquet", [image, image], [281, 281])
    exemplars = {catalogue[int(i)].id: [str(p) for p in exemplar_paths] for i in proposals.topk_indices[0][:6]}
    [outcome] = create_annotation_projects(ls_client, proposals, catalogue, f"browser {uuid.uuid4().hex[:6]}",
                                           exemplars=exemplars, document_root=label_studio.document_root,
                                           progress=False, duplicate_notes={"img/001": DUPLICATE_NOTE})
    tasks = sorted(ls_client.iter_tasks(outcome.project_id), key=lambda t: t["data"]["position"])
    predicted_ids = [tasks[1]["data"]["group_1"][1]["value"], tasks[1]["data"]["group_4"][3]["value"]]
    ls_client.create_prediction(tasks[1]["id"], prediction_result(predicted_ids, tasks[1]["data"]),
                                model_version="browser-test")
    return outcome, tasks, predicted_ids, catalogue


def _open_task(page, url, project_id, task_id):
    page.goto(f"{url}/projects/{project_id}/data?task={task_id}")
    page.wait_for_selector(".mlf-option", timeout=90_000)
    page.wait_for_load_state("networkidle")


def test_task_shows_groups_synonyms_exemplars_and_takes_keyboard_ticks(page, label_studio, ls_client,
                                                                       annotation_project, tmp_path):
    outcome, tasks, _, catalogue = annotation_project
    task = tasks[0]
    _open_task(page, label_studio.url, outcome.project_id, task["id"])
    options = [option for group in GROUPS for option in task["data"][group]]

    # Group 1 is open; groups 2-4 sit in collapsed panels below it.
    for header in ["Proposals 1-5", "Proposals 6-10", "Proposals 11-15", "Proposals 16-20"]:
        assert page.get_by_text(header, exact=True).is_visible(), header
    first, later = options[:5], options[5:]
    assert all(page.locator(f'input[name="{o["value"]}"]').is_visible() for o in first)
    assert not any(page.locator(f'input[name="{o["value"]}"]').is_visible() for o in later)
    assert not page.get_by_text("Dataset label").is_visible()  # no anchoring on the original label
    assert page.get_by_text("duplicate of").count() == 0  # an empty note shows nothing
    page.screenshot(path=str(tmp_path / "annotation_task.png"))

    for header in ["Proposals 6-10", "Proposals 11-15", "Proposals 16-20"]:
        page.get_by_text(header, exact=True).click()
    for rank, option in enumerate(options, start=1):
        info = catalogue.by_id(option["value"])
        label = page.locator("label.lsf-choice__checkbox", has=page.locator(f'input[name="{info.id}"]'))
        assert label.is_visible(), info.id
        text = label.inner_text()
        assert info.synonyms[0] in text and all(s in text for s in info.synonyms[1:]), (text, info.synonyms)
        assert text.startswith(str(rank))
    # Exemplar strips: three thumbnails for each of the first six classes, really loaded, linking to full size.
    thumbs = page.locator(".mlf-strip img")
    assert thumbs.count() == 18
    for i in range(thumbs.count()):
        thumbs.nth(i).scroll_into_view_if_needed()
        assert thumbs.nth(i).evaluate("img => img.complete && img.naturalWidth > 0"), i
    link = page.locator(".mlf-strip a").first
    assert link.get_attribute("target") == "_blank" and "/data/local-files/?d=" in link.get_attribute("href")
    page.screenshot(path=str(tmp_path / "annotation_task_expanded.png"), full_page=True)

    # Keyboard: "1" ticks proposal 1, "q" proposal 11; a click on an exemplar opens it and ticks nothing.
    page.locator(".lsf-main-view, body").first.click(position={"x": 5, "y": 5})
    page.keyboard.press(HOTKEYS[0])
    page.keyboard.press(HOTKEYS[10])
    with page.context.expect_page() as opened:
        page.locator(".mlf-strip a").nth(1).click()
    opened.value.close()
    checked = [o["value"] for o in options if page.locator(f'input[name="{o["value"]}"]').is_checked()]
    assert checked == [options[0]["value"], options[10]["value"]]
    page.locator("textarea").fill("the cat is a tabby")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1000)

    [annotation] = ls_client.get_task(task["id"])["annotations"]
    parsed = parse_annotation(annotation["result"])
    assert parsed.selected == {options[0]["value"], options[10]["value"]}
    assert parsed.comment == "the cat is a tabby" and not parsed.none_of_these


def test_prediction_preselects_dynamic_choices_in_any_group(page, label_studio, annotation_project, tmp_path):
    outcome, tasks, predicted_ids, _ = annotation_project
    _open_task(page, label_studio.url, outcome.project_id, tasks[1]["id"])
    options = [option["value"] for group in GROUPS for option in tasks[1]["data"][group]]
    checked = [value for value in options if page.locator(f'input[name="{value}"]').is_checked()]
    assert checked == predicted_ids  # one in group 1, one in the collapsed group 4
    page.screenshot(path=str(tmp_path / "prediction.png"))


def test_duplicate_note_shows_above_the_proposals(page, label_studio, annotation_project, tmp_path):
    outcome, tasks, _, _ = annotation_project
    assert tasks[1]["data"]["duplicate_note"] == DUPLICATE_NOTE and tasks[0]["data"]["duplicate_note"] == ""
    _open_task(page, label_studio.url, outcome.project_id, tasks[1]["id"])
    note = page.get_by_text(DUPLICATE_NOTE, exact=True)
    assert note.is_visible()
    # above the proposals, where the annotator reads before ticking
    assert note.bounding_box()["y"] < page.get_by_text("Proposals 1-5", exact=True).bounding_box()["y"]
    page.screenshot(path=str(tmp_path / "duplicate_note.png"))
