"""Where ``liveupload serve`` keeps completed uploads: the default consume hook.

:class:`SaveToDirectory` copies a consumed entry (a ``TmpFileWriter``'s
``{"path"}`` or a ``MemoryWriter``'s ``{"data"}``) into one folder under a
sanitised version of the client's file name. The name can never leave the
folder (no separators, no ``..``, no hidden or device names), and an existing
file is never overwritten: ``cat.png`` becomes ``cat (1).png``. The name is
reserved with ``O_CREAT | O_EXCL`` so concurrent sessions cannot pick the
same one.

:class:`KeepInStore` is the hook for writers that already put the bytes where
they belong (``S3Writer``: ``{"bucket", "key", "size", "etag"}``): it copies
nothing and lists the object by key and size.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

__all__ = ["KeepInStore", "SaveToDirectory", "safe_filename"]

log = structlog.get_logger("liveupload.server")

_FORBIDDEN = set('<>:"/\\|?*')
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_MAX_NAME_BYTES = 200  # well under the usual 255-byte limit, leaving room for " (n)"


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

    Runs in the session's process (never on the event loop). If the copy
    fails, nothing is left behind and the result carries ``"error"`` instead,
    which the page shows next to the file's name.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def __call__(self, upload: str, meta: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
        client_name = entry.get("client_name", "")
        try:
            target, handle = self._reserve(safe_filename(client_name))
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
        log.info("upload.saved", upload=upload, client_name=client_name, path=str(target), size=size)
        return {"name": target.name, "size": size, "path": str(target)}

    def _reserve(self, name: str) -> tuple[Path, Any]:
        """Create ``name`` (or ``stem (n).ext``) exclusively in the folder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        folder = self.directory.resolve()
        stem, dot, ext = name.rpartition(".")
        if not stem:
            stem, dot, ext = name, "", ""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        for n in range(10_000):
            candidate = name if n == 0 else f"{stem} ({n}){dot}{ext}"
            path = folder / candidate
            if path.parent != folder:  # cannot happen after safe_filename; checked anyway
                raise OSError(f"refusing to write outside {folder}: {candidate!r}")
            try:
                fd = os.open(path, flags, 0o644)
            except FileExistsError:
                continue
            return path, os.fdopen(fd, "wb")
        raise OSError(f"no free name for {name!r} in {folder}")


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
