"""The ``lv:<view id>`` topic: the LiveView's role, one ``UploadSession`` per join.

:class:`LiveViewHandler` implements LiveView's upload events as Phoenix's own
JavaScript client sends them (see ``docs/protocol.md``):

* ``phx_join``: verifies the page's signed session, starts an
  ``UploadSession`` with the app's ``allow_upload`` configs and answers with
  the ``rendered`` page;
* ``event`` of the form's change binding with ``uploads``: tracks the selected
  files (``put_entries``); the submit binding consumes the completed entries
  through the app's consume hook; the cancel binding cancels an entry;
* ``allow_upload``: the preflight (entry tokens or ``too_large`` /
  ``too_many_files`` / ``not_accepted``);
* ``progress``: the client's per-entry progress or error.

Every field the client sends is type-checked by :mod:`server.client_input`
before it reaches the session: a malformed event gets an error reply and a
structured warning, and the session never sees it. What only the session
knows (an unknown config or entry ref) comes back from it as an error and
gets the same reply and warning.

The page is a :class:`~server.page.LivePage` kept by the handler, fed only
by the session's change reports (``on_update``: one entry, or a whole
config), which the session makes in its thread before the call that caused
them returns; they wait in a queue until the loop takes them. Every reply
takes the queued reports, so it carries the diff of its own change (and of
any other since the last diff): one render per change, and only what changed
(one entry's changed fields for a progress event). Reports that no reply
takes (an upload finishing, a channel crashing or timing out) wake one push
task on the loop, which sends them as one ``diff`` event; reports arriving
while a push is being sent (a slow socket) wait and go out together in the
next. Replies and pushes are computed and sent under one lock so the client
applies diffs in the order they were made.

The loop never blocks on the session: every call is an awaited proxy future.
When the topic ends (leave, disconnect, crash, shutdown) the session is
stopped, and with it every upload channel, each closing its writer with
``"cancel"``. A crashed session ends the topic with ``phx_error``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

import actors
from actors import ProcessRef, substrates
from actors.bridge import exit_future
from uploads import SessionChange, UploadConfig, UploadSession, validate_accept

from .budgets import Slot, SocketBudgets
from .client_input import (
    BadInput,
    Cancel,
    Preflight,
    Progress,
    parse_cancel,
    parse_preflight,
    parse_progress,
    parse_uploads,
)
from .page import LivePage, PageEvents
from .session_token import InvalidSession, SessionSigner
from .transport import Channel, Reply, TopicHandler

__all__ = ["ConsumeHook", "LiveContext", "LiveViewHandler", "normalise_upload_configs", "session_substrate"]

log = structlog.get_logger("liveupload.server")

#: ``consume(upload_name, meta, entry) -> value``, run in the session's process
#: for each completed entry when the form is submitted. ``meta`` is the
#: writer's meta (``{"path": ...}`` for the default temp-file writer, valid
#: only during the call); ``entry`` the entry as plain data. A value that is a
#: mapping with ``name`` (and ``size``, optionally ``error``) is what the page
#: lists; otherwise the client's file name and size are listed. An exception
#: crashes the session (as in Phoenix): the page gets ``phx_error`` and rejoins.
ConsumeHook = Callable[[str, Mapping[str, Any], Mapping[str, Any]], Any]

_UNKNOWN = {"reason": "unknown event"}

#: Events the socket's reader handles itself when the page's session runs on the
#: server's loop: the client's progress reports, the only frequent ones.
_INLINE_ON_LOOP = frozenset({"progress"})


def normalise_upload_configs(configs: Any) -> dict[str, dict[str, Any]]:
    """``{name: allow_upload kwargs}`` from that mapping or from a sequence of
    dicts with a ``name`` key; every config is checked now (a bad option
    raises ``ValueError``/``TypeError`` at app creation, not at a join)."""
    if isinstance(configs, Mapping):
        items = [(name, dict(options)) for name, options in configs.items()]
    else:
        items = []
        for config in configs:
            options = dict(config)
            options.pop("ref", None)
            options.pop("entries", None)
            items.append((options.pop("name"), options))
    result: dict[str, dict[str, Any]] = {}
    for name, options in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"an upload name must be a non-empty string, got {name!r}")
        options.setdefault("accept", "any")
        UploadConfig(name=name, ref="check", **{**options, "accept": validate_accept(options["accept"])})
        result[name] = options
    if not result:
        raise ValueError("at least one upload config is needed")
    return result


@dataclass
class LiveContext:
    """What every ``lv:``/``lvu:`` handler of one app shares."""

    signer: SessionSigner
    upload_configs: dict[str, dict[str, Any]]
    consume: ConsumeHook
    liveview_version: str | None = None
    token_max_age: float = 3600.0
    stop_timeout: float = 10.0
    events: PageEvents = field(default_factory=PageEvents)
    #: Pages and topics each socket may have joined at once.
    budgets: SocketBudgets = field(default_factory=SocketBudgets)
    #: live session ref -> its handler; how an ``lvu:`` join finds its page.
    sessions: dict[ProcessRef, LiveViewHandler] = field(default_factory=dict)


class LiveViewHandler(TopicHandler):
    """One joined ``lv:`` topic: the page of one browser tab."""

    def __init__(self, channel: Channel, context: LiveContext) -> None:
        super().__init__(channel)
        self.context = context
        self.session: ProcessRef | None = None
        self.proxy: Any = None
        self.names: list[str] = []  # upload names, in page order
        self.saved: list[dict[str, Any]] = []
        self.page = LivePage(events=context.events)
        self._news: deque[SessionChange] = deque()  # the session's reports not yet on the page
        self._wake_scheduled = False
        self._requests = 0  # events being handled (their replies take the news)
        self._lock = asyncio.Lock()
        self._closing = False
        self._push_task: asyncio.Task | None = None
        self._session_down: asyncio.Future | None = None
        self._slot = Slot(context.budgets, channel.connection, page=True)
        self._log = log.bind(topic=channel.topic, join_ref=channel.join_ref)

    # -------------------------------------------------------------- joining

    async def join(self, payload: dict) -> Reply:
        """Within the socket's budgets (else ``too_many_pages`` /
        ``too_many_topics``, and nothing is started), join the page."""
        return await self._slot.join_within(lambda: self._join(payload), self._log, "lv.budget_exceeded")

    async def _join(self, payload: dict) -> Reply:
        try:
            self.context.signer.verify_join(self.channel.topic, payload)
        except InvalidSession as exc:
            self._log.warning("lv.join_refused", reason=exc.reason, detail=exc.detail)
            return "error", {"reason": exc.reason}
        # A rejoin (``_mounts`` > 0: the socket dropped, or the server restarted)
        # is a fresh session: the previous one's uploads are gone. The page's
        # script says which files were lost (it saw them; a page reloaded by a
        # server with another secret comes back here with ``_mounts`` 0).
        loop = asyncio.get_running_loop()
        substrate = session_substrate(self.context)
        if substrate == "loop":
            # Its asks cross no thread: the socket's reader may handle a progress
            # event itself (``inline_events``), no hop through the topic's task.
            self.inline_events = _INLINE_ON_LOOP
        self.session = UploadSession.start(
            substrate=substrate,
            on_update=lambda change: self._on_update(loop, change), token_max_age=self.context.token_max_age
        )
        try:
            self._session_down = exit_future(self.session)
            self._session_down.add_done_callback(self._session_ended)
            self.proxy = proxy = self.session.proxy()
            for name, options in self.context.upload_configs.items():
                await proxy.allow_upload(name, **options)
                self.names.append(name)
            self._take_news()
            rendered = self.page.rendered()
        except BaseException:
            await self._stop_actors()
            raise
        self.context.sessions[self.session] = self
        self._log.info("lv.joined", session=str(self.session))
        response: dict[str, Any] = {"rendered": rendered.to_json()}
        if self.context.liveview_version:
            response["liveview_version"] = self.context.liveview_version
        return "ok", response

    # -------------------------------------------------------------- events

    async def handle_in(self, event: str, payload: Any, ref: str | None) -> Reply | None:
        if not isinstance(payload, dict):
            self._log.warning("lv.bad_payload", event_name=event, why="binary payload on the lv: topic")
            return "error", {"reason": "invalid payload"}
        self._requests += 1
        try:
            async with self._lock:
                try:
                    status, response = await self._dispatch(event, payload)
                except BadInput as exc:  # refused at the edge: the session never sees it
                    self._log.warning(exc.log_event, why=exc.why)
                    status, response = "error", {"reason": exc.reason}
                if status == "ok":
                    diff = self._diff()
                    if diff:
                        response = {"diff": diff, **response}
                await self.channel.reply(ref, status, response)
        finally:
            self._requests -= 1
        if self._news:  # news the reply did not take (an error reply, or news since)
            self._request_push()
        return None

    async def _dispatch(self, event: str, payload: dict) -> tuple[str, dict]:
        if event == "event":
            return await self._event(payload)
        if event == "allow_upload":
            return await self._allow_upload(parse_preflight(payload))
        if event == "progress":
            return await self._progress(parse_progress(payload))
        self._log.warning("lv.unknown_event", event_name=event)
        return "error", dict(_UNKNOWN)

    async def _event(self, payload: dict) -> tuple[str, dict]:
        name = payload.get("event")
        events = self.context.events
        if name == events.change:
            uploads = payload.get("uploads")
            if uploads is None:
                return "ok", {}
            return await self._track(parse_uploads(uploads))
        if name == events.submit:
            await self._save()
            return "ok", {}
        if name == events.cancel:
            return await self._cancel(parse_cancel(payload.get("value")))
        self._log.warning("lv.unknown_event", event_name="event", phx_event=repr(name)[:100])
        return "error", dict(_UNKNOWN)

    async def _cancel(self, cancel: Cancel) -> tuple[str, dict]:
        result = await self._proxy().cancel_upload(cancel.upload, cancel.ref)
        if _is_error(result):
            self._log.warning("lv.cancel_refused", upload=cancel.upload, entry=cancel.ref, error=result[1])
            return "error", {"reason": "invalid cancel"}
        self._log.info("lv.entry_cancelled", upload=cancel.upload, entry=cancel.ref)
        return "ok", {}

    async def _track(self, uploads: dict[str, list[dict[str, Any]]]) -> tuple[str, dict]:
        """The change event: the selected files per config ref."""
        proxy = self._proxy()
        for config_ref, entries in uploads.items():
            result = await proxy.put_entries(config_ref, entries)
            if _is_error(result):
                self._log.warning("lv.bad_uploads", config=config_ref, error=result[1])
                return "error", {"reason": "invalid uploads"}
        return "ok", {}

    async def _allow_upload(self, preflight: Preflight) -> tuple[str, dict]:
        """The preflight; its reply status is always ok, as in Phoenix (an error
        reply only for a malformed request)."""
        result = await self._proxy().preflight(preflight.config_ref, preflight.entries)
        if _is_error(result):
            self._log.warning("lv.bad_preflight", config=preflight.config_ref[:100], error=result[1])
            return "error", {"reason": "invalid preflight"}
        if "error" in result:
            self._log.info("lv.preflight_rejected", config=result["ref"], errors=result["error"])
        return "ok", result

    async def _progress(self, report: Progress) -> tuple[str, dict]:
        result = await self._proxy().update_progress(report.config_ref, report.entry_ref, report.progress)
        if _is_error(result):
            self._log.warning("lv.bad_progress", entry=report.entry_ref[:100], error=result[1])
            return "error", {"reason": "invalid progress"}
        return "ok", {}

    async def _save(self) -> None:
        """The submit: consume every completed entry, config by config, but only
        when none of a config's entries is still uploading (consuming then is a
        programming error that would crash the session)."""
        proxy = self._proxy()
        saved_now = 0
        waiting = 0
        for name in self.names:
            done, running = await proxy.uploaded_entries(name)
            if running:
                waiting += len(running)
                continue
            if not done:
                continue
            results = await proxy.consume_uploaded_entries(name, _consumer(self.context.consume, name))
            for entry, value in results:
                self.saved.append(_saved_item(entry, value))
                saved_now += 1
        if waiting:
            self.page.notice = f"{waiting} upload(s) not finished: nothing saved from them"
        else:
            self.page.notice = f"saved {saved_now} file(s)" if saved_now else "nothing to save"
        if saved_now:
            self.page.set_saved(self.saved)
        self._log.info("lv.saved", saved=saved_now, unfinished=waiting)

    # ------------------------------------------------------------ rendering

    def _proxy(self) -> Any:
        assert self.proxy is not None, "the session is started at join"
        return self.proxy

    def _take_news(self) -> None:
        """Put the session's queued reports on the page, in order."""
        news, page = self._news, self.page
        while news:
            change = news.popleft()
            if change.entry is not None:
                page.put_entry(change.upload, change.entry)
            elif change.config is not None:
                page.put_config(_page_config(change.config))
            else:
                page.remove_config(change.upload)

    def _diff(self) -> dict[str, Any]:
        """The page's diff since the last one the client got, with every report so far."""
        self._take_news()
        return self.page.diff()

    def _on_update(self, loop: asyncio.AbstractEventLoop, change: SessionChange) -> None:
        """The session changed (called in the session's thread, before the call
        that made the change returns): queue the report, and wake the loop
        once per burst (a reply may take the report before the wake-up runs)."""
        self._news.append(change)
        if self._requests:
            return  # the event being handled takes it, or pushes it once replied
        if not self._wake_scheduled:
            self._wake_scheduled = True
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:  # the loop is closed
                pass

    def _wake(self) -> None:
        self._wake_scheduled = False  # before looking at the queue: a report after this wakes again
        self._request_push()

    def _request_push(self) -> None:
        """Push the queued reports, unless an event's reply or the push task
        running will take them."""
        if self._closing or not self._news or self._requests:
            return
        if self._push_task is not None and not self._push_task.done():
            return  # it looks at the queue again after each push
        self._push_task = asyncio.get_running_loop().create_task(
            self._push_news(), name=f"push {self.channel.topic}"
        )

    async def _push_news(self) -> None:
        """Push what changed, one diff for everything queued; what arrives while
        a push is being sent goes in the next."""
        while self._news and not self._requests:
            async with self._lock:
                if self._closing or self.channel.closed or not self.channel.joined or not self._news:
                    return  # (a reply took the news meanwhile)
                diff = self._diff()
                if diff:
                    await self.channel.push("diff", diff)

    # --------------------------------------------------------------- ending

    def _session_ended(self, future: asyncio.Future) -> None:
        """The session exited while the topic was up: close or crash the topic."""
        if self._closing or future.cancelled():
            return
        reason = future.result()
        if actors.is_clean_exit(reason):
            self._log.info("lv.session_ended", reason=repr(reason))
            self.channel.close()
        else:
            self._log.error("lv.session_crashed", reason=repr(reason))
            self.channel.crash()

    async def leave(self, reason: str) -> None:
        self._slot.give_back()
        self._closing = True
        if self.session is not None:
            self.context.sessions.pop(self.session, None)
        task = self._push_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._stop_actors()
        self._log.info("lv.left", reason=reason, saved=len(self.saved))

    async def _stop_actors(self) -> None:
        """Stop the session (its channels close their writers with ``"cancel"``),
        and wait for it to be gone."""
        self._closing = True
        session, down = self.session, self._session_down
        if session is not None and session.is_alive():
            session.stop(block=False)
        if session is not None and down is not None:
            try:
                await asyncio.wait_for(asyncio.shield(down), self.context.stop_timeout)
            except asyncio.TimeoutError:
                self._log.error("lv.session_stop_timeout", seconds=self.context.stop_timeout)
                actors.exit(session, actors.KILL)
                await asyncio.shield(down)

    # ----------------------------------------------------------- lvu: joins

    async def join_upload(self, token: Any) -> Any:
        """An ``lvu:`` join with ``token``: the channel's ref or ``("error", {...})``."""
        return await self._proxy().join(token)


# ---------------------------------------------------------------- helpers


def session_substrate(context: LiveContext) -> str | None:
    """Where a page's session runs: the server's event loop (``"loop"``) when
    one is bound and nothing the session runs can wait on anything slow (the
    consume hook and every config's writer factory declare ``loop_safe``, no
    config has a ``progress`` hook that does not), so each event's ask of the
    session crosses no thread; else the runtime's default (the shared pool),
    where a hook that stalls holds only its own page."""
    if substrates.bound_loop() is None or not getattr(context.consume, "loop_safe", False):
        return None
    for options in context.upload_configs.values():
        if not getattr(options.get("writer"), "loop_safe", False):
            return None
        progress = options.get("progress")
        if progress is not None and not getattr(progress, "loop_safe", False):
            return None
    return "loop"


def _is_error(result: Any) -> bool:
    return isinstance(result, tuple) and len(result) == 2 and result[0] == "error"


def _consumer(consume: ConsumeHook, name: str) -> Callable[[Any, Any], Any]:
    def consume_entry(meta: Any, entry: Any) -> tuple[str, Any]:  # runs in the session's process
        return ("ok", (entry, consume(name, meta, entry)))

    return consume_entry


def _saved_item(entry: Mapping[str, Any], value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and "name" in value:
        item = {"name": value["name"], "size": value.get("size", entry.get("client_size", 0))}
        if value.get("error"):
            item["error"] = value["error"]
        return item
    return {"name": entry.get("client_name", ""), "size": entry.get("client_size", 0)}


def _page_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A session config as the page renders it: config-level errors only."""
    return {**config, "errors": [error for ref, error in config.get("errors", ()) if ref == config["ref"]]}
