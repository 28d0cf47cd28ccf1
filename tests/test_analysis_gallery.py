"""Thumbnails for the zero-label gallery: small JPEGs of local photos, None for anything unreadable."""

import io

from PIL import Image

from multilabelfy.analysis.gallery import thumbnails


def test_thumbnails_shrink_local_photos_and_skip_the_rest(tmp_path):
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")  # 512 x 512
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    result = thumbnails([str(tmp_path / "astronaut.png"), str(tmp_path / "broken.jpg"), str(tmp_path / "gone.jpg"),
                         "https://example.org/a.jpg", None, float("nan")], size=100)
    assert result[1:] == [None] * 5
    with Image.open(io.BytesIO(result[0])) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (100, 100)
        red, green, blue = thumb.convert("RGB").resize((1, 1)).getpixel((0, 0))
        assert max(red, green, blue) - min(red, green, blue) > 5  # still a colour photo, not a blank
