"""A socket's outbound bytes are bounded: a client that never reads while
the server queues replies for it is closed past its budget, logged once, and
nothing else is harmed."""

from __future__ import annotations

import pytest

from server.app import create_app, serve_in_thread
from server.transport import TopicHandler
from tests.server.wire import Page, Upload, Wire, ok

from .rawws import RawSocket, text

pytestmark = pytest.mark.timeout(60)

BUDGET = 256 * 1024
REPLY = 30_000


class BigReply(TopicHandler):
    """Joins answered with a 30 KB reply, as a large page render is."""

    async def join(self, payload: dict):
        return "ok", {"pad": "x" * REPLY}

    async def handle_in(self, event, payload, ref):
        return "ok", {}


def test_a_never_reading_client_past_its_outbound_budget_is_closed(tmp_path, logs):
    app = create_app(uploads_dir=tmp_path / "saved", max_outbound_bytes=BUDGET, handlers={"big:": BigReply})
    with serve_in_thread(app) as url:
        raw = RawSocket(url, rcvbuf=2048, timeout=2.0)
        assert raw.upgrade() == 101
        def joins(round_: int) -> bytes:  # each on a topic of its own: nothing waits for an old one
            return b"".join(text(str(i), str(i), f"big:{round_}:{i}", "phx_join", {}) for i in range(64))

        sent = raw.flood(joins, limit=20_000_000)
        raw.close()
        assert sent, "the server took every join and never closed the socket"
        exceeded = [e for e in logs if e["event"] == "ws.outbound_budget_exceeded"]
        assert len(exceeded) == 1, exceeded  # logged once, with its figures
        assert exceeded[0]["limit"] == BUDGET and exceeded[0]["queued_bytes"] > BUDGET
        assert exceeded[0]["queued_bytes"] < BUDGET + 2 * REPLY
        dropped = [e for e in logs if e["event"] == "ws.dropped"]
        assert [(e["code"], e["reason"], e["aborted"]) for e in dropped] == [(1008, "outbound budget exceeded", True)]
        # Nothing else harmed: another socket uploads a file end to end.
        wire = Wire(url)
        page = Page(wire)
        upload = Upload(page, "0", page.upload_tokens({"after.bin": 3_000})["0"])
        upload.send_all(b"a" * 3_000)
        assert page.submit()["status"] == "ok"
        wire.close()
    assert (tmp_path / "saved" / "after.bin").read_bytes() == b"a" * 3_000
    assert not app.state.transport.connections
