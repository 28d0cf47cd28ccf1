"""Local-files URLs written by create-project read back to the same path (spaces and non-ASCII included)."""

from multilabelfy.labelstudio.local_files import is_local_files_url, local_files_relative_path, local_files_url


def test_round_trip_and_quoting():
    for relative in ("photos/chelsea.png", "val/n02123045/a b#1.JPEG", "ünï/cödé.jpg"):
        url = local_files_url(relative)
        assert url.startswith("/data/local-files/?d=") and " " not in url and "#" not in url
        assert is_local_files_url(url)
        assert local_files_relative_path(url) == relative
    assert local_files_url("a b/c.png") == "/data/local-files/?d=a%20b/c.png"
    assert not is_local_files_url("/data/upload/1/c.png")
    assert local_files_relative_path("/data/local-files/") == ""
