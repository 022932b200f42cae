"""Hostile input on the wire (issue 17): what a client announces, writes into
the log or sends as a bad frame costs a bounded amount, and a real upload
completes afterwards."""

from __future__ import annotations

import json
import logging

import pytest
from websockets.exceptions import ConnectionClosed

import actors
from server.storage import safe_filename
from tests.hostile.wire_helpers import assert_real_upload_completes, rendered_log, server
from tests.server.wire import Page, Upload, Wire, ok

pytestmark = pytest.mark.timeout(60)


def test_a_flood_of_announced_entries_is_not_kept_and_replies_stay_small(tmp_path):
    # chunk_size sets the socket's message limit: room for 2,000 entries per event.
    with server(tmp_path, config={"chunk_size": 400_000}) as (url, app):
        wire = Wire(url)
        page = Page(wire)
        request_sizes, reply_sizes = [], []
        for round_ in range(8):
            entries = [{"path": "files", "ref": f"r{round_}-{i}", "name": f"f{i}.bin", "size": 10,
                        "type": "application/octet-stream", "last_modified": 1795417331733} for i in range(2_000)]
            payload = {"type": "form", "event": "validate", "value": "", "meta": {"_target": "files"},
                       "uploads": {page.config_ref: entries}}
            request_sizes.append(len(json.dumps(payload)))
            reply = page.call("event", payload)
            assert reply["status"] == "ok"
            reply_sizes.append(len(json.dumps(reply)))
        assert len(page.view.entries) <= 18
        assert page.view.upload_errors == ["too_many_files"]
        assert max(reply_sizes[1:]) < 2_000, reply_sizes  # later events change nothing: tiny replies
        assert reply_sizes[0] < request_sizes[0] // 10, (reply_sizes[0], request_sizes[0])
        wire.close()
        assert_real_upload_completes(url, tmp_path)


def test_client_strings_are_escaped_and_cut_in_the_log(tmp_path):
    with server(tmp_path, config={"chunk_size": 64_000}) as (url, app), rendered_log() as log:
        wire = Wire(url)
        topic = "lvu:\x1b]0;owned\x07\x1b[2J" + "A" * 60_000
        wire.send("1", "1", topic, "phx_join", {"token": "x"})
        assert wire.reply_to("1")["status"] == "error"
        page = Page(wire)
        reply = page.call("event", {"type": "click", "event": "cancel-upload",
                                    "value": {"ref": "\x1b[31m" + "B" * 60_000, "upload": "files\r\nfake line"}})
        assert reply["status"] == "error"
        wire.close()
        assert_real_upload_completes(url, tmp_path)
        actors.log.flush_logging()
        text = log.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "fake line\n" not in text
    assert "\\x1b" in text
    assert "…(60016 chars)" in text or "…(60018 chars)" in text  # the topic: its first 200 characters
    assert max(len(line) for line in text.splitlines()) < 5_000


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_text_frame_that_is_not_utf8_logs_one_warning(tmp_path):
    uvicorn_log = logging.getLogger("uvicorn.error")  # uvicorn's own logger, which does not propagate
    seen = Records()
    with server(tmp_path) as (url, app):
        uvicorn_log.addHandler(seen)
        try:
            wire = Wire(url)
            with wire.ws.protocol_mutex:  # a text frame of raw bytes, as only a hostile client sends
                wire.ws.protocol.send_text(b"\xff\xfe[1]")
                wire.ws.send_data()
            with pytest.raises(ConnectionClosed) as closed:
                wire.ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
            wire.close()
        finally:
            uvicorn_log.removeHandler(seen)
        records = [r for r in seen.records if r.levelno >= logging.WARNING]
        assert [(r.levelname, r.getMessage(), r.exc_info) for r in records] == [("WARNING", "frame.invalid_utf8", None)]
        assert_real_upload_completes(url, tmp_path)


def test_a_long_file_name_is_cut_where_it_is_echoed_and_kept_where_it_is_data(tmp_path):
    name = "N" * 20_000 + "-end.txt"
    data = b"a long name " * 10
    with server(tmp_path, config={"chunk_size": 64_000}) as (url, app), rendered_log() as log:
        wire = Wire(url)
        try:
            page = Page(wire)
            reply = page.track({name: len(data)})
            assert reply["status"] == "ok"
            assert len(json.dumps(reply)) < 4_000  # the name echoed cut, not 20 KB
            html = page.state.html()
            assert "N" * 60 + "…" + "N" * 12 + "-end.txt" in html and "N" * 61 not in html
            [live] = app.state.live.sessions.values()
            [entry] = live.session.proxy().uploads().get(timeout=10)["files"]["entries"]
            assert entry["client_name"] == name  # the session keeps the whole name
            tokens = page.allow()["entries"]
            upload = Upload(page, "0", tokens["0"])
            assert upload.join_reply == ok()
            upload.send_all(data)
            assert page.submit()["status"] == "ok"
            [saved] = list((tmp_path / "uploads").iterdir())
            assert saved.read_bytes() == data
            assert saved.name == safe_filename(name) and len(saved.name.encode()) == 200  # the safe-name rules
            [shown] = page.view.saved
            assert shown.startswith("N" * 60 + "…" + saved.name[-20:]) and len(shown) < 120
        finally:
            wire.close()
        actors.log.flush_logging()
        [saved_line] = [line for line in log.getvalue().splitlines() if "upload.saved" in line]
        assert "client_name='" + "N" * 200 + "…(20008 chars)'" in saved_line and len(saved_line) < 1_000  # cut at 200
