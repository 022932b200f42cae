"""Render what changed, once: the rendered tree's comprehensions and their
diffs, the page kept by the ``lv:`` handler from the session's change
reports, one render per progress event, and pushes that coalesce."""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

import pytest

from client.page_view import RenderedState, read_page
from server.liveview import LiveContext, LiveViewHandler, normalise_upload_configs
from server.page import Comprehension, LivePage, Rendered, render_upload_page
from server.page.fragments import entry_statics
from server.session_token import SessionSigner
from uploads import SessionChange, UploadSession

pytestmark = [pytest.mark.timeout(30)]

WAIT = 10.0


def entry(ref: str, **kw: Any) -> dict[str, Any]:
    base = {"ref": ref, "client_name": f"f{ref}.bin", "client_size": 1000, "client_type": "x/y",
            "progress": 0, "done": False, "cancelled": False, "valid": True, "errors": [], "preflighted": True}
    return {**base, **kw}


def config(n: int, **kw: Any) -> dict[str, Any]:
    base = {"name": "files", "ref": "phx-F1", "accept": "any", "max_entries": n, "auto_upload": False,
            "errors": [], "entries": [entry(str(i)) for i in range(n)]}
    return {**base, **kw}


def applied(before: Rendered, diff: dict[str, Any]) -> str:
    """The HTML a client that had ``before`` shows after ``diff``."""
    state = RenderedState(before.to_json())
    state.apply(diff)
    return state.html()


# ------------------------------------------------------------ the tree


def test_comprehension_join_form_and_html():
    c = Comprehension(["<li>", ":", "</li>"], [("a", "1"), ("b", "2")], ["a", "b"])
    assert c.to_json() == {"s": ["<li>", ":", "</li>"], "k": {"0": {"0": "a", "1": "1"}, "1": {"0": "b", "1": "2"},
                                                              "kc": 2}}
    r = Rendered(["<ul>", "</ul>"], [c])
    assert r.to_html() == "<ul><li>a:1</li><li>b:2</li></ul>"
    assert r.to_json()["0"] == c.to_json()
    assert RenderedState(r.to_json()).html() == r.to_html()
    empty = Rendered(["<ul>", "</ul>"], [Comprehension(["<li>", "</li>"])])
    assert empty.to_json()["0"] == {"s": ["<li>", "</li>"], "k": {"kc": 0}} and empty.to_html() == "<ul></ul>"


def test_comprehension_diff_carries_only_the_changed_fields_of_the_changed_rows():
    s = ["<li>", ":", "</li>"]
    a = Rendered(["<ul>", "</ul>"], [Comprehension(s, [("a", "1"), ("b", "2"), ("c", "3")], ["a", "b", "c"])])
    b = Rendered(["<ul>", "</ul>"], [Comprehension(s, [("a", "1"), ("b", "20"), ("c", "3")], ["a", "b", "c"])])
    assert b.diff(a) == {"0": {"k": {"1": {"1": "20"}, "kc": 3}}}
    assert b.diff(b) == {}
    assert applied(a, b.diff(a)) == b.to_html()


def test_comprehension_diff_moves_adds_and_drops_rows_by_key():
    s = ["<li>", ":", "</li>"]
    tree = lambda *rows: Rendered(["<ul>", "</ul>"], [Comprehension(s, [(k, v) for k, v in rows], [k for k, _ in rows])])  # noqa: E731
    a = tree(("a", "1"), ("b", "2"), ("c", "3"))
    dropped_first = tree(("b", "2"), ("c", "3"))
    assert dropped_first.diff(a) == {"0": {"k": {"0": 1, "1": 2, "km": 1, "kc": 2}}}
    moved_and_changed = tree(("c", "30"), ("a", "1"), ("d", "4"))
    diff = moved_and_changed.diff(a)["0"]["k"]
    assert diff["0"] == [2, {"1": "30"}] and diff["1"] == 0 and diff["2"] == {"0": "d", "1": "4"}
    for new in (dropped_first, moved_and_changed, tree(), tree(("a", "1"))):
        assert applied(a, new.diff(a)) == new.to_html()


def test_random_diffs_applied_by_the_client_give_the_new_html():
    rng = random.Random(7)
    s = ["<li id=\"", "\">", "</li>"]
    keys = [str(i) for i in range(12)]
    old = Rendered(["<ul>", "</ul><p>", "</p>"], [Comprehension(s, []), "x"])
    state = RenderedState(old.to_json())
    for _ in range(200):
        chosen = rng.sample(keys, rng.randint(0, len(keys)))
        rows = [(k, str(rng.randint(0, 3))) for k in chosen]
        new = Rendered(["<ul>", "</ul><p>", "</p>"], [Comprehension(s, rows, chosen), rng.choice("xy")])
        state.apply(new.diff(old))
        assert state.html() == new.to_html()
        old = new


def test_an_entrys_statics_are_the_same_for_every_kind_of_entry():
    page = render_upload_page([config(0, max_entries=9, entries=[
        entry("0"), entry("1", progress=40), entry("2", done=True, progress=100),
        entry("3", valid=False, errors=["too_large"]), entry("4", cancelled=True, errors=[("channel_crash", "x")]),
    ])])
    (tree,) = [d for d in page.dynamics if isinstance(d, Comprehension)]
    assert tree.statics is entry_statics() and len(tree.rows) == 5
    assert [e.state for e in read_page(page.to_html()).entries.values()] == ["pending", "uploading", "done", "error", "error"]


# ------------------------------------------------------------ the page


def test_a_progress_change_diffs_one_entrys_changed_fields():
    page = LivePage()
    page.put_config(config(100))
    page.rendered()
    before = page._sent
    page.put_entry("files", entry("42", progress=37))
    diff = page.diff()
    # Only the entries comprehension (its row 42's changed fields) and the live region.
    (entries_key,) = [k for k, v in diff.items() if isinstance(v, dict)]
    keyed = diff[entries_key]["k"]
    assert set(keyed) == {"42", "kc"} and keyed["kc"] == 100
    # pending -> uploading: its state, its percentage, and what it says if the socket drops ("not sent" -> "failed")
    assert set(keyed["42"].values()) <= {"37", "uploading", "failed"} and "37" in keyed["42"].values()
    assert set(diff) - {entries_key} <= {str(i) for i in range(len(page._sent.dynamics))}
    assert all(isinstance(v, str) and "Uploading" in v for k, v in diff.items() if k != entries_key)
    assert before is not None and applied(before, diff) == page._sent.to_html()
    page.put_entry("files", entry("42", progress=38))
    assert page.diff() == {entries_key: {"k": {"42": {n: "38" for n in keyed["42"] if keyed["42"][n] == "37"},
                                                "kc": 100}}}
    assert page.diff() == {}


def test_the_page_matches_a_full_render_after_any_changes():
    page = LivePage()
    page.put_config(config(5))
    sent = page.rendered()
    state = RenderedState(sent.to_json())
    data = config(5)
    changes = [
        entry("1", progress=50), entry("2", done=True, progress=100), entry("3", valid=False, errors=["too_large"]),
        entry("0", cancelled=True), entry("4", cancelled=True, errors=[("channel_crash", "boom")]),
    ]
    for change in changes:
        page.put_entry("files", change)
        data["entries"] = [change if e["ref"] == change["ref"] else e for e in data["entries"]]
        state.apply(page.diff())
        assert state.html() == render_upload_page([data]).to_html()
    data["entries"] = data["entries"][2:]
    page.put_config(data)
    page.notice = "saved 2 file(s)"
    page.set_saved([{"name": "a", "size": 1}])
    state.apply(page.diff())
    assert state.html() == render_upload_page([data], [{"name": "a", "size": 1}], notice="saved 2 file(s)").to_html()


def test_over_the_limit_marks_and_the_selection_follow_entry_changes():
    """While the config has too_many_files, the entries past max_entries are
    marked: an entry added or cancelled moves the mark (those rows only) and
    the selection words; a progress step of a marked entry keeps the fast path."""
    data = config(2, errors=["too_many_files"], entries=[entry("0"), entry("1"), entry("2")])
    page = LivePage()
    page.put_config(data)
    state = RenderedState(page.rendered().to_json())

    def marked() -> list[str]:
        return re.findall(r'data-ref="(\w+)" data-state="\w+" data-over-limit', state.html())

    def check(change: dict[str, Any]) -> dict[str, Any]:
        page.put_entry("files", change)
        data["entries"] = [e for e in data["entries"] if e["ref"] != change["ref"]] + [change] \
            if change["ref"] not in {e["ref"] for e in data["entries"]} \
            else [change if e["ref"] == change["ref"] else e for e in data["entries"]]
        diff = page.diff()
        state.apply(diff)
        assert state.html() == render_upload_page([data]).to_html()
        return diff

    assert "3 files chosen: 1 over the limit of 2" in state.html() and marked() == ["2"]
    diff = check(entry("3"))  # a fourth: it is marked too, no other row changes
    assert "4 files chosen: 2 over the limit of 2" in state.html()
    (rows,) = [v["k"] for v in diff.values() if isinstance(v, dict)]
    assert set(rows) == {"3", "kc"} and marked() == ["2", "3"]
    check(entry("0", cancelled=True))  # the first goes: 2 is no longer over, 3 still is
    assert "3 files chosen: 1 over the limit of 2" in state.html() and marked() == ["3"]
    renders = page.renders
    check(entry("3", progress=40))  # pending -> uploading: not the fast path, the mark stays
    diff = check(entry("3", progress=41))  # the fast path: the marked row's percentage only
    (rows,) = [v["k"] for v in diff.values() if isinstance(v, dict)]
    assert set(rows) == {"2", "kc"} and set(rows["2"].values()) == {"41"}
    assert page.renders == renders + 2 and marked() == ["3"]  # one render per diff
    data["errors"] = []
    page.put_config(data)  # the config's error goes: no entry is marked
    state.apply(page.diff())
    assert state.html() == render_upload_page([data]).to_html() and "data-over-limit" not in state.html()
    assert "3 files chosen" in state.html() and "over the limit" not in state.html() and marked() == []


# ------------------------------------------------------------ the handler


class StandInChannel:
    """What a handler uses of ``server.transport.Channel``; records frames.
    ``hold`` set: a push waits until it is cleared (a slow socket)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.join_ref = "1"
        self.connection = object()
        self.joined = False
        self.closed = False
        self.replies: list[tuple[str, dict]] = []
        self.pushes: list[dict] = []
        self.hold: asyncio.Event | None = None
        self.pushing = asyncio.Event()

    async def reply(self, ref: str | None, status: str, response: dict) -> bool:
        self.replies.append((status, response))
        return True

    async def push(self, event: str, payload: dict) -> bool:
        self.pushing.set()
        if self.hold is not None:
            await self.hold.wait()
        self.pushes.append(payload)
        return True

    def close(self) -> None:
        self.closed = True

    def crash(self, reason: str = "channel_crash") -> None:
        self.closed = True


async def joined_page(n: int) -> tuple[LiveViewHandler, StandInChannel, str]:
    signer = SessionSigner("test-secret")
    page = signer.new_page()
    context = LiveContext(signer=signer, consume=lambda name, meta, entry: None,
                          upload_configs=normalise_upload_configs({"files": {"accept": "any", "max_entries": n}}))
    channel = StandInChannel(f"lv:{page.view_id}")
    handler = LiveViewHandler(channel, context)  # type: ignore[arg-type]
    status, response = await handler.join({
        "url": "http://test/", "params": {"_csrf_token": page.csrf_token, "_mounts": 0},
        "session": page.session_token, "static": page.static_token,
    })
    assert status == "ok", response
    channel.joined = True
    channel.state = RenderedState(response["rendered"])  # type: ignore[attr-defined]
    ref = read_page(channel.state.html()).inputs[0].ref  # type: ignore[attr-defined]
    files = [{"path": "files", "ref": str(i), "name": f"f{i}.bin", "size": 1000, "type": "x/y"} for i in range(n)]
    await handler.handle_in("event", {"type": "form", "event": "validate", "value": "", "uploads": {ref: files}}, "2")
    await handler.handle_in("allow_upload", {"ref": ref, "entries": files}, "3")
    for _, response in channel.replies:
        channel.state.apply(response.get("diff", {}))  # type: ignore[attr-defined]
    return handler, channel, ref


async def settled(handler: LiveViewHandler) -> None:
    """Until the session has handled everything sent before and the loop has
    pushed what its reports asked for: a round trip to the session (the
    wake-ups its reports scheduled reach the loop before its reply), then the
    push task they started, if any."""
    await handler._proxy().uploads()
    task = handler._push_task
    if task is not None:
        await asyncio.wait_for(asyncio.shield(task), WAIT)


def test_a_progress_event_renders_once_and_its_reply_carries_only_that_entrys_fields():
    async def main() -> None:
        handler, channel, ref = await joined_page(100)
        try:
            await settled(handler)
            renders, pushes = handler.page.renders, len(channel.pushes)
            for step, percent in enumerate((10, 11, 12)):
                await handler.handle_in("progress", {"event": None, "ref": ref, "entry_ref": "57",
                                                     "progress": percent}, f"p{step}")
                await settled(handler)
                status, response = channel.replies[-1]
                assert status == "ok"
                keyed = [v["k"] for v in response["diff"].values() if isinstance(v, dict)]
                assert len(keyed) == 1 and set(keyed[0]) == {"57", "kc"}
                assert str(percent) in keyed[0]["57"].values()
                channel.state.apply(response["diff"])  # type: ignore[attr-defined]
                assert handler.page.renders == renders + step + 1  # one render per event, none for its on_change
                assert len(channel.pushes) == pushes  # and no second diff pushed
            shown = read_page(channel.state.html())  # type: ignore[attr-defined]
            assert [e.state for e in shown.entries.values()].count("uploading") == 1
            assert channel.state.html() == handler.page._sent.to_html()  # type: ignore[attr-defined, union-attr]
        finally:
            await handler.leave("test")

    asyncio.run(main())


def test_changes_nobody_asked_for_are_pushed_once_per_burst():
    async def main() -> None:
        handler, channel, ref = await joined_page(3)
        try:
            await settled(handler)
            loop = asyncio.get_running_loop()
            pushes, renders = len(channel.pushes), handler.page.renders
            for percent in (5, 6, 7, 8):  # four reports before the loop runs anything
                handler._on_update(loop, SessionChange("files", entry=entry("1", progress=percent)))
            await settled(handler)
            assert len(channel.pushes) == pushes + 1 and handler.page.renders == renders + 1
            (diff,) = channel.pushes[pushes:]
            assert "8" in next(v for v in diff.values() if isinstance(v, dict))["k"]["1"].values()
        finally:
            await handler.leave("test")

    asyncio.run(main())


def test_pushes_queued_behind_a_slow_socket_merge():
    async def main() -> None:
        handler, channel, ref = await joined_page(4)
        try:
            await settled(handler)
            loop = asyncio.get_running_loop()
            pushes = len(channel.pushes)
            channel.hold = asyncio.Event()
            channel.pushing.clear()
            handler._on_update(loop, SessionChange("files", entry=entry("0", progress=1)))
            await asyncio.wait_for(channel.pushing.wait(), WAIT)  # the first push is stuck in the socket
            for ref_, percent in (("1", 20), ("2", 30), ("1", 21), ("3", 40)):
                handler._on_update(loop, SessionChange("files", entry=entry(ref_, progress=percent)))
                await asyncio.sleep(0)
            channel.hold.set()
            await settled(handler)
            merged = channel.pushes[pushes:]
            assert len(merged) == 2  # the stuck one, then everything since in one
            keyed = next(v for v in merged[1].values() if isinstance(v, dict))["k"]
            assert set(keyed) == {"1", "2", "3", "kc"} and "21" in keyed["1"].values()
        finally:
            await handler.leave("test")

    asyncio.run(main())


def test_a_finished_upload_reaches_the_page_as_one_push():
    async def main() -> None:
        handler, channel, ref = await joined_page(2)
        try:
            await settled(handler)
            pushes = len(channel.pushes)
            channel.pushing.clear()
            # The session marks the entry done on its own (as a channel's upload_done would).
            handler._proxy().update_progress(ref, "0", 100)  # not through the handler: no reply takes it
            await asyncio.wait_for(channel.pushing.wait(), WAIT)
            await settled(handler)
            assert len(channel.pushes) == pushes + 1
        finally:
            await handler.leave("test")

    asyncio.run(main())


# ------------------------------------------------------------ the session's reports


def test_the_session_reports_which_entry_changed():
    reports: list[SessionChange] = []
    session = UploadSession.start(on_update=reports.append)
    try:
        proxy = session.proxy()
        cfg = proxy.allow_upload("files", accept="any", max_entries=3).get(timeout=WAIT)
        proxy.put_entries("files", [{"ref": "0", "name": "a", "size": 10, "type": "x/y"},
                                    {"ref": "1", "name": "b", "size": 10, "type": "x/y"}]).get(timeout=WAIT)
        returned = proxy.update_progress(cfg["ref"], "1", 40).get(timeout=WAIT)
        assert [(r.upload, r.config is not None, r.entry is not None) for r in reports] == [
            ("files", True, False), ("files", True, False), ("files", False, True)]
        assert reports[-1].entry == returned and returned["progress"] == 40 and returned["ref"] == "1"
        assert [e["ref"] for e in reports[1].config["entries"]] == ["0", "1"]  # type: ignore[index]
        proxy.cancel_upload("files", "0").get(timeout=WAIT)
        assert [e["ref"] for e in reports[-1].config["entries"]] == ["1"]  # type: ignore[index]
        proxy.disallow_upload("files").get(timeout=WAIT)
        assert reports[-1] == SessionChange("files")
    finally:
        session.stop()
