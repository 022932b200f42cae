"""What the client sends with the change event and how it takes the
preflight's answers, as Phoenix's JavaScript client does, whatever server
answers: ``_target`` in the urlencoded form value as well as in ``meta``, and
each entry's answer (a signed string from Phoenix or liveupload, the entry's
fields from pyview-web) passed back unchanged as its ``lvu:`` join token."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from client import FileResult, upload
from client.page_view import PageView

pytestmark = pytest.mark.timeout(10)


class FakePage:
    """The page's side of a batch: records the events, answers the preflight with ``tokens``."""

    def __init__(self, tokens: dict[str, Any]) -> None:
        self.tokens = tokens
        self.events: list[tuple[str, dict]] = []
        self.view = PageView(form={"phx-change": "validate", "phx-submit": "save"})
        self.socket = SimpleNamespace()

    async def form_event(self, name: str, **extra: Any) -> dict:
        self.events.append(("event", {"event": name, **extra}))
        return {}

    async def push(self, event: str, payload: dict) -> dict:
        self.events.append((event, payload))
        return {"config": {"chunk_size": 1_000}, "entries": self.tokens}

    async def cancel(self, ref: str) -> None:
        self.events.append(("cancel", {"ref": ref}))


def _batch(tmp_path: Path, page: FakePage, refs: list[str]) -> Any:
    results = []
    for ref in refs:
        path = tmp_path / f"f{ref}.bin"
        path.write_bytes(os.urandom(10))
        results.append(FileResult(path=str(path), name=path.name, size=10, ref=ref))
    return upload._Batch(page, "cfg", "files", results, None, 2)  # type: ignore[arg-type]


def test_the_change_event_carries_the_target_in_the_form_value_and_in_meta(tmp_path, monkeypatch):
    page = FakePage({"0": "signed"})
    joined: list[Any] = []

    async def fake_entry(batch: Any, result: FileResult, token: Any) -> None:
        joined.append(token)
        result.ok = True

    monkeypatch.setattr(upload, "_upload_entry", fake_entry)
    asyncio.run(upload._upload_batch(_batch(tmp_path, page, ["0"])))
    kind, change = page.events[0]
    assert kind == "event" and change["event"] == "validate"
    assert change["value"] == "_target=files" and change["meta"] == {"_target": "files"}
    assert list(change["uploads"]) == ["cfg"] and joined == ["signed"]


def test_any_preflight_answer_is_the_join_token_and_a_missing_or_external_one_fails(tmp_path, monkeypatch):
    fields = {"ref": "0", "name": "f0.bin", "size": 10, "path": "files"}  # pyview-web answers with the entry
    page = FakePage({"0": fields, "1": {"uploader": "S3", "url": "https://example.invalid"}})
    joined: dict[str, Any] = {}

    async def fake_entry(batch: Any, result: FileResult, token: Any) -> None:
        joined[result.ref] = token
        result.ok = True

    monkeypatch.setattr(upload, "_upload_entry", fake_entry)
    batch = _batch(tmp_path, page, ["0", "1", "2"])
    asyncio.run(upload._upload_batch(batch))
    assert joined == {"0": fields}
    ok, external, missing = batch.results
    assert ok.ok and not external.ok and not missing.ok
    assert external.error == "external uploader 'S3': not supported by this client"
    assert missing.error == "failed preflight"
    assert [payload["ref"] for kind, payload in page.events if kind == "cancel"] == ["1", "2"]
