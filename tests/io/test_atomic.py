"""caesar_mrcnn atomic outputs: no partial files, and a missing folder is an OutputError."""

from __future__ import annotations

import pytest

from caesar_mrcnn.errors import OutputError
from caesar_mrcnn.io.atomic import atomic_open, atomic_path, make_output_folder


def test_atomic_open_replaces_the_file_only_when_closed_cleanly(tmp_path):
    path = tmp_path / "cat.txt"
    path.write_text("old")
    with pytest.raises(ValueError), atomic_open(path) as fh:
        fh.write("partial")
        raise ValueError("stop")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]
    with atomic_open(path) as fh:
        fh.write("new")
    assert path.read_text() == "new" and list(tmp_path.iterdir()) == [path]


def test_atomic_path_keeps_the_suffix_for_format_sniffing_writers(tmp_path):
    path = tmp_path / "image.fits"
    with atomic_path(path) as tmp:
        assert tmp.suffix == ".fits" and tmp.parent == tmp_path and not tmp.exists()
        tmp.write_bytes(b"x")
    assert path.read_bytes() == b"x"


def test_missing_folder_is_an_output_error_and_is_not_created(tmp_path):
    path = tmp_path / "nowhere" / "out.reg"
    with pytest.raises(OutputError) as info, atomic_open(path) as fh:
        fh.write("x")
    message = str(info.value)
    assert str(path.parent) in message and "\n" not in message
    assert not path.parent.exists()


def test_make_output_folder_creates_parents_or_names_the_option(tmp_path):
    assert make_output_folder(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"^--catalog-dir .*file.*choose another --catalog-dir"):
        make_output_folder(tmp_path / "file" / "sub", option="--catalog-dir")
