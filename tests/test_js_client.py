"""Phoenix's own JavaScript client (the shipped phoenix.min.js and
phoenix_live_view.min.js, loaded from our server into jsdom under Node)
against our app.

The ``lv:``/``lvu:`` handlers here are TEST DOUBLES of the session and the
upload channel (in-memory, no actors): they exist to prove the transport,
the page and the Node harness against the real client.  The real handlers
are the UploadSession/UploadChannel actors wired by ``server``'s session code.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app, find_node_modules, serve_in_thread
from server.page import InvalidSession, Rendered, render_upload_page
from server.transport import TopicHandler

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parent.parent
JS = REPO / "tests" / "js"
NODE = shutil.which("node")
NODE_MODULES = find_node_modules()


def _missing() -> str | None:
    if NODE is None:
        return "node is not installed"
    for pkg in ("jsdom", "ws", "phoenix", "phoenix_live_view"):
        if not (NODE_MODULES / pkg / "package.json").is_file():
            return f"npm package {pkg} missing under {NODE_MODULES}: run `npm ci`"
    return None


@pytest.fixture(autouse=True)
def _need_node() -> None:
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def run_node(script: str, url: str, spec: dict | None = None, timeout: float = 40) -> dict:
    """Run a harness script and return its JSON line; fail with its output."""
    proc = subprocess.run(
        [NODE, str(JS / script), url],
        input=json.dumps(spec or {}),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "HARNESS_TIMEOUT_MS": str(int((timeout - 5) * 1000))},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from {script} (rc={proc.returncode})\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
    result = json.loads(lines[-1])
    assert proc.returncode == 0 and result.get("ok"), (
        f"{script} failed (rc={proc.returncode}): {result.get('error')}\nstderr:{proc.stderr}"
    )
    return result


# ------------------------------------------------------------- test doubles


CONFIG = {
    "name": "files",
    "ref": "phx-upload-0",
    "accept": "any",
    "max_entries": 3,
    "max_file_size": 5_000,
    "chunk_size": 1_000,
    "chunk_timeout": 10_000,
    "auto_upload": False,
}


class FakeUploads:
    """In-memory stand-in for UploadSession + UploadChannel state of one app."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.tokens: dict[str, "FakeSession"] = {}
        self.received: dict[str, bytes] = {}  # client_name -> bytes saved
        self.events: list[tuple[str, str]] = []  # (topic prefix, event) seen


class FakeSession(TopicHandler):
    """TEST DOUBLE of the ``lv:`` session: page render, validate,
    allow_upload, progress, save, cancel — no actors, no writers."""

    def __init__(self, channel, app, uploads: FakeUploads) -> None:
        super().__init__(channel)
        self.app = app
        self.uploads = uploads
        self.entries: dict[str, dict[str, Any]] = {}
        self.data: dict[str, bytearray] = {}
        self.saved: list[dict[str, Any]] = []
        self.notice = ""
        self.last: Rendered | None = None

    def render(self) -> Rendered:
        config = {**self.uploads.config, "entries": list(self.entries.values())}
        return render_upload_page([config], self.saved, notice=self.notice)

    def diff(self) -> dict[str, Any]:
        new = self.render()
        out = new.diff(self.last)
        self.last = new
        return out

    async def join(self, payload: dict) -> tuple[str, dict]:
        try:
            self.app.state.signer.verify_join(self.channel.topic, payload)
        except InvalidSession as exc:
            return "error", {"reason": exc.reason}
        self.last = self.render()
        return "ok", {"rendered": self.last.to_json(), "liveview_version": self.app.state.liveview_version}

    async def handle_in(self, event: str, payload: Any, ref: str | None):
        self.uploads.events.append(("lv", event if event != "event" else payload.get("event")))
        cfg = self.uploads.config
        if event == "event" and payload.get("event") == "validate":
            for e in (payload.get("uploads") or {}).get(cfg["ref"], []):
                if e["ref"] not in self.entries:
                    too_large = e["size"] > cfg["max_file_size"]
                    self.entries[e["ref"]] = {
                        "ref": e["ref"], "client_name": e["name"], "client_size": e["size"],
                        "client_type": e["type"], "progress": 0, "done": False,
                        "cancelled": False, "valid": not too_large,
                        "errors": ["too_large"] if too_large else [], "preflighted": False,
                    }
            return "ok", {"diff": self.diff()}
        if event == "allow_upload":
            tokens, errors = {}, []
            for e in payload["entries"]:
                entry = self.entries.get(e["ref"])
                if entry is None or not entry["valid"]:
                    errors.append([e["ref"], "too_large"])
                    continue
                token = f"token-{self.channel.topic}-{e['ref']}"
                self.uploads.tokens[token] = self
                entry["preflighted"] = True
                tokens[e["ref"]] = token
            if errors:
                return "ok", {"ref": cfg["ref"], "error": errors, "diff": self.diff()}
            conf = {k: cfg[k] for k in ("max_file_size", "max_entries", "chunk_size", "chunk_timeout")}
            return "ok", {"diff": self.diff(), "ref": cfg["ref"], "config": conf, "entries": tokens, "errors": {}}
        if event == "progress":
            entry = self.entries[payload["entry_ref"]]
            progress = payload["progress"]
            if isinstance(progress, int):
                entry["progress"] = progress
                entry["done"] = progress == 100
            else:
                entry["errors"] = [progress.get("error", "failed")]
                entry["valid"] = False
            return "ok", {"diff": self.diff()}
        if event == "event" and payload.get("event") == "save":
            for ref, entry in list(self.entries.items()):
                if entry["done"]:
                    data = bytes(self.data.pop(ref, b""))
                    self.uploads.received[entry["client_name"]] = data
                    self.saved.append({"name": entry["client_name"], "size": len(data)})
                    del self.entries[ref]
            self.notice = f"saved {len(self.saved)} file(s)"
            return "ok", {"diff": self.diff()}
        if event == "event" and payload.get("event") == "cancel-upload":
            self.entries.pop(payload["value"]["ref"], None)
            self.data.pop(payload["value"]["ref"], None)
            return "ok", {"diff": self.diff()}
        return "ok", {}


class FakeUploadChannel(TopicHandler):
    """TEST DOUBLE of the ``lvu:`` channel: token lookup and chunk appends."""

    def __init__(self, channel, uploads: FakeUploads) -> None:
        super().__init__(channel)
        self.uploads = uploads
        self.session: FakeSession | None = None
        self.ref = channel.topic[len("lvu:"):]

    async def join(self, payload: dict) -> tuple[str, dict]:
        session = self.uploads.tokens.pop(payload.get("token"), None)
        if session is None or self.ref not in session.entries:
            return "error", {"reason": "invalid_token"}
        self.session = session
        session.data[self.ref] = bytearray()
        return "ok", {}

    async def handle_in(self, event: str, payload: Any, ref: str | None):
        self.uploads.events.append(("lvu", event))
        assert self.session is not None
        if event != "chunk" or not isinstance(payload, bytes):
            return "error", {"reason": "bad event"}
        buf = self.session.data[self.ref]
        entry = self.session.entries[self.ref]
        if len(buf) + len(payload) > entry["client_size"]:
            self.channel.close()
            return "error", {"reason": "file_size_limit_exceeded", "limit": entry["client_size"]}
        buf += payload
        if len(buf) == entry["client_size"]:
            self.channel.close()  # done: the channel stops normally after the reply
        return "ok", {}


def fake_app(config: dict[str, Any] = CONFIG):
    app = create_app(secret="test-secret", upload_configs=[config])
    uploads = FakeUploads(config)
    app.state.registry.register("lv:", lambda ch: FakeSession(ch, app, uploads))
    app.state.registry.register("lvu:", lambda ch: FakeUploadChannel(ch, uploads))
    return app, uploads


# ------------------------------------------------------------------- tests


def test_live_socket_connects_and_renders_the_join_reply():
    app, _ = fake_app()
    with serve_in_thread(app) as url:
        result = run_node("mount.mjs", url + "/")
    assert result["globals"] == {"Phoenix": "object", "LiveView": "object", "liveSocket": "object"}
    assert result["connected"] is True
    assert "phx-connected" in result["rootClasses"]
    assert result["rootId"].startswith("phx-")
    # The input came from the join reply's rendered (config ref of the double).
    assert result["input"]["data-phx-upload-ref"] == CONFIG["ref"]
    assert result["input"]["data-phx-hook"] == "Phoenix.LiveFileUpload"
    for attr in ("data-phx-active-refs", "data-phx-done-refs", "data-phx-preflighted-refs"):
        assert result["input"][attr] == ""
    assert "multiple" in result["input"]
    assert result["errors"] == []
    # liveview_version matched the client: no asset-mismatch warning.
    assert not [c for c in result["console"] if "mismatch" in c["text"]]


def test_join_with_a_forged_session_is_refused():
    app, uploads = fake_app()
    joined: list[Any] = []

    class Recorder(FakeSession):
        async def join(self, payload):
            payload = {**payload, "session": "forged." + str(payload.get("session"))}
            status, response = await super().join(payload)
            joined.append((status, response))
            return status, response

    app.state.registry.register("lv:", lambda ch: Recorder(ch, app, uploads))
    with serve_in_thread(app) as url:
        result = run_node("mount.mjs", url + "/")
    assert result["connected"] is False
    assert result["joinError"] == {"reason": "unauthorized"}
    assert joined and joined[0] == ("error", {"reason": "unauthorized"})


def _files(*specs: tuple[str, int]) -> list[dict[str, Any]]:
    return [
        {"name": name, "type": "application/octet-stream",
         "base64": base64.b64encode(os.urandom(size)).decode()}
        for name, size in specs
    ]


def test_real_client_uploads_files_through_the_doubles_byte_identical():
    app, uploads = fake_app()
    files = _files(("a.bin", 2_500), ("b.bin", 1_000), ("c.bin", 17))
    spec = {
        "steps": [
            {"select": files},
            {"waitFor": "li.entry", "count": 3},
            {"snapshot": "selected"},
            {"submit": None},
            {"waitFor": "#saved li", "count": 3},
        ]
    }
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    selected = result["snapshots"]["selected"]
    assert selected["inputs"][0]["data-phx-active-refs"] == "0,1,2"
    assert selected["inputs"][0]["data-phx-preflighted-refs"] == ""
    assert {name: base64.b64decode(f["base64"]) for name, f in
            ((f["name"], f) for f in files)} == uploads.received
    assert result["final"]["saved"] == ["a.bin (2500 bytes)", "b.bin (1000 bytes)", "c.bin (17 bytes)"]
    assert result["final"]["entries"] == []
    assert ("lvu", "chunk") in uploads.events
    assert result["errors"] == []


def test_real_client_shows_too_large_and_sends_nothing():
    app, uploads = fake_app()
    spec = {
        "steps": [
            {"select": _files(("big.bin", CONFIG["max_file_size"] + 1))},
            {"waitFor": "li.entry .error", "text": "too_large"},
            {"submit": None},
            {"snapshot": "after_submit"},
        ]
    }
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    entry = result["final"]["entries"][0]
    assert entry["state"] == "error" and entry["errors"] == ["too_large"]
    assert result["final"]["inputs"][0]["data-phx-error-refs"] == entry["ref"]
    assert uploads.received == {}
    assert ("lv", "allow_upload") not in uploads.events
    assert not [e for e in uploads.events if e[0] == "lvu"]


def test_real_client_cancels_an_entry_before_upload():
    app, uploads = fake_app()
    spec = {
        "steps": [
            {"select": _files(("keep.bin", 300), ("drop.bin", 200))},
            {"waitFor": "li.entry", "count": 2},
            {"click": 'li.entry[data-ref="1"] button'},
            {"waitGone": 'li.entry[data-ref="1"]'},
            {"submit": None},
            {"waitFor": "#saved li"},
        ]
    }
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    assert list(uploads.received) == ["keep.bin"]
    assert result["final"]["saved"] == ["keep.bin (300 bytes)"]


def test_real_client_auto_upload():
    config = {**CONFIG, "auto_upload": True}
    app, uploads = fake_app(config)
    files = _files(("auto.bin", 1_500))
    spec = {
        "steps": [
            {"select": files},
            {"waitFor": 'li.entry[data-state="done"]'},
            {"snapshot": "done"},
            {"submit": None},
            {"waitFor": "#saved li"},
        ]
    }
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    done = result["snapshots"]["done"]["inputs"][0]
    assert "data-phx-auto-upload" in done
    assert done["data-phx-done-refs"] == done["data-phx-preflighted-refs"] == "0"
    assert uploads.received == {"auto.bin": base64.b64decode(files[0]["base64"])}
