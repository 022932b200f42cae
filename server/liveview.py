"""The ``lv:<view id>`` topic: the LiveView's role, one ``UploadSession`` per join.

:class:`LiveViewHandler` implements LiveView's upload events as Phoenix's own
JavaScript client sends them (see ``LIVEVIEW_PROTOCOL.md``):

* ``phx_join``: verifies the page's signed session, starts an
  ``UploadSession`` with the app's ``allow_upload`` configs and answers with
  the ``rendered`` page;
* ``event`` of the form's change binding with ``uploads``: tracks the selected
  files (``put_entries``); the submit binding consumes the completed entries
  through the app's consume hook; the cancel binding cancels an entry;
* ``allow_upload``: the preflight (entry tokens or ``too_large`` /
  ``too_many_files`` / ``not_accepted``);
* ``progress``: the client's per-entry progress or error.

Every field the client sends is type-checked here, before it reaches the
session (a list where a ref belongs would otherwise raise inside the session
and crash it, cancelling the page's other uploads): a malformed event gets an
error reply and a structured warning, and the session never sees it.

Every reply carries the diff of the page since the last one the client got.
Changes that happen on their own (an upload finishing, a channel crashing or
timing out) reach the session's ``on_change`` callback in the session's
thread; it schedules one render on the event loop (bursts coalesce), which is
pushed as a ``diff`` event. Replies and pushes are computed and sent under
one lock so the client applies diffs in the order they were made.

The loop never blocks on the session: every call is an awaited proxy future.
When the topic ends (leave, disconnect, crash, shutdown) the session is
stopped, and with it every upload channel, each closing its writer with
``"cancel"``. A crashed session ends the topic with ``phx_error``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import structlog

import actors
from actors import ProcessRef
from actors.upload_config import UploadConfig, validate_accept
from actors.upload_session import UploadSession

from .page import PageEvents, Rendered, render_upload_page
from .session_token import InvalidSession, SessionSigner
from .transport import Channel, Reply, TopicHandler
from .watcher import ExitWatcher

__all__ = ["ConsumeHook", "LiveContext", "LiveViewHandler", "normalise_upload_configs"]

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
    #: live session ref -> its handler; how an ``lvu:`` join finds its page.
    sessions: dict[ProcessRef, "LiveViewHandler"] = field(default_factory=dict)


class LiveViewHandler(TopicHandler):
    """One joined ``lv:`` topic: the page of one browser tab."""

    def __init__(self, channel: Channel, context: LiveContext) -> None:
        super().__init__(channel)
        self.context = context
        self.session: ProcessRef | None = None
        self.proxy: Any = None
        self.watcher: ExitWatcher | None = None
        self.names: list[str] = []  # upload names, in page order
        self.saved: list[dict[str, Any]] = []
        self.notice = ""
        self.last: Rendered | None = None
        self._lock = asyncio.Lock()
        self._closing = False
        self._render_task: asyncio.Task | None = None
        self._render_again = False
        self._session_down: asyncio.Future | None = None
        self._log = log.bind(topic=channel.topic, join_ref=channel.join_ref)

    # -------------------------------------------------------------- joining

    async def join(self, payload: dict) -> Reply:
        try:
            self.context.signer.verify_join(self.channel.topic, payload)
        except InvalidSession as exc:
            self._log.warning("lv.join_refused", reason=exc.reason, detail=exc.detail)
            return "error", {"reason": exc.reason}
        params = payload.get("params")
        mounts = params.get("_mounts") if isinstance(params, dict) else None
        if isinstance(mounts, int) and mounts > 0:
            # LiveView's client rejoined (socket dropped or server restarted): this
            # is a fresh session, the previous one's uploads are gone.
            self.notice = ("The connection was lost and the page reconnected: uploads that were "
                           "not saved were lost. Choose those files again.")
        self.watcher = ExitWatcher.start()
        loop = asyncio.get_running_loop()
        self.session = UploadSession.start(
            on_change=lambda: self._on_change(loop), token_max_age=self.context.token_max_age
        )
        try:
            self._session_down = await self.watcher.watch(self.session)
            self._session_down.add_done_callback(self._session_ended)
            self.proxy = proxy = self.session.proxy()
            for name, options in self.context.upload_configs.items():
                await proxy.allow_upload(name, **options)
                self.names.append(name)
            self.last = await self._render()
        except BaseException:
            await self._stop_actors()
            raise
        self.context.sessions[self.session] = self
        self._log.info("lv.joined", session=str(self.session))
        response: dict[str, Any] = {"rendered": self.last.to_json()}
        if self.context.liveview_version:
            response["liveview_version"] = self.context.liveview_version
        return "ok", response

    # -------------------------------------------------------------- events

    async def handle_in(self, event: str, payload: Any, ref: str | None) -> Reply | None:
        if not isinstance(payload, dict):
            self._log.warning("lv.bad_payload", event_name=event, why="binary payload on the lv: topic")
            return "error", {"reason": "invalid payload"}
        async with self._lock:
            if event == "event":
                status, response = await self._event(payload)
            elif event == "allow_upload":
                status, response = await self._allow_upload(payload)
            elif event == "progress":
                status, response = await self._progress(payload)
            else:
                self._log.warning("lv.unknown_event", event_name=event)
                status, response = "error", dict(_UNKNOWN)
            if status == "ok":
                diff = await self._diff()
                if diff:
                    response = {"diff": diff, **response}
            await self.channel.reply(ref, status, response)
        return None

    async def _event(self, payload: dict) -> tuple[str, dict]:
        name = payload.get("event")
        events = self.context.events
        if name == events.change:
            return await self._track(payload.get("uploads"))
        if name == events.submit:
            await self._save()
            return "ok", {}
        if name == events.cancel:
            value = payload.get("value")
            why = (_bad_ref(value.get("ref"), "ref") or _bad_ref(value.get("upload"), "upload")
                   if isinstance(value, dict) else f"value must be an object, got {type(value).__name__}")
            if why is not None:
                self._log.warning("lv.bad_cancel", value=repr(value)[:200], why=why)
                return "error", {"reason": "invalid cancel"}
            result = await self._proxy().cancel_upload(value["upload"], value["ref"])
            if _is_error(result):
                self._log.warning("lv.cancel_refused", upload=value["upload"], entry=value["ref"], error=result[1])
                return "error", {"reason": "invalid cancel"}
            self._log.info("lv.entry_cancelled", upload=value["upload"], entry=value["ref"])
            return "ok", {}
        self._log.warning("lv.unknown_event", event_name="event", phx_event=repr(name)[:100])
        return "error", dict(_UNKNOWN)

    async def _track(self, uploads: Any) -> tuple[str, dict]:
        """The change event: the ``uploads`` field lists the selected files per config ref."""
        if uploads is None:
            return "ok", {}
        if not isinstance(uploads, dict):
            self._log.warning("lv.bad_uploads", why="uploads is not an object")
            return "error", {"reason": "invalid uploads"}
        for config_ref, entries in uploads.items():
            why = _bad_entries(entries)
            if why is not None:
                self._log.warning("lv.bad_uploads", config=repr(config_ref)[:100], why=why)
                return "error", {"reason": "invalid uploads"}
        proxy = self._proxy()
        for config_ref, entries in uploads.items():
            result = await proxy.put_entries(config_ref, entries)
            if _is_error(result):
                self._log.warning("lv.bad_uploads", config=config_ref, error=result[1])
                return "error", {"reason": "invalid uploads"}
        return "ok", {}

    async def _allow_upload(self, payload: dict) -> tuple[str, dict]:
        """The preflight; its reply status is always ok, as in Phoenix (an error
        reply only for a malformed request)."""
        config_ref, entries = payload.get("ref"), payload.get("entries")
        why = _bad_ref(config_ref, "ref") or _bad_entries(entries)
        if why is not None:
            self._log.warning("lv.bad_preflight", config=repr(config_ref)[:100], why=why)
            return "error", {"reason": "invalid preflight"}
        result = await self._proxy().preflight(config_ref, entries)
        if _is_error(result):
            self._log.warning("lv.bad_preflight", config=repr(payload.get("ref"))[:100], error=result[1])
            return "error", {"reason": "invalid preflight"}
        if "error" in result:
            self._log.info("lv.preflight_rejected", config=result["ref"], errors=result["error"])
        return "ok", result

    async def _progress(self, payload: dict) -> tuple[str, dict]:
        config_ref, entry_ref = payload.get("ref"), payload.get("entry_ref")
        progress, why = _progress_value(payload.get("progress"))
        why = _bad_ref(config_ref, "ref") or _bad_ref(entry_ref, "entry_ref") or why
        if why is not None:
            self._log.warning("lv.bad_progress", config=repr(config_ref)[:100], entry=repr(entry_ref)[:100], why=why)
            return "error", {"reason": "invalid progress"}
        result = await self._proxy().update_progress(config_ref, entry_ref, progress)
        if _is_error(result):
            self._log.warning("lv.bad_progress", entry=repr(payload.get("entry_ref"))[:100], error=result[1])
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
            self.notice = f"{waiting} upload(s) not finished: nothing saved from them"
        else:
            self.notice = f"saved {saved_now} file(s)" if saved_now else "nothing to save"
        self._log.info("lv.saved", saved=saved_now, unfinished=waiting)

    # ------------------------------------------------------------ rendering

    def _proxy(self) -> Any:
        assert self.proxy is not None, "the session is started at join"
        return self.proxy

    async def _render(self) -> Rendered:
        uploads = await self._proxy().uploads()
        configs = [_page_config(uploads[name]) for name in self.names if name in uploads]
        return render_upload_page(configs, self.saved, notice=self.notice, events=self.context.events)

    async def _diff(self) -> dict[str, Any]:
        new = await self._render()
        diff = new.diff(self.last)
        self.last = new
        return diff

    def _on_change(self, loop: asyncio.AbstractEventLoop) -> None:
        """The session changed (called in the session's thread)."""
        try:
            loop.call_soon_threadsafe(self._request_render)
        except RuntimeError:  # the loop is closed
            pass

    def _request_render(self) -> None:
        if self._closing:
            return
        if self._render_task is not None and not self._render_task.done():
            self._render_again = True
            return
        self._render_task = asyncio.get_running_loop().create_task(
            self._push_renders(), name=f"render {self.channel.topic}"
        )

    async def _push_renders(self) -> None:
        """Push what changed, once per burst of changes."""
        while True:
            self._render_again = False
            async with self._lock:
                if self._closing or self.channel.closed or not self.channel.joined:
                    return
                try:
                    diff = await self._diff()
                except Exception as exc:  # noqa: BLE001 - the session died: its Down ends the topic
                    self._log.debug("lv.render_failed", error=repr(exc))
                    return
                if diff:
                    await self.channel.push("diff", {**diff})
            if not self._render_again:
                return

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
        self._closing = True
        if self.session is not None:
            self.context.sessions.pop(self.session, None)
        task = self._render_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._stop_actors()
        self._log.info("lv.left", reason=reason, saved=len(self.saved))

    async def _stop_actors(self) -> None:
        """Stop the session (its channels close their writers with ``"cancel"``),
        wait for it to be gone, then stop the watcher."""
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
        if self.watcher is not None:
            await self.watcher.stop()

    # ----------------------------------------------------------- lvu: joins

    async def join_upload(self, token: Any) -> Any:
        """An ``lvu:`` join with ``token``: the channel's ref or ``("error", {...})``."""
        return await self._proxy().join(token)


# ------------------------------------------------------- checking client input
#
# Everything the client sends is checked here, at the server's edge, before it
# reaches the session: a value of the wrong type (a list where a ref should be,
# an object for a size) would otherwise raise inside the session's process
# (an unhashable ref in a dict lookup) and crash it, cancelling every upload of
# the page. A malformed event gets an error reply and a warning; the session
# never sees it.

#: The fields of one entry the client announces (``serializeUploads`` and
#: ``toPreflightPayload`` in LiveView's client): name -> (types, required).
#: ``meta`` is the application's own (any JSON) and is not checked.
_ENTRY_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "ref": ((str,), True),
    "name": ((str,), True),
    "size": ((int,), True),
    "type": ((str,), False),
    "relative_path": ((str,), False),
    "last_modified": ((int, float), False),
    "path": ((str,), False),
}

#: The longest client-reported error reason kept (longer ones are cut).
_MAX_REASON = 200


def _bad_ref(value: Any, what: str) -> str | None:
    """Why ``value`` is not a usable ref (a non-empty string), or ``None``."""
    if isinstance(value, str) and value:
        return None
    return f"{what} must be a non-empty string, got {type(value).__name__}"


def _bad_entries(entries: Any) -> str | None:
    """Why the client's list of entries is malformed, or ``None``."""
    if not isinstance(entries, list):
        return f"entries must be a list, got {type(entries).__name__}"
    for i, fields in enumerate(entries):
        if not isinstance(fields, dict):
            return f"entry {i} must be an object, got {type(fields).__name__}"
        for key, (types, required) in _ENTRY_FIELDS.items():
            value = fields.get(key)
            if value is None and not required:
                continue
            if isinstance(value, bool) or not isinstance(value, types):
                return f"entry {i}: {key} must be {' or '.join(t.__name__ for t in types)}, got {type(value).__name__}"
        if not fields["ref"]:
            return f"entry {i}: ref must not be empty"
        if fields["size"] < 0:
            return f"entry {i}: size must not be negative"
    return None


def _progress_value(progress: Any) -> tuple[Any, str | None]:
    """The client's ``progress`` as the session takes it, or why it is malformed.

    A percentage is an int 0..100. An error is ``{"error": reason}`` with a
    string reason; LiveView's client reports a crashed upload channel with the
    ``phx_error`` payload itself (``{"error": {"reason": "channel_crash"}}``),
    so an object with a string ``reason`` stands for that reason.
    """
    if isinstance(progress, int) and not isinstance(progress, bool):
        if 0 <= progress <= 100:
            return progress, None
        return None, f"progress must be 0..100, got {progress}"
    if isinstance(progress, dict) and "error" in progress:
        reason = progress["error"]
        if isinstance(reason, dict):
            reason = reason.get("reason")
        if isinstance(reason, str) and reason:
            return {"error": reason[:_MAX_REASON]}, None
        return None, f"a progress error must be a non-empty string, got {type(reason).__name__}"
    return None, f"progress must be 0..100 or {{\"error\": reason}}, got {type(progress).__name__}"


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
