"""The class catalogue: ImageNet-1k from timm and a team's own CSV."""

import pytest

from multilabelfy.catalogue import IMAGENET_1K, load_catalogue
from multilabelfy.errors import UserError


def test_imagenet_1k_has_the_standard_order_synonyms_and_definitions():
    catalogue = load_catalogue()
    assert len(catalogue) == 1000 and catalogue.source == IMAGENET_1K
    tabby = catalogue[281]
    assert (tabby.id, tabby.name) == ("n02123045", "tabby")
    assert tabby.synonyms == ("tabby", "tabby cat")
    assert "cat" in tabby.definition and not tabby.definition.startswith("tabby")
    assert catalogue[0].id == "n01440764" and catalogue[999].id == "n15075141"


@pytest.mark.parametrize("label", ["n02123045", 281, "281", " 281 "])
def test_index_of_takes_a_wordnet_id_or_an_index(label):
    assert load_catalogue().index_of(label) == 281


@pytest.mark.parametrize("label", ["n99999999", 1000, "-1", True])
def test_unknown_label_is_a_one_line_user_error(label):
    with pytest.raises(UserError, match="catalogue imagenet-1k") as error:
        load_catalogue().index_of(label)
    assert "\n" not in str(error.value)


def test_user_csv_catalogue_with_names_synonyms_and_explicit_indices(tmp_path):
    path = tmp_path / "classes.csv"
    path.write_text(
        "id,index,name,synonyms,definition\n"
        "dog,1,dog,\"hound, pooch\",a domestic canine\n"
        "cat,0,,\"kitty, puss\",\n",
        encoding="utf-8",
    )
    catalogue = load_catalogue(path)
    assert [c.id for c in catalogue] == ["cat", "dog"]
    assert catalogue.by_id("dog").synonyms == ("dog", "hound", "pooch")
    assert catalogue[0].name == "kitty" and catalogue.index_of("dog") == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\ncat\n", "needs a header with an 'id' column"),
        ("id,index\ncat,0\ndog,2\n", "class indices must be 0..1 without gaps"),
        ("id\ncat\ncat\n", "class ids must be unique"),
        ("id,index\ncat,x\n", "row 2: index 'x' is not a number"),
    ],
)
def test_bad_user_csv_is_refused(tmp_path, text, message):
    path = tmp_path / "classes.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        load_catalogue(path)


def test_missing_user_csv_is_refused(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_catalogue(tmp_path / "nope.csv")
