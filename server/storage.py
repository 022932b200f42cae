"""Where ``liveupload serve`` keeps completed uploads: the default consume hook.

:class:`SaveToDirectory` puts a consumed entry (a ``TmpFileWriter``'s
``{"path"}`` or a ``MemoryWriter``'s ``{"data"}``) into one folder under a
sanitised version of the client's file name. The name can never leave the
folder (no separators, no ``..``, no hidden or device names), and an existing
file is never overwritten: ``cat.png`` becomes ``cat (1).png``.

No byte is written twice when the upload's file is on the folder's file
system: its writer (:meth:`SaveToDirectory.writer`, the app's default) makes
the file in the folder's hidden ``.partial`` subfolder, and saving hard-links
it under its new name (``link`` fails on a taken name, so concurrent sessions
cannot pick the same one) and removes the temp name. A copy is made only when
linking cannot work (another file system: ``EXDEV``; a file system without
hard links) or the writer kept the bytes in memory; the name is then reserved
with ``O_CREAT | O_EXCL``. A file of another writer (outside ``.partial``) is
linked or copied but never removed: it stays its writer's.

:class:`KeepInStore` is the hook for writers that already put the bytes where
they belong (``S3Writer``: ``{"bucket", "key", "size", "etag"}``): it copies
nothing and lists the object by key and size.
"""

from __future__ import annotations

import errno
import os
import shutil
import unicodedata
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog

from writers import TmpFileWriter, WriterSpec, remove_dir_if_empty

__all__ = ["PARTIAL_DIR", "KeepInStore", "SaveToDirectory", "safe_filename"]

log = structlog.get_logger("liveupload.server")

_FORBIDDEN = set('<>:"/\\|?*')
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAME_BYTES = 200  # well under the usual 255-byte limit, leaving room for " (n)"
#: Failures of ``link`` that mean "copy instead": another file system, or one
#: that cannot (or may not: ``protected_hardlinks``) link this file.
_CANNOT_LINK = {errno.EXDEV, errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOSYS,
                errno.ENOTSUP, errno.EOPNOTSUPP}
#: The hidden subfolder of the uploads folder where uploads are written until saved.
PARTIAL_DIR = ".partial"


def safe_filename(name: Any, fallback: str = "upload") -> str:
    """A file name safe to create in a folder: the last path component of
    ``name``, NFC-normalised, with control and reserved characters replaced by
    ``_``, no leading dots or spaces, at most 200 UTF-8 bytes (the extension
    kept), never a Windows device name; ``fallback`` if nothing is left."""
    text = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join("_" if (ch in _FORBIDDEN or not ch.isprintable()) else ch for ch in text)
    text = " ".join(text.split()).lstrip(". ").rstrip(". ")
    if not text:
        return fallback
    if text.split(".")[0].upper() in _WINDOWS_DEVICES:
        text = "_" + text
    return _truncate(text, _MAX_NAME_BYTES)


def _truncate(name: str, limit: int) -> str:
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode("utf-8")) > 16:
        stem, ext = name, ""
    budget = limit - len(ext.encode("utf-8")) - (1 if ext else 0)
    stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(". ") or "upload"
    return f"{stem}.{ext}" if ext else stem


class SaveToDirectory:
    """Consume hook: ``hook(upload_name, meta, entry) -> {"name", "size", "path"}``.

    Runs in the session's process (on the server's event loop when the session
    runs there, see :attr:`loop_safe`). If saving fails, nothing is left behind
    and the result carries ``"error"`` instead, which the page shows next to
    the file's name. :meth:`writer` is the writer
    factory whose files it saves without a copy.
    """

    #: Saving hard-links the writer's file into the folder (its own temp folder is
    #: inside it): a few metadata calls, so a server may run the session that
    #: calls it on its event loop (``server.liveview.session_substrate``). The
    #: copy it falls back to only where the file system refuses hard links.
    loop_safe = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.partial = self.directory / PARTIAL_DIR

    def writer(self, name: str, entry: Any, session: Any) -> WriterSpec:
        """A writer factory: a ``TmpFileWriter`` writing into ``<folder>/.partial``
        (made when needed, removed when empty) with the permissions a copied file
        would get, so :meth:`__call__` renames rather than copies."""
        return (TmpFileWriter, {"dir": str(self.partial), "make_dir": True, "mode": 0o644})

    writer.loop_safe = True  # type: ignore[attr-defined]  # its writers are TmpFileWriters (loop_safe)

    def __call__(self, upload: str, meta: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
        client_name = entry.get("client_name", "")
        name = safe_filename(client_name)
        if "path" in meta:
            try:
                linked = self._link(os.fspath(meta["path"]), name)
            except OSError as exc:
                log.error("upload.save_failed", upload=upload, client_name=client_name, error=repr(exc))
                return {"name": str(client_name), "size": 0, "error": exc.strerror or repr(exc)}
            if linked is not None:
                target, size = linked
                log.info("upload.saved", upload=upload, client_name=client_name, path=str(target), size=size,
                         copied=False)
                return {"name": target.name, "size": size, "path": str(target)}
        try:
            target, handle = self._reserve(name)
        except OSError as exc:
            log.error("upload.save_failed", upload=upload, client_name=client_name, error=repr(exc))
            return {"name": str(client_name), "size": 0, "error": exc.strerror or repr(exc)}
        try:
            with handle:
                if "path" in meta:
                    with open(meta["path"], "rb") as source:
                        shutil.copyfileobj(source, handle, 1 << 20)
                elif "data" in meta:
                    handle.write(meta["data"])
                else:
                    raise TypeError(f"cannot save an entry whose writer meta is {sorted(meta)}: need 'path' or 'data'")
            size = target.stat().st_size
        except OSError as exc:
            target.unlink(missing_ok=True)
            log.error("upload.save_failed", upload=upload, client_name=client_name, path=str(target), error=repr(exc))
            return {"name": target.name, "size": 0, "error": exc.strerror or repr(exc)}
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        if "path" in meta:
            self._discard_partial(os.fspath(meta["path"]))
        log.info("upload.saved", upload=upload, client_name=client_name, path=str(target), size=size, copied=True)
        return {"name": target.name, "size": size, "path": str(target)}

    def _link(self, source: str, name: str) -> tuple[Path, int] | None:
        """Hard-link *source* as ``name`` (or ``stem (n).ext``) in the folder:
        ``(path, size)``, or ``None`` if it cannot be linked there (copy it then).
        A source of our own ``.partial`` is then removed: the file was moved."""
        size = os.stat(source).st_size  # a missing source fails here, before any name is taken
        for path in self._candidates(name):
            try:
                os.link(source, path, follow_symlinks=False)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno in _CANNOT_LINK:
                    log.debug("upload.save_copies", source=source, why=errno.errorcode.get(exc.errno or 0))
                    return None
                raise
            self._discard_partial(source)
            return path, size
        raise OSError(f"no free name for {name!r} in {self.directory}")

    def _discard_partial(self, source: str) -> None:
        """Remove a saved file's temp name if it is one of our ``.partial`` (and
        that folder once empty); any other writer's file stays its own."""
        # Our writers name their files in str(self.partial) itself: no path to resolve.
        if os.path.dirname(source) != str(self.partial) and Path(source).parent.resolve() != self.partial.resolve():
            return
        try:
            os.unlink(source)
        except FileNotFoundError:
            pass
        remove_dir_if_empty(str(self.partial))

    def _candidates(self, name: str) -> Iterator[Path]:
        """``name``, then ``stem (1).ext``, ``stem (2).ext``...: paths in the
        folder (made if missing), never outside it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        folder = self.directory.resolve()
        stem, dot, ext = name.rpartition(".")
        if not stem:
            stem, dot, ext = name, "", ""
        for n in range(10_000):
            candidate = name if n == 0 else f"{stem} ({n}){dot}{ext}"
            path = folder / candidate
            if path.parent != folder:  # cannot happen after safe_filename; checked anyway
                raise OSError(f"refusing to write outside {folder}: {candidate!r}")
            yield path

    def _reserve(self, name: str) -> tuple[Path, Any]:
        """Create ``name`` (or ``stem (n).ext``) exclusively in the folder."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        for path in self._candidates(name):
            try:
                fd = os.open(path, flags, 0o644)
            except FileExistsError:
                continue
            return path, os.fdopen(fd, "wb")
        raise OSError(f"no free name for {name!r} in {self.directory}")


class KeepInStore:
    """Consume hook for a writer that stored the entry itself (an S3 object):
    ``hook(upload_name, meta, entry) -> {"name": key, "size", "bucket", "key", "etag"}``.

    Nothing is copied: the object stays where the writer put it, and the page
    lists it by its key and size.
    """

    def __call__(self, upload: str, meta: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
        if "key" not in meta:
            raise TypeError(f"cannot keep an entry whose writer meta is {sorted(meta)}: need 'key'")
        size = meta.get("size", entry.get("client_size", 0))
        log.info("upload.stored", upload=upload, client_name=entry.get("client_name", ""),
                 bucket=meta.get("bucket"), key=meta["key"], size=size)
        return {"name": meta["key"], "size": size, "bucket": meta.get("bucket"), "key": meta["key"],
                "etag": meta.get("etag")}
