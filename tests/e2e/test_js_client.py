"""Phoenix's own JavaScript client against the real server: the shipped
``phoenix.min.js`` and ``phoenix_live_view.min.js``, loaded from our server
into jsdom under Node, mount the page, select files (LiveView's
``track-uploads`` event), submit, cancel; the ``lv:``/``lvu:`` topics are the
real handlers, backed by ``UploadSession`` and ``UploadChannel`` actors, and
the files must arrive byte-identical in the uploads folder.

Phoenix's ``EntryUploader`` (``entry_uploader.js``, unchanged) is also driven
from plain Node over phoenix's ``Socket`` for the ``lvu:`` error paths.
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
from server.liveview import LiveViewHandler
from tests.server.server_helpers import journal_writer, wait_released
from writers import FaultyWriter, Journal

# Node and jsdom dominate these tests' time, so they run on the default
# substrate only; tests/server/test_server.py runs the same handlers on both.
pytestmark = [pytest.mark.timeout(60), pytest.mark.substrates("pool")]

REPO = Path(__file__).resolve().parents[2]
JS = Path(__file__).resolve().parent / "js"
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


CONFIG = {"accept": "any", "max_entries": 3, "max_file_size": 5_000, "chunk_size": 1_000}


def real_app(tmp_path: Path, **options: Any):
    """The real app with one upload ``files`` saving into ``tmp_path/uploads``."""
    return create_app(secret="test-secret", uploads_dir=tmp_path / "uploads",
                      upload_configs={"files": {**CONFIG, **options}})


def _files(*specs: tuple[str, int]) -> list[dict[str, Any]]:
    return [
        {"name": name, "type": "application/octet-stream",
         "base64": base64.b64encode(os.urandom(size)).decode()}
        for name, size in specs
    ]


def _saved(tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "uploads"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def _sent(files: list[dict[str, Any]]) -> dict[str, bytes]:
    return {f["name"]: base64.b64decode(f["base64"]) for f in files}


def _events(frames: list[dict], topic_prefix: str) -> list[str]:
    return [f["msg"][3] for f in frames
            if f["dir"] == "out" and isinstance(f.get("msg"), list) and str(f["msg"][2]).startswith(topic_prefix)]


# ------------------------------------------------------------------- mount


def test_live_socket_connects_and_renders_the_join_reply(tmp_path):
    app = real_app(tmp_path)
    with serve_in_thread(app) as url:
        result = run_node("mount.mjs", url + "/")
    assert result["globals"] == {"Phoenix": "object", "LiveView": "object", "liveSocket": "object"}
    assert result["connected"] is True
    assert "phx-connected" in result["rootClasses"]
    assert result["rootId"].startswith("phx-")
    # The input came from the join reply: its id is the session's config ref.
    ref = result["input"]["data-phx-upload-ref"]
    assert ref.startswith("phx-") and result["input"]["id"] == ref
    assert result["input"]["data-phx-hook"] == "Phoenix.LiveFileUpload"
    for attr in ("data-phx-active-refs", "data-phx-done-refs", "data-phx-preflighted-refs"):
        assert result["input"][attr] == ""
    assert "multiple" in result["input"]
    assert result["errors"] == []
    # liveview_version matched the client: no asset-mismatch warning.
    assert not [c for c in result["console"] if "mismatch" in c["text"]]


@pytest.mark.pure
def test_join_with_a_forged_session_is_refused(tmp_path):
    app = real_app(tmp_path)
    joined: list[Any] = []

    class Forging(LiveViewHandler):
        async def join(self, payload):
            payload = {**payload, "session": "forged." + str(payload.get("session"))}
            reply = await super().join(payload)
            joined.append(reply)
            return reply

    app.state.registry.register("lv:", lambda ch: Forging(ch, app.state.live))
    with serve_in_thread(app) as url:
        result = run_node("mount.mjs", url + "/")
    assert result["connected"] is False
    assert result["joinError"] == {"reason": "unauthorized"}
    assert joined and joined[0] == ("error", {"reason": "unauthorized"})
    assert not app.state.live.sessions


# ----------------------------------------------------------------- uploads


def test_one_file_arrives_byte_identical(tmp_path):
    app = real_app(tmp_path, max_entries=1)
    files = _files(("photo.jpg", 4_321))
    spec = {"steps": [
        {"select": files},
        {"waitFor": "li.entry"},
        {"snapshot": "selected"},
        {"submit": None},
        {"waitFor": "#saved li"},
    ]}
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    selected = result["snapshots"]["selected"]["inputs"][0]
    assert "multiple" not in selected
    assert selected["data-phx-active-refs"] == "0" and selected["data-phx-preflighted-refs"] == ""
    assert _saved(tmp_path) == _sent(files)
    assert result["final"]["saved"] == ["photo.jpg (4.2 KB)"]
    assert result["final"]["entries"] == []
    assert result["final"]["notice"] == "saved 1 file(s)"
    assert _events(result["frames"], "lvu:") == ["phx_join"]
    assert len([f for f in result["frames"] if f["dir"] == "out" and "binary" in f]) == 5  # 1,000-byte chunks
    assert result["errors"] == []


def test_several_files_with_max_entries_above_one(tmp_path):
    app = real_app(tmp_path)
    files = _files(("a.bin", 2_500), ("b.bin", 1_000), ("c.bin", 17))
    spec = {"steps": [
        {"select": files},
        {"waitFor": "li.entry", "count": 3},
        {"snapshot": "selected"},
        {"submit": None},
        {"waitFor": "#saved li", "count": 3},
    ]}
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    assert result["snapshots"]["selected"]["inputs"][0]["data-phx-active-refs"] == "0,1,2"
    assert _saved(tmp_path) == _sent(files)
    assert result["final"]["saved"] == ["a.bin (2.4 KB)", "b.bin (1000 bytes)", "c.bin (17 bytes)"]
    assert result["final"]["entries"] == []
    assert result["final"]["inputs"][0]["data-phx-active-refs"] == ""


def test_a_file_over_max_file_size_shows_too_large_and_writes_nothing(tmp_path):
    app = real_app(tmp_path)
    spec = {"steps": [
        {"select": _files(("big.bin", CONFIG["max_file_size"] + 1))},
        {"waitFor": "li.entry .error", "text": "too_large"},
        {"submit": None},
        {"snapshot": "after_submit"},
    ]}
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    entry = result["final"]["entries"][0]
    assert entry["state"] == "error" and entry["errors"] == ["too_large"]
    assert result["final"]["inputs"][0]["data-phx-error-refs"] == entry["ref"]
    assert _saved(tmp_path) == {}
    lv_events = _events(result["frames"], "lv:")
    assert "allow_upload" not in lv_events
    assert _events(result["frames"], "lvu:") == []


def test_a_second_file_picked_in_a_single_file_input_replaces_the_first(tmp_path):
    app = real_app(tmp_path, max_entries=1)
    first, second = _files(("first.bin", 1_000)), _files(("second.bin", 1_200))
    spec = {"steps": [
        {"select": first},
        {"waitFor": "li.entry", "text": "first.bin"},
        {"select": second},
        {"waitFor": "li.entry", "text": "second.bin"},
        {"snapshot": "replaced"},
        {"submit": None},
        {"waitFor": "#saved li"},
    ]}
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    replaced = result["snapshots"]["replaced"]
    assert [e["text"].split()[0] for e in replaced["entries"]] == ["second.bin"]
    assert "too_many_files" not in replaced["html"]
    assert result["final"]["saved"] == ["second.bin (1.2 KB)"]
    assert _saved(tmp_path) == {"second.bin": base64.b64decode(second[0]["base64"])}


def test_auto_upload(tmp_path):
    app = real_app(tmp_path, auto_upload=True)
    files = _files(("auto.bin", 1_500))
    spec = {"steps": [
        {"select": files},
        {"waitFor": 'li.entry[data-state="done"]'},
        {"snapshot": "done"},
        {"submit": None},
        {"waitFor": "#saved li"},
    ]}
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    done = result["snapshots"]["done"]["inputs"][0]
    assert "data-phx-auto-upload" in done
    assert done["data-phx-done-refs"] == done["data-phx-preflighted-refs"] == "0"
    assert _saved(tmp_path) == _sent(files)


def test_cancel_an_entry_before_upload(tmp_path):
    app = real_app(tmp_path)
    files = _files(("keep.bin", 300), ("drop.bin", 200))
    spec = {"steps": [
        {"select": files},
        {"waitFor": "li.entry", "count": 2},
        {"click": 'li.entry[data-ref="1"] button'},
        {"waitGone": 'li.entry[data-ref="1"]'},
        {"submit": None},
        {"waitFor": "#saved li"},
    ]}
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
    assert _saved(tmp_path) == {"keep.bin": _sent(files)["keep.bin"]}
    assert result["final"]["saved"] == ["keep.bin (300 bytes)"]


def test_cancel_an_entry_in_the_middle_of_its_upload(tmp_path):
    # Auto-upload: a submit would lock the form, and LiveView patches a locked
    # form only when it unlocks, so the progress would not show while it runs.
    journal = Journal()
    size = 3_000_000
    app = real_app(tmp_path, max_file_size=size, chunk_size=1_000, auto_upload=True,
                   writer=journal_writer(journal))
    spec = {"steps": [
        {"select": _files(("long.bin", size))},
        {"waitFor": 'li.entry[data-state="uploading"]', "timeoutMs": 20000},
        {"click": 'li.entry[data-ref="0"] button'},
        {"waitGone": "li.entry"},
        # The diff removing the entry and the entry channel's phx_close travel
        # on different topics: wait for the second before the page closes.
        {"waitFrame": {"topic": "lvu:0", "event": "phx_close"}},
    ]}
    with serve_in_thread(app) as url:
        result = run_node("steps.mjs", url + "/", spec)
        wait_released(journal, "long.bin")
    assert journal.closes("long.bin") == ["cancel"]
    assert _saved(tmp_path) == {}
    assert result["final"]["entries"] == [] and result["final"]["saved"] == []
    # The server ended the entry's channel: the client saw phx_close on lvu:.
    closed = [f for f in result["frames"] if f["dir"] == "in" and isinstance(f.get("msg"), list)
              and f["msg"][2] == "lvu:0" and f["msg"][3] == "phx_close"]
    assert closed


# ------------------------------------------------ EntryUploader error paths


def test_entry_uploader_paths(tmp_path):
    """One Node run, four cases, each on its own page: a complete upload,
    ``invalid_token``, ``file_size_limit_exceeded`` and ``writer_error``."""
    journal = Journal()
    tmp_writer = journal_writer(journal)

    def writer(name, entry, session):
        if entry["client_name"] == "writer_error.bin":
            return (FaultyWriter, {"fault": "error", "at_chunk": 2, "reason": "disk on fire", "journal": journal})
        return tmp_writer(name, entry, session)

    app = real_app(tmp_path, writer=writer)
    cases = [{"case": "ok", "size": 4_500}, {"case": "invalid_token"},
             {"case": "file_size_limit_exceeded", "size": 2_500, "extra": 1_000}, {"case": "writer_error"}]
    with serve_in_thread(app) as url:
        results = run_node("entry_uploader.mjs", url + "/", {"cases": cases})["results"]
        for name in ("ok.bin", "file_size_limit_exceeded.bin"):
            wait_released(journal, name)

    done = results["ok"]
    assert done["errors"] == [] and done["outcome"] == "done"
    assert done["progress"][-1] == 100 and done["offset"] == 4_500
    assert journal.closes("ok.bin") == ["done"]  # never submitted: its page's end released it

    invalid = results["invalid_token"]
    assert invalid["errors"] == ["invalid_token"]
    assert invalid["progressPushes"][-1]["progress"] == {"error": "invalid_token"}
    assert invalid["uploadChannelState"] == "closed" and invalid["offset"] == 0
    assert not [item for item in journal.items() if item[1:2] == ("invalid_token.bin",)]  # no writer

    too_big = results["file_size_limit_exceeded"]
    assert too_big["errors"] == ["file_size_limit_exceeded"]
    replies = [f["msg"][4] for f in too_big["frames"]
               if f["dir"] == "in" and isinstance(f.get("msg"), list) and f["msg"][2] == "lvu:0"
               and f["msg"][3] == "phx_reply" and f["msg"][4]["status"] == "error"]
    # The refusal; then, if the harness is still listening, Phoenix's answer to the
    # client's leave of the topic the server had already closed.
    assert replies[0] == {"status": "error", "response": {"reason": "file_size_limit_exceeded", "limit": 2_500}}
    assert all(r == {"status": "error", "response": {"reason": "unmatched topic"}} for r in replies[1:])
    assert journal.closes("file_size_limit_exceeded.bin") == ["cancel"]

    failed = results["writer_error"]
    assert failed["outcome"] == "writer_error" and failed["errored"] is True
    # The server recorded the failure; the client reported nothing more.
    assert failed["errors"] == []
    assert all(not isinstance(p["progress"], dict) for p in failed["progressPushes"])
    assert failed["uploadChannelState"] == "closed"
    assert ("close", ("error", "disk on fire")) in journal.items()
    assert "writer_failure: disk on fire" in json.dumps(failed["frames"])
    assert _saved(tmp_path) == {}


def test_the_real_client_works_with_the_app_mounted_under_a_prefix(tmp_path):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    uploads = real_app(tmp_path)
    parent = Starlette(routes=[Mount("/upload", app=uploads)])
    files = _files(("m.bin", 1_234))
    spec = {"steps": [{"select": files}, {"waitFor": "li.entry"}, {"submit": None}, {"waitFor": "#saved li"}]}
    with serve_in_thread(parent, ws_max_size=uploads.state.max_message_size) as url:
        result = run_node("steps.mjs", url + "/upload/", spec)
    assert result["final"]["saved"] == ["m.bin (1.2 KB)"]
    assert _saved(tmp_path) == _sent(files)
