"""Where a page's session runs: on the server's loop when nothing it runs may
wait on anything slow (the default saver's hook and writers), else on the pool."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from actors import substrates
from server.liveview import LiveContext, LiveViewHandler, normalise_upload_configs, session_substrate
from server.session_token import SessionSigner
from server.storage import SaveToDirectory
from tests.server.test_render_once import StandInChannel

pytestmark = [pytest.mark.timeout(30)]


def context(consume: Any, **options: Any) -> LiveContext:
    return LiveContext(signer=SessionSigner("test-secret"), consume=consume,
                       upload_configs=normalise_upload_configs({"files": {"accept": "any", "max_entries": 3,
                                                                          **options}}))


def loop_safe(fn: Any) -> Any:
    fn.loop_safe = True
    return fn


def test_the_session_goes_on_the_loop_only_when_its_hook_writers_and_progress_hooks_say_so(tmp_path: Path) -> None:
    saver = SaveToDirectory(tmp_path)

    async def main() -> dict[str, str | None]:
        assert substrates.bind_loop()
        try:
            return {
                "saver": session_substrate(context(saver, writer=saver.writer)),
                "own hook": session_substrate(context(lambda name, meta, entry: None, writer=saver.writer)),
                "default writer": session_substrate(context(saver)),
                "progress hook": session_substrate(context(saver, writer=saver.writer,
                                                           progress=lambda name, entry, session: None)),
                "loop_safe progress hook": session_substrate(context(
                    saver, writer=saver.writer, progress=loop_safe(lambda name, entry, session: None))),
            }
        finally:
            substrates.unbind_loop()

    assert asyncio.run(main()) == {"saver": "loop", "own hook": None, "default writer": None,
                                   "progress hook": None, "loop_safe progress hook": "loop"}
    assert session_substrate(context(saver, writer=saver.writer)) is None  # no loop bound


@pytest.mark.parametrize("on_loop", [True, False])
def test_a_progress_event_runs_in_the_session_on_the_loops_thread_or_on_another(tmp_path: Path, on_loop: bool) -> None:
    saver = SaveToDirectory(tmp_path)
    threads: list[int] = []

    @loop_safe
    def progress(name: str, entry: Any, session: Any) -> None:
        threads.append(threading.get_ident())

    consume = saver if on_loop else (lambda name, meta, entry: None)

    async def main() -> None:
        assert substrates.bind_loop()
        signer = SessionSigner("test-secret")
        page = signer.new_page()
        live = LiveContext(signer=signer, consume=consume, upload_configs=normalise_upload_configs(
            {"files": {"accept": "any", "max_entries": 1, "writer": saver.writer, "progress": progress}}))
        channel = StandInChannel(f"lv:{page.view_id}")
        handler = LiveViewHandler(channel, live)  # type: ignore[arg-type]
        try:
            status, response = await handler.join({
                "url": "http://test/", "params": {"_csrf_token": page.csrf_token, "_mounts": 0},
                "session": page.session_token, "static": page.static_token,
            })
            assert status == "ok", response
            channel.joined = True
            ref = (await handler._proxy().uploads())["files"]["ref"]
            files = [{"path": "files", "ref": "0", "name": "f0.bin", "size": 1000, "type": "x/y"}]
            await handler.handle_in("event", {"type": "form", "event": "validate", "value": "",
                                              "uploads": {ref: files}}, "2")
            await handler.handle_in("allow_upload", {"ref": ref, "entries": files}, "3")
            await handler.handle_in("progress", {"event": None, "ref": ref, "entry_ref": "0", "progress": 5}, "4")
            assert channel.replies[-1][0] == "ok"
            assert threads, "the progress hook ran"
            loop_thread = threading.get_ident()
            if on_loop:
                assert set(threads) == {loop_thread}
                assert "progress" in handler.inline_events
            else:  # the runtime's default substrate: the loop too when the suite runs on it
                assert not handler.inline_events
                if substrates.default_substrate() != "loop":
                    assert loop_thread not in threads
        finally:
            await handler.leave("test")
            substrates.unbind_loop()

    asyncio.run(main())
