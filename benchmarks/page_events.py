"""What one ``progress`` event costs the server, with N entries on the page.

A :class:`~server.liveview.LiveViewHandler` is driven in this process, on an
asyncio loop of its own, through a stand-in channel that encodes every reply
and push as the transport would (``server.protocol``) and counts them: join
the page, select and preflight ``entries`` files, then send ``events``
progress events spread over the entries (rising percentages, none reaching
100). Server CPU is ``time.process_time()`` across the events, so the
session's thread, the proxy hops, rendering, diffing and encoding are all in
it, and so is any ``diff`` push an event causes (the run waits for them).

``bound=True`` runs the page as ``liveupload serve`` does: the handler's loop
is bound as the ``"loop"`` substrate's home and the page's hooks are
``loop_safe``, so its session runs on that loop
(``server.liveview.session_substrate``) and an event's ask crosses no thread.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import actors
from actors import substrates
from server import protocol
from server.liveview import LiveContext, LiveViewHandler, normalise_upload_configs, session_substrate
from server.protocol import Message
from server.session_token import SessionSigner
from writers import MemoryWriter

__all__ = ["PageEventCost", "measure_progress_events", "measure_round_trip"]


@dataclass
class PageEventCost:
    """Per-event figures of one run."""

    entries: int
    events: int
    cpu_us_per_event: float
    replies: int
    pushes: int
    reply_bytes_per_event: float
    push_bytes: int


@dataclass
class _Channel:
    """The part of ``server.transport.Channel`` a handler uses; frames are
    encoded as the transport would, then counted and dropped."""

    topic: str
    join_ref: str = "1"
    connection: object = field(default_factory=object)
    joined: bool = False
    closed: bool = False
    replies: int = 0
    pushes: int = 0
    reply_bytes: int = 0
    push_bytes: int = 0
    pushed: list[dict[str, Any]] = field(default_factory=list)

    async def reply(self, ref: str | None, status: str, response: dict) -> bool:
        self.replies += 1
        self.reply_bytes += len(protocol.encode_reply(self.join_ref, ref, self.topic, status, response))
        return True

    async def push(self, event: str, payload: dict) -> bool:
        self.pushes += 1
        self.push_bytes += len(protocol.encode_text(Message(self.join_ref, None, self.topic, event, payload)))
        return True

    def close(self) -> None:
        self.closed = True

    def crash(self, reason: str = "channel_crash") -> None:
        self.closed = True


async def _settle(handler: LiveViewHandler) -> None:
    """Wait until no push is pending: a round trip to the session (the
    wake-ups its news scheduled on the loop come before its reply), then the
    push task they started, if any."""
    await handler._proxy().uploads()
    task = handler._push_task
    if task is not None and not task.done():
        await asyncio.gather(task, return_exceptions=True)


def _keep_nothing(name: str, meta: Any, entry: Any) -> None:
    """The page's consume hook (never called: the run submits nothing)."""


_keep_nothing.loop_safe = True  # type: ignore[attr-defined]  # as the shipped saver declares


def _in_memory(name: str, entry: Any, session: Any) -> tuple[type, dict]:
    """The page's writer factory (never called: the run uploads no chunk)."""
    return MemoryWriter, {}


_in_memory.loop_safe = True  # type: ignore[attr-defined]  # its MemoryWriters are loop_safe


async def _run(entries: int, events: int, bound: bool = False) -> PageEventCost:
    if not bound:
        return await _measure(entries, events, bound)
    if not substrates.bind_loop():
        raise RuntimeError("another loop is bound as the loop substrate's home")
    try:
        return await _measure(entries, events, bound)
    finally:
        substrates.unbind_loop()


async def _measure(entries: int, events: int, bound: bool) -> PageEventCost:
    signer = SessionSigner("bench-secret")
    page = signer.new_page()
    config: dict[str, Any] = {"accept": "any", "max_entries": entries}
    if bound:
        config["writer"] = _in_memory
    context = LiveContext(
        signer=signer,
        upload_configs=normalise_upload_configs({"files": config}),
        consume=_keep_nothing if bound else (lambda name, meta, entry: None),
    )
    if bound and session_substrate(context) != "loop":
        raise RuntimeError("the page's session would not run on the bound loop")
    channel = _Channel(topic=f"lv:{page.view_id}")
    handler = LiveViewHandler(channel, context)  # type: ignore[arg-type]  # a stand-in channel
    status, _ = await handler.join({
        "url": "http://bench/", "params": {"_csrf_token": page.csrf_token, "_mounts": 0},
        "session": page.session_token, "static": page.static_token, "sticky": False,
    })
    assert status == "ok", status
    channel.joined = True
    try:
        uploads = await handler._proxy().uploads()
        ref = uploads["files"]["ref"]
        files = [{"path": "files", "ref": str(i), "name": f"file-{i}.bin", "size": 1_000_000,
                  "type": "application/octet-stream", "last_modified": 1} for i in range(entries)]
        await handler.handle_in("event", {"type": "form", "event": context.events.change, "value": "",
                                          "uploads": {ref: files}}, "2")
        await handler.handle_in("allow_upload", {"ref": ref, "entries": files}, "3")
        await _settle(handler)
        replies, pushes, reply_bytes, push_bytes = (channel.replies, channel.pushes,
                                                    channel.reply_bytes, channel.push_bytes)
        started = time.process_time()
        for i in range(events):
            entry, step = i % entries, i // entries
            await handler.handle_in("progress", {"event": None, "ref": ref, "entry_ref": str(entry),
                                                 "progress": 1 + step % 98}, str(10 + i))
        await _settle(handler)
        cpu = time.process_time() - started
        return PageEventCost(
            entries=entries,
            events=events,
            cpu_us_per_event=cpu / events * 1e6,
            replies=channel.replies - replies,
            pushes=channel.pushes - pushes,
            reply_bytes_per_event=(channel.reply_bytes - reply_bytes) / events,
            push_bytes=channel.push_bytes - push_bytes,
        )
    finally:
        await handler.leave("bench")


def measure_progress_events(entries: int, events: int = 2_000, *, bound: bool = False) -> PageEventCost:
    """Per-event server CPU of ``events`` progress events on a page of ``entries``
    entries; ``bound``: the session on the handler's own loop, as served."""
    return asyncio.run(_run(entries, events, bound))


class _Echo(actors.Process):
    def ping(self, value: Any) -> Any:
        return value


async def _round_trips(count: int, bound: bool) -> float:
    if bound and not substrates.bind_loop():
        raise RuntimeError("another loop is bound as the loop substrate's home")
    ref = _Echo.start()
    try:
        proxy = ref.proxy()
        await proxy.ping(0)
        started = time.process_time()
        for i in range(count):
            await proxy.ping(i)
        return (time.process_time() - started) / count * 1e6
    finally:
        ref.stop()
        if bound:
            substrates.unbind_loop()


def measure_round_trip(count: int = 2_000, *, bound: bool = False) -> float:
    """Server CPU (µs) of one bare ask of a process from the event loop, as the
    handler asks its session once per event: the share of a progress event
    that is the runtime's hop, not the page's or the session's work
    (``bound``: the process on the asking loop, as a served page's session)."""
    return asyncio.run(_round_trips(count, bound))


if __name__ == "__main__":  # pragma: no cover - a quick look by hand
    for n in (10, 100):
        print(measure_progress_events(n))
