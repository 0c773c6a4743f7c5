"""sekd.outputs: atomic writes and the output guard."""

import os

import pytest

from sekd.outputs import PARTIAL, atomic_path, check_outputs, write_text


def _partials(folder):
    return [p.name for p in folder.iterdir() if PARTIAL in p.name]


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and not _partials(tmp_path)
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "new.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_without_overwrite_a_file_written_meanwhile_by_another_process_is_kept(tmp_path):
    target = tmp_path / "x.wav"
    with pytest.raises(FileExistsError, match="x.wav exists already"):
        with atomic_path(target, overwrite=False) as tmp:
            tmp.write_text("mine")
            target.write_text("theirs")  # another writer, after this one's check
    assert target.read_text() == "theirs" and not _partials(tmp_path)
    write_text(tmp_path / "y.txt", "a", overwrite=False)
    assert (tmp_path / "y.txt").read_text() == "a"


def test_a_rename_replaces_a_link_not_the_file_it_points_to(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    link = tmp_path / "out" / "x.txt"
    link.parent.mkdir()
    link.symlink_to(outside)
    write_text(link, "new")
    assert outside.read_text() == "precious" and not link.is_symlink()


def test_check_outputs_refuses_what_would_lose_something(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("{}")
    with pytest.raises(FileExistsError, match="a.json exists already; .* --overwrite"):
        check_outputs([a], overwrite=False)
    check_outputs([a], overwrite=True)
    with pytest.raises(ValueError, match="are the same file"):
        check_outputs([b, tmp_path / "." / "b.json"], overwrite=True)
    with pytest.raises(FileExistsError, match="input files"):
        check_outputs([a], overwrite=True, inputs=[a])
    check_outputs([a], overwrite=True, inputs=[a], may_replace_inputs=True)
    link = tmp_path / "l.json"
    link.symlink_to(a)
    with pytest.raises(ValueError, match="symbolic link"):
        check_outputs([link], overwrite=True)
    with pytest.raises(IsADirectoryError):
        check_outputs([tmp_path], overwrite=True)
    with pytest.raises(ValueError, match="reads from"):
        check_outputs([tmp_path / "in" / "x"], overwrite=True, protected_folders=[tmp_path / "in"])
    assert a.read_text() == "{}" and os.readlink(link) == str(a)
