"""A refinement task in a real browser (headless Chromium via playwright, as test_browser_annotation.py): the
earlier choices arrive ticked (a proposal and a class outside the proposals), the earlier annotators' choices and
comments are shown, and Submit is refused until the required comment is written."""

import uuid

import pytest

from multilabelfy.annotation.tasks import GROUPS, build_task_data
from multilabelfy.catalogue import load_catalogue
from multilabelfy.refinement import EXTRA_GROUP, MODEL_VERSION, build_refinement_task, load_template, parse_refinement

pytestmark = [pytest.mark.label_studio, pytest.mark.browser, pytest.mark.slow]

TABBY, TIGER_CAT, EGYPTIAN_CAT, LYNX = 281, 282, 285, 287


@pytest.fixture(scope="module")
def refinement_task(ls_client, label_studio):
    import skimage.data
    from PIL import Image

    catalogue = load_catalogue()
    folder = label_studio.document_root / f"refine-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    Image.fromarray(skimage.data.chelsea()).save(folder / "chelsea.png")
    proposals = [TABBY, TIGER_CAT, EGYPTIAN_CAT] + [i for i in range(300, 317)]  # lynx is not among them
    data = build_task_data(f"/data/local-files/?d={folder.name}/chelsea.png", "chelsea", TABBY, proposals, catalogue)
    decision = {"task_id": 1, "annotators": ["a@x", "b@x"], "label_sets": [[TABBY], [TABBY, LYNX]],
                "skipped_by": [], "chosen_labels": [TABBY, LYNX], "comments": ["b@x: the ears look like a lynx"]}
    project = ls_client.create_project(f"refinement browser {uuid.uuid4().hex[:6]}", load_template(),
                                       show_collab_predictions=True, model_version=MODEL_VERSION)
    ls_client.ensure_local_storage(project["id"], folder)
    [task_id] = ls_client.import_tasks(project["id"], [build_refinement_task(data, decision, catalogue)],
                                       progress=False)
    return project["id"], task_id, catalogue


def test_refinement_ui_prechecks_shows_earlier_and_requires_a_comment(page, label_studio, ls_client,
                                                                      refinement_task, tmp_path):
    project_id, task_id, catalogue = refinement_task
    page.goto(f"{label_studio.url}/projects/{project_id}/data?task={task_id}")
    page.wait_for_selector(".mlf-option", timeout=90_000)
    page.wait_for_load_state("networkidle")
    tabby, lynx = catalogue[TABBY].id, catalogue[LYNX].id

    assert page.locator(f'input[name="{tabby}"]').is_checked()  # a proposal, from the prediction
    assert page.locator(f'input[name="{lynx}"]').is_checked()  # outside the proposals: the extra group
    assert page.locator(f'.mlf-extra input[name="{lynx}"]').count() == 1
    assert not page.locator(f'input[name="{catalogue[TIGER_CAT].id}"]').is_checked()
    earlier = page.locator(".mlf-earlier").inner_text()
    assert "a@x" in earlier and "b@x" in earlier and "the ears look like a lynx" in earlier
    page.screenshot(path=str(tmp_path / "refinement_task.png"), full_page=True)

    # The expert removes the lynx and adds the tiger cat; Submit without a comment is refused.
    page.locator(f'input[name="{lynx}"]').click()
    page.locator(f'input[name="{catalogue[TIGER_CAT].id}"]').click()
    page.get_by_role("button", name="Submit").click()
    page.wait_for_timeout(1500)
    assert ls_client.get_task(task_id)["annotations"] == []
    page.screenshot(path=str(tmp_path / "refinement_refused.png"))
    for button in ("OK", "Close"):  # dismiss the validation message if it is a modal
        if page.get_by_role("button", name=button).count():
            page.get_by_role("button", name=button).first.click()
    page.locator("textarea").fill("striped coat: tiger cat too; no lynx ear tufts")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)

    [annotation] = ls_client.get_task(task_id)["annotations"]
    choice = parse_refinement(annotation["result"], catalogue)
    assert choice.labels == (TABBY, TIGER_CAT)
    assert choice.comment == "striped coat: tiger cat too; no lynx ear tufts"
    assert {item["from_name"] for item in annotation["result"]} <= {*GROUPS, EXTRA_GROUP, "comment", "none"}
