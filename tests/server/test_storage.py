"""The default consume hook saves without a second copy: the default writer
makes the file in the uploads folder's ``.partial``, saving renames it (a
hard link under the new name, then the temp name removed); a copy only when
that cannot work."""

from __future__ import annotations

import errno
import os

import pytest

from server.storage import PARTIAL_DIR, SaveToDirectory
from writers import instantiate

pytestmark = pytest.mark.pure


def written(save: SaveToDirectory, data: bytes, reason: str = "done") -> tuple[object, object]:
    """An upload written by the hook's own writer factory and closed with ``reason``."""
    writer, opts = instantiate(save.writer("files", {"client_name": "x"}, None))
    status, state = writer.init(opts)
    assert status == "ok"
    status, state = writer.write_chunk(memoryview(data), state)
    assert status == "ok"
    assert writer.close(state, reason) == ("ok", state)
    return writer, state


def test_a_consumed_file_is_renamed_not_copied(tmp_path):
    save = SaveToDirectory(tmp_path / "saved")
    writer, state = written(save, b"cat" * 1000)
    temp = writer.meta(state)["path"]
    assert os.path.dirname(temp) == str(tmp_path / "saved" / PARTIAL_DIR)
    inode = os.stat(temp).st_ino
    result = save("files", writer.meta(state), {"client_name": "cat.png"})
    assert result == {"name": "cat.png", "size": 3000, "path": str(tmp_path / "saved" / "cat.png")}
    target = tmp_path / "saved" / "cat.png"
    assert target.stat().st_ino == inode and target.stat().st_nlink == 1  # the same file, moved
    assert target.read_bytes() == b"cat" * 1000
    assert not os.path.exists(temp)
    writer.release(state)  # the channel's release after consumption: nothing left to delete
    assert os.listdir(tmp_path / "saved") == ["cat.png"]  # .partial went once empty


@pytest.mark.parametrize("code", [errno.EXDEV, errno.EPERM])
def test_a_file_that_cannot_be_linked_is_copied(tmp_path, monkeypatch, code):
    save = SaveToDirectory(tmp_path / "saved")
    writer, state = written(save, b"dog" * 1000)
    temp = writer.meta(state)["path"]
    inode = os.stat(temp).st_ino

    def cannot_link(*_args, **_kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", cannot_link)
    result = save("files", writer.meta(state), {"client_name": "dog.png"})
    target = tmp_path / "saved" / "dog.png"
    assert result == {"name": "dog.png", "size": 3000, "path": str(target)}
    assert target.read_bytes() == b"dog" * 1000 and target.stat().st_ino != inode
    assert not os.path.exists(temp)  # the temp name is ours: removed after the copy too
    writer.release(state)
    assert os.listdir(tmp_path / "saved") == ["dog.png"]


def test_other_link_failures_fail_the_save_and_leave_nothing(tmp_path, monkeypatch):
    save = SaveToDirectory(tmp_path / "saved")
    writer, state = written(save, b"x")

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", no_space)
    result = save("files", writer.meta(state), {"client_name": "x.bin"})
    assert result == {"name": "x.bin", "size": 0, "error": "No space left on device"}
    writer.release(state)
    assert os.listdir(tmp_path / "saved") == []


@pytest.mark.parametrize("reason", ["cancel", ("error", "enospc")])
def test_a_cancelled_or_failed_upload_leaves_nothing(tmp_path, reason):
    save = SaveToDirectory(tmp_path / "saved")
    _, kept = written(save, b"kept")
    writer, state = written(save, b"gone", reason)
    assert os.listdir(tmp_path / "saved" / PARTIAL_DIR) == [os.path.basename(kept.path)]
    writer.release(state)
    writer.release(kept)  # e.g. its page left before submitting
    assert os.listdir(tmp_path / "saved") == []


def test_names_that_collide_are_never_overwritten(tmp_path):
    save = SaveToDirectory(tmp_path / "saved")
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "x.txt").write_bytes(b"already here")
    names = []
    for i, client_name in enumerate(["x.txt", "../x.txt", "/abs/x.txt", ".x.txt"]):
        writer, state = written(save, str(i).encode())
        names.append(save("files", writer.meta(state), {"client_name": client_name})["name"])
        writer.release(state)
    assert names == ["x (1).txt", "x (2).txt", "x (3).txt", "x (4).txt"]
    assert (tmp_path / "saved" / "x.txt").read_bytes() == b"already here"
    assert [(tmp_path / "saved" / n).read_bytes() for n in names] == [b"0", b"1", b"2", b"3"]
    assert sorted(os.listdir(tmp_path / "saved")) == sorted(["x.txt", *names])


def test_another_writers_file_is_linked_but_stays_its_own(tmp_path):
    source = tmp_path / "elsewhere.bin"
    source.write_bytes(b"theirs")
    save = SaveToDirectory(tmp_path / "saved")
    result = save("files", {"path": str(source)}, {"client_name": "a.bin"})
    assert result["size"] == 6 and (tmp_path / "saved" / "a.bin").read_bytes() == b"theirs"
    assert source.exists()  # not ours to remove: its writer's release does
    assert (tmp_path / "saved" / "a.bin").stat().st_ino == source.stat().st_ino


def test_bytes_kept_in_memory_are_written_once(tmp_path):
    save = SaveToDirectory(tmp_path / "saved")
    assert save("files", {"data": memoryview(b"mem")}, {"client_name": "m.bin"})["size"] == 3
    assert (tmp_path / "saved" / "m.bin").read_bytes() == b"mem"
