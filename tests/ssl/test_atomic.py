"""Atomic writes of ssl_backbones: folders are created, failures leave nothing behind."""

from __future__ import annotations

import pytest

from ssl_backbones.atomic import atomic_target


def test_writes_appear_only_on_success_and_folders_are_created(tmp_path):
    path = tmp_path / "new" / "deeper" / "weights.npz"
    with atomic_target(path) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".npz" and not tmp.exists()
        tmp.write_text("one")
        assert not path.exists()
    assert path.read_text() == "one"
    assert list(path.parent.iterdir()) == [path]


def test_failed_block_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_target(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert list(tmp_path.iterdir()) == [path]


def test_missing_folder_without_make_parents_raises_the_given_error(tmp_path):
    class Oops(Exception):
        pass

    path = tmp_path / "absent" / "out.json"
    with pytest.raises(Oops, match="absent does not exist"), \
            atomic_target(path, make_parents=False, error=Oops):
        pass
    assert not path.parent.exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(Oops, match="cannot create output folder"), \
            atomic_target(blocker / "out.json", error=Oops):
        pass
