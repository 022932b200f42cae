"""``UploadSession``: the LiveView's role in an upload, as a process.

A session holds the ``allow_upload`` configs and their entries, validates what
the client announces, signs entry tokens, starts one ``UploadChannel`` per
joined entry under its own dynamic supervisor (restart ``temporary``), hears
from each channel what it must know (``upload_done``, ``writer_error``,
``upload_error``, ``cancelled``), and hands completed uploads to the
application's consume function. A channel's ``Down`` matters only for a crash.

Unlike Phoenix, where an upload channel's crash takes the LiveView down, a
crashed channel here fails only its own entry: the session marks it cancelled
with the crash as its error, and the sibling uploads carry on.

All methods are called through the Pykka proxy (``session.proxy().preflight(...)``)
so they run in the session's process, one at a time.
"""

from __future__ import annotations

import functools
import inspect
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from pykka import ActorDeadError

import actors.names
import actors.process
import actors.timers
from actors import substrates
from actors._pykka import ActorStop, Envelope
from actors.futures import ProcessFuture
from actors.process import DeferredReply, Process, ProcessRef
from actors.reasons import KILL, NORMAL, SHUTDOWN, Down, Exit, ExitReason, MonitorRef, is_clean_exit
from supervision import ChildSpec, DynamicSupervisor, start_child_request
from uploads.channel import UploadChannel
from uploads.client_data import ClientError, check_entries, parse_progress
from uploads.config import UploadConfig, UploadEntry, validate_accept
from uploads.tokens import EntryClaim, EntryTokens, session_id_of
from writers import UploadWriter, WriterFactory, default_writer_factory, instantiate

__all__ = ["SessionChange", "UploadSession", "session_for_token"]

log = structlog.get_logger("liveupload.uploads")

_NAME_PREFIX = "liveupload.session:"

F = TypeVar("F", bound=Callable[..., Any])


def client_input(method: F) -> F:
    """For methods fed by the client: bad client data is answered with
    ``("error", reason)``, never raised, so it cannot crash the session."""

    @functools.wraps(method)
    def guarded(self: UploadSession, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ClientError as exc:
            log.warning("upload_client_error", method=method.__name__, error=str(exc))
            return ("error", str(exc))

    return guarded  # type: ignore[return-value]  # same signature as method; only its errors differ


def session_for_token(token: Any) -> ProcessRef | None:
    """The live session an entry token claims to come from (not yet verified)."""
    session_id = session_id_of(token)
    return None if session_id is None else actors.names.whereis(_NAME_PREFIX + session_id)


@dataclass(frozen=True)
class SessionChange:
    """What one change of a session touched, as plain data, for a listener
    that keeps its own copy (the page): one entry of upload ``upload``
    (``entry``: its ``to_dict()`` now), or the whole config (``config``: its
    ``to_dict()`` now, entries and errors included), or, with neither, the
    config is gone. Reports come in the order the changes were made."""

    upload: str
    entry: dict[str, Any] | None = None
    config: dict[str, Any] | None = None


class UploadSession(Process):
    """Upload configs, entries and channels of one LiveView."""

    trap_exit = True  # channels and the supervisor are linked to us; their exits are news, not death

    def __init__(
        self,
        *,
        on_change: Callable[[], Any] | None = None,
        on_update: Callable[[SessionChange], Any] | None = None,
        token_max_age: float = 3600.0,
        channel_shutdown: float = 5.0,
    ) -> None:
        super().__init__()
        self.session_id = secrets.token_urlsafe(12)
        self.tokens = EntryTokens(self.session_id, token_max_age)
        self.configs: dict[str, UploadConfig] = {}
        self.on_change = on_change
        #: Called in the session's thread with a :class:`SessionChange` for every
        #: change, before the call or message that made it returns.
        self.on_update = on_update
        self.channel_shutdown = channel_shutdown
        self.channels: dict[Any, tuple[str, str]] = {}  # channel ref -> (config name, entry ref)
        self.supervisor: ProcessRef | None = None
        self._stopping: ExitReason | None = None  # the reason to exit with once the supervisor is gone
        self._stopping_channels: dict[MonitorRef, ProcessRef] = {}  # channels told to stop, not yet Down
        self._stop_timer: actors.timers.Timer | None = None  # kills the stragglers at channel_shutdown
        self._parent = actors.process.current_process()  # the supervisor that start_link'ed us, if any
        self._joins: dict[str, _Join] = {}  # entry ref -> its join in progress (not yet answered by its channel)
        self._abandoned: dict[ProcessRef, tuple[str, MonitorRef]] = {}  # channels of joins given up, not yet Down

    def on_start(self) -> None:
        self.supervisor = DynamicSupervisor.start_link()
        actors.names.register(_NAME_PREFIX + self.session_id, self.actor_ref)

    def run_envelope(self, envelope: Envelope[Any] | None) -> ExitReason | None:
        """A stop request (``session.stop()``) starts a stop that holds no thread
        (:meth:`_begin_stop`); while it runs, calls are left unanswered until the
        session is gone (then ``ActorDeadError``), and channel news is still heard."""
        if envelope is not None and not self.exit_requested:
            if isinstance(envelope.message, ActorStop):
                self._add_stop_waiter(envelope.reply_to)  # answered once the session is gone
                self._begin_stop(NORMAL)
                return self._pending_exit
            if self._stopping is not None and envelope.reply_to is not None:
                # Not handled: the asker gets ActorDeadError once the session is gone
                # (not before: until then it is alive, as a terminating gen_server is).
                self.defer_reply(envelope)
                return None
        return super().run_envelope(envelope)

    def _begin_stop(self, reason: ExitReason) -> None:
        """Exit with ``reason`` once every channel has stopped, without waiting here.

        Each channel gets the exit signal ``"shutdown"`` (it closes its writer
        with ``"cancel"``) and a monitor, whose ``Down`` is a message like any
        other; one at ``channel_shutdown`` kills those still running. With
        every channel down, the supervisor (left with no child to wait for) is
        told to shut down, and its ``Exit`` ends the session. Waiting in
        ``terminate`` instead would hold a pool worker per stopping session
        (the pool replaces a waiting worker): a thread per page when thousands
        of pages drop at once.
        """
        if self._stopping is not None:
            return
        self._stopping = reason
        for channel in list(self.channels):
            if channel.is_alive():
                self._stopping_channels[self.monitor(channel)] = channel
                actors.process.exit(channel, SHUTDOWN)
        for abandoned, (_, mref) in self._abandoned.items():  # told to stop already: wait for them too
            self._stopping_channels[mref] = abandoned
        if self._stopping_channels:
            self._stop_timer = self.send_after(_StopDeadline(), self.channel_shutdown)
        self._stop_when_channels_down()

    def _stop_when_channels_down(self) -> None:
        """The last channel told to stop is down: stop the supervisor (or exit)."""
        if self._stopping_channels:
            return
        if self._stop_timer is not None:
            actors.timers.cancel_timer(self._stop_timer)
            self._stop_timer = None
        supervisor = self.supervisor
        if supervisor is None or not supervisor.is_alive():
            self.exit(self._stopping if self._stopping is not None else NORMAL)
        else:
            actors.process.exit(supervisor, SHUTDOWN)  # its Exit, in _exit_signal, ends the stop

    def _stop_deadline(self) -> None:
        """``channel_shutdown`` passed: kill the channels still stopping (their
        ``on_kill`` releases the writer), as a supervisor kills its stragglers."""
        self._stop_timer = None
        for channel in list(self._stopping_channels.values()):
            log.warning("upload_channel_stop_timeout", channel=str(channel), seconds=self.channel_shutdown)
            actors.process.exit(channel, KILL)  # its Down arrives as mail

    def terminate(self, reason: ExitReason) -> None:
        """Stop every channel before the session is gone: each closes its writer
        with ``"cancel"``. After a stop (:meth:`_begin_stop`) the supervisor is already
        gone; only a crash of the session waits for it here."""
        if self.supervisor is not None and self.supervisor.is_alive():
            actors.process.exit(self.supervisor, "shutdown")
            actors.process.await_exit(self.supervisor)

    # -- configs --------------------------------------------------------------

    def allow_upload(
        self,
        name: str,
        *,
        accept: Any,
        max_entries: int = 1,
        max_file_size: int = 8_000_000,
        chunk_size: int = 64_000,
        chunk_timeout: float = 10.0,
        writer: WriterFactory | None = None,
        auto_upload: bool = False,
        progress: Callable[..., Any] | None = None,
        max_entries_mode: str = "selected",
    ) -> dict[str, Any]:
        """Allow uploads under ``name`` (Phoenix's ``allow_upload``); returns the config."""
        current = self.configs.get(name)
        if current is not None and any(e.channel is not None for e in current.entries):
            raise ValueError(f"cannot allow_upload {name!r} again while it has active entries")
        config = UploadConfig(
            name=name,
            ref=f"phx-{secrets.token_hex(6)}",
            accept=validate_accept(accept),
            max_entries=max_entries,
            max_file_size=max_file_size,
            chunk_size=chunk_size,
            chunk_timeout=chunk_timeout,
            writer=writer or default_writer_factory,
            auto_upload=auto_upload,
            progress=progress,
            max_entries_mode=max_entries_mode,  # type: ignore[arg-type]  # a str here, checked by UploadConfig
        )
        self.configs[name] = config
        self._changed(config)
        return config.to_dict()

    def disallow_upload(self, name: str) -> None:
        """Forget ``name``; refuses while any of its entries is uploading."""
        config = self._config(name)
        if any(e.channel is not None for e in config.entries):
            raise ValueError(f"cannot disallow_upload {name!r} while it has active entries")
        del self.configs[name]
        self._report(SessionChange(name))
        self._notify()

    # -- the client's entries -------------------------------------------------------

    @client_input
    def put_entries(self, name: str, entries: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Track the files the client selected (the form's ``uploads`` field) and
        validate them; returns the config with the entries' errors."""
        config = self._config(name)
        self._replace_sole_entry(config, check_entries(entries))
        self._put_entries(config, entries)
        self._changed(config)
        return config.to_dict()

    def _replace_sole_entry(self, config: UploadConfig, entries: list[Mapping[str, Any]]) -> None:
        """With ``max_entries`` 1, a file selected anew replaces the one selected
        before (Phoenix's ``maybe_replace_sole_entry``): LiveView's client sends
        only the new file for a single-file input. The old entry is cancelled
        as by the client, its writer closed with ``"cancel"``."""
        if config.max_entries != 1 or len(config.entries) != 1 or len(entries) != 1:
            return
        old = config.entries[0]
        if entries[0]["ref"] != old.ref:
            self.cancel_upload(config.name, old.ref)

    def _put_entries(self, config: UploadConfig, entries: Any) -> None:
        dropped = config.put_entries(entries)
        if dropped:
            log.warning("upload_entries_refused", upload=config.name, dropped=dropped,
                        kept=len(config.entries), max_entries=config.max_entries)

    @client_input
    def preflight(self, name: str, entries: list[Mapping[str, Any]]) -> dict[str, Any]:
        """The client's ``allow_upload`` request: validate the announced entries and
        sign a token for each, or refuse them all.

        Returns ``{"ref", "config", "entries": {ref: token}, "errors": {}}``, or
        ``{"ref", "error": [[ref, reason], ...]}`` when anything is invalid
        (``too_large``, ``not_accepted``, ``too_many_files``), as Phoenix does.
        """
        config = self._config(name)
        self._replace_sole_entry(config, check_entries(entries))
        self._put_entries(config, entries)
        announced = {fields["ref"] for fields in entries}
        if config.errors:
            self._changed(config)
            return {"ref": config.ref, "error": [[ref, error] for ref, error in config.errors]}
        tokens = {}
        for entry in config.entries:
            if entry.ref in announced:
                entry.preflighted = True
                tokens[entry.ref] = self.tokens.sign(config.ref, entry.ref, entry.id)
        self._changed(config)
        return {"ref": config.ref, "config": config.client_config(), "entries": tokens, "errors": {}}

    def join(self, token: Any) -> Any:
        """Start the channel of a token's entry and initialise its writer.

        Answers the channel's ref, or ``("error", {"reason": r})`` with ``r`` one
        of ``invalid_token``, ``disallowed``, ``already_registered``, ``writer_error``.

        The session never waits here (OTP's ``{noreply, State}``): it takes over
        the reply, asks its supervisor to start the channel and then the channel
        to open its writer without blocking, and answers once both are done
        (:meth:`_join_started`, :meth:`_join_answered`). Meanwhile it handles its
        other mail; on the event loop a wait would hold every socket of the server.
        Until the channel has started, the join stands in ``entry.channel``: the
        entry is taken.
        """
        claim = self.tokens.verify(token)
        if claim is None:
            return _join_error("invalid_token")
        refusal, config, entry = self._join_target(claim)
        if refusal is not None:
            return refusal
        assert config is not None and entry is not None  # no refusal: both found
        try:
            writer, opts = instantiate(config.writer(config.name, entry.to_dict(), self.actor_ref))
        except Exception as exc:  # the application's factory failed this entry only (logged)
            log.error("upload_writer_factory_failed", entry=entry.ref, reason=repr(exc), exc_info=exc)
            entry.add_error(("writer_failure", repr(exc)))
            self._changed(config, entry)
            return _join_error("writer_error")
        spec = ChildSpec(
            id=("upload", config.ref, entry.ref),
            start=(
                UploadChannel,
                (),
                {
                    "owner": self.actor_ref,
                    "entry_ref": entry.ref,
                    "size": entry.client_size,
                    "writer": writer,
                    "writer_opts": opts,
                    "chunk_timeout": config.chunk_timeout,
                    "chunk_size": config.chunk_size,
                    "substrate": channel_substrate(writer),
                },
            ),
            restart="temporary",
            shutdown=self.channel_shutdown,
        )
        assert self.supervisor is not None  # started by on_start
        started = start_child_request(self.supervisor, spec)  # a dead supervisor raises: we crash, as before
        join = _Join(self.defer_reply(), claim, config, entry)
        entry.channel = join  # taken: a second join is already_registered, a disallow refused
        self._joins[entry.ref] = join
        started.add_done_callback(_tell_session(self.actor_ref, _JoinStarted, join))
        return None

    def _join_target(self, claim: EntryClaim) -> tuple[Any, UploadConfig | None, UploadEntry | None]:
        """``(None, config, entry)``: what a claim may join now; or ``(error, None, None)``."""
        config = self._config_by_ref(claim.config_ref)
        entry = config.entry(claim.entry_ref) if config is not None else None
        if config is None or entry is None or entry.id != claim.entry_id or entry.failed:
            return _join_error("disallowed"), None, None
        if entry.channel is not None or entry.done or self._ref_taken(entry.ref):
            return _join_error("already_registered"), None, None
        return None, config, entry

    def _ref_taken(self, entry_ref: str) -> bool:
        """A join of ``entry_ref`` is in progress, or a channel of it the session
        stopped is not down yet: another channel of that ref now could take its news."""
        return entry_ref in self._joins or any(ref == entry_ref for ref, _ in self._abandoned.values())

    def _join_started(self, join: _Join, future: ProcessFuture[Any]) -> None:
        """The supervisor answered the join's ``start_child``: monitor the
        channel and ask it to open its writer, again without waiting; or, if the
        entry went meanwhile (cancelled, its config replaced) or the session is
        stopping, stop the channel it started."""
        if self._joins.get(join.entry.ref) is not join:
            return
        started = future.get()  # resolved; a dead supervisor raises: we crash, as before
        channel = started[1] if started[0] == "ok" else None
        current = self._join_current(join) and join.entry.channel is join
        if not current or self._stopping is not None:
            del self._joins[join.entry.ref]
            if join.entry.channel is join:
                join.entry.channel = None
            if isinstance(channel, ProcessRef):
                self._abandon(channel, join.entry.ref)
            self._answer_join(join, self._join_refusal(join))
            return
        entry = join.entry
        entry.channel = None
        if not isinstance(channel, ProcessRef):
            del self._joins[entry.ref]
            self._answer_join(join, _join_error("writer_error"))
            return
        join.channel = channel
        entry.channel = channel
        entry.monitor = self.monitor(channel)
        self.channels[channel] = (join.config.name, entry.ref)
        try:
            joined = channel.ask("join", block=False)
        except ActorDeadError:  # gone already: its Down records why
            del self._joins[entry.ref]
            self._answer_join(join, _join_error("writer_error"))
            return
        joined.add_done_callback(_tell_session(self.actor_ref, _JoinAnswered, join))

    def _join_answered(self, join: _Join, future: ProcessFuture[Any]) -> None:
        """The channel answered ``"join"`` (its writer's ``init``): answer the join."""
        if self._joins.get(join.entry.ref) is not join:
            return  # answered already (its Down, a cancel)
        del self._joins[join.entry.ref]
        assert join.channel is not None  # set before the channel was asked
        if self._stopping is not None:
            return  # the channel is stopping with us; the asker gets ActorDeadError
        if not self._join_current(join):
            if join.entry.channel is join.channel:
                self._forget_channel(join.entry)
                join.entry.channel = None
            self._abandon(join.channel, join.entry.ref)
            self._answer_join(join, self._join_refusal(join))
            return
        try:
            joined = future.get()
        except ActorDeadError:
            joined = _join_error("writer_error")  # killed meanwhile: its Down records why
        except Exception as exc:  # noqa: BLE001 - init raised: the channel crashed, not us
            join.entry.add_error(("writer_failure", repr(exc)))
            self._changed(join.config, join.entry)
            joined = _join_error("writer_error")
        if joined != "ok":
            self._answer_join(join, _join_error("writer_error"))  # its ("writer_error", ...) news records why
        else:
            self._answer_join(join, join.channel)

    def _join_current(self, join: _Join) -> bool:
        """The join's entry is still in its config, and the config still allowed."""
        return self.configs.get(join.config.name) is join.config and join.config.entry(join.entry.ref) is join.entry

    def _join_refusal(self, join: _Join) -> Any:
        """What a join of the same token would answer now (the entry was cancelled: ``disallowed``)."""
        refusal, _, _ = self._join_target(join.claim)
        return refusal if refusal is not None else _join_error("disallowed")

    def _answer_join(self, join: _Join, answer: Any) -> None:
        """Answer a join once; never while stopping (the asker then gets
        ``ActorDeadError`` once the session is gone, as every ask meanwhile)."""
        if self._stopping is None and not join.answered:
            join.answered = True
            join.reply.send(answer)

    def _abandon(self, channel: ProcessRef, entry_ref: str) -> None:
        """Stop a channel whose join was given up (its entry went, or the session
        is stopping): it closes its writer with ``"cancel"``, if opened. Its
        entry's ref stays taken until its ``Down``, so no other channel can
        take its last news."""
        mref = self.monitor(channel)
        self._abandoned[channel] = (entry_ref, mref)
        if self._stopping is not None and self._stopping_channels:
            self._stopping_channels[mref] = channel  # the stop waits for it too
        actors.process.exit(channel, CANCELLED)

    @client_input
    def update_progress(self, name: str, entry_ref: str, progress: Any) -> dict[str, Any]:
        """The client's progress report: a percentage, or ``{"error": reason}``."""
        config = self._config(name)
        entry = config.entry(entry_ref)
        if entry is None:
            raise ClientError(f"no entry {entry_ref!r} in upload {config.name!r}")
        value = parse_progress(progress)
        if isinstance(value, dict):
            entry.add_error(value["error"])
        else:
            entry.progress = max(entry.progress, 100 if entry.done else value)
        if config.progress is not None:
            config.progress(config.name, entry.to_dict(), self.actor_ref)
        return self._changed(config, entry)

    @client_input
    def cancel_upload(self, name: str, entry_ref: str) -> None:
        """Cancel an entry: its channel closes the writer with ``"cancel"``; the
        entry is dropped. An entry not yet started is just dropped."""
        config = self._config(name)
        entry = config.entry(entry_ref)
        if entry is None:
            raise ClientError(f"no entry {entry_ref!r} in upload {config.name!r}")
        join = self._joins.get(entry_ref)
        if join is not None and join.entry is not entry:
            join = None
        if isinstance(entry.channel, _Join):
            entry.channel = None  # its channel is not started yet: _join_started stops it then
        elif entry.channel is not None:
            if join is not None:  # its channel is opening the writer: it closes it with "cancel" next
                del self._joins[entry_ref]
            self._forget_channel(entry)
            try:
                entry_channel_reply = entry.channel.ask("cancel")
            except Exception:  # noqa: BLE001 - already gone: nothing left to close
                entry_channel_reply = "ok"
            if entry_channel_reply != "ok":
                log.warning("upload_cancel_close_failed", entry=entry_ref, reason=repr(entry_channel_reply))
        config.entries.remove(entry)
        config.validate()
        self._changed(config)
        if join is not None:
            self._answer_join(join, self._join_refusal(join))  # as a join of a cancelled entry

    # -- reading ---------------------------------------------------------------------

    def uploads(self) -> dict[str, dict[str, Any]]:
        """Every config with its entries, as plain data."""
        return {name: config.to_dict() for name, config in self.configs.items()}

    def uploaded_entries(self, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """``(completed, in_progress)``: done entries, and valid ones still uploading."""
        config = self._config(name)
        done = [e.to_dict() for e in config.entries if e.done and not e.failed]
        running = [e.to_dict() for e in config.entries if not e.done and not e.failed]
        return done, running

    def upload_errors(self, name: str, entry_ref: str | None = None) -> list[Any]:
        """The config's own errors (``too_many_files``), or one entry's errors."""
        config = self._config(name)
        if entry_ref is None:
            return config.config_errors()
        entry = config.entry(entry_ref)
        if entry is None:
            raise KeyError(f"no entry {entry_ref!r} in upload {config.name!r}")
        return list(entry.errors)

    # -- consuming --------------------------------------------------------------------

    def consume_uploaded_entries(self, name: str, fn: Callable[..., Any]) -> list[Any]:
        """Hand every completed entry to ``fn(meta)`` or ``fn(meta, entry)``.

        ``fn`` returns ``("ok", value)`` (the entry is consumed: its channel stops
        and the writer releases what it kept) or ``("postpone", value)`` (kept for
        later). Raises while any entry is still uploading, as Phoenix does.
        """
        config = self._config(name)
        done, running = self.uploaded_entries(name)
        if running:
            raise RuntimeError("cannot consume uploaded files when entries are still in progress")
        results = []
        for item in done:
            entry = config.entry(item["ref"])
            try:
                results.append(self._consume(config, entry, fn))
            except ChannelGone:
                pass  # a late chunk or a kill ended it meanwhile: its news marks the entry
        return results

    def consume_uploaded_entry(self, name: str, entry_ref: str, fn: Callable[..., Any]) -> Any:
        """Consume one entry; raises if it is still in progress."""
        config = self._config(name)
        entry = config.entry(entry_ref)
        if entry is None:
            raise KeyError(f"no entry {entry_ref!r} in upload {config.name!r}")
        if not entry.done or entry.failed:
            raise RuntimeError("cannot consume uploaded file that is still in progress")
        return self._consume(config, entry, fn)

    def _consume(self, config: UploadConfig, entry: UploadEntry | None, fn: Callable[..., Any]) -> Any:
        """Consume one completed entry; raises :class:`ChannelGone` (a
        ``RuntimeError``) if its channel ended before it could be consumed.

        Never waits: the writer's meta came with the channel's ``upload_done``
        news, and the channel is told ``"consume_done"``, not asked. On the
        event loop each wait would hold every socket of the server.
        """
        assert entry is not None
        channel = entry.channel
        if not isinstance(channel, ProcessRef):
            raise ChannelGone(f"upload entry {entry.ref} has no channel left to consume from")
        if not channel.is_alive():
            # Ended after it completed (a late chunk from the client, a kill): its
            # news or Down is still in our mailbox and will mark the entry.
            log.warning("upload_consume_channel_gone", entry=entry.ref)
            raise ChannelGone(f"upload entry {entry.ref} ended before it was consumed")
        meta = dict(entry.meta) if isinstance(entry.meta, dict) else entry.meta  # fresh, as each ask gave
        try:
            result = fn(meta, entry.to_dict()) if _arity(fn) >= 2 else fn(meta)
        except BaseException:
            self._consumed(config, entry)
            raise
        if isinstance(result, tuple) and len(result) == 2 and result[0] == "postpone":
            return result[1]
        if isinstance(result, tuple) and len(result) == 2 and result[0] == "ok":
            value = result[1]
        else:
            log.warning(
                "consume_result_unexpected",
                entry=entry.ref,
                result=repr(result),
                hint='return ("ok", value) or ("postpone", value); treated as consumed',
            )
            value = result
        self._consumed(config, entry)
        return value

    def _consumed(self, config: UploadConfig, entry: UploadEntry) -> None:
        """Forget the entry and tell its channel it is consumed: the channel
        stops (``("shutdown", "consumed")``) and its writer releases what it kept."""
        channel = entry.channel
        self._forget_channel(entry)
        try:
            channel.tell("consume_done")
        except ActorDeadError:
            pass  # it already stopped: its writer is released
        config.entries.remove(entry)
        config.consumed_count += 1
        config.validate()
        self._changed(config)

    # -- news from channels ----------------------------------------------------------------

    def on_receive(self, message: Any) -> Any:
        match message:
            case ("upload_done", str(ref), meta):
                return self._upload_done(ref, meta)
            case ("writer_error", str(ref), reason):
                return self._channel_ended(ref, ("writer_failure", reason))
            case ("upload_error", str(ref), error):
                return self._channel_ended(ref, error)
            case ("cancelled", str(ref)):
                return self._channel_ended(ref, None)
            case _JoinStarted():
                return self._join_started(message.join, message.future)
            case _JoinAnswered():
                return self._join_answered(message.join, message.future)
            case Down():
                if self._abandoned:
                    self._abandoned.pop(message.target, None)  # type: ignore[call-overload]  # any ActorRef
                if self._stopping_channels.pop(message.ref, None) is not None:
                    self._channel_down(message)
                    return self._stop_when_channels_down()
                return self._channel_down(message)
            case _StopDeadline():
                return self._stop_deadline()
            case Exit():
                return self._exit_signal(message)
        raise ValueError(f"upload session: unexpected message {message!r}")

    def _upload_done(self, entry_ref: str, meta: Any) -> None:
        """Every byte arrived and the writer closed ``"done"``: keep its final meta to consume with."""
        entry = self._entry_with_channel(entry_ref)
        if entry is not None:
            entry.meta = meta
            entry.done = True
            entry.progress = 100
            self._entry_changed(entry)

    def _channel_ended(self, entry_ref: str, error: Any) -> None:
        """A channel told why it is ending: record its error, or that the entry
        was cancelled, and forget the channel (its ``Down`` is of no more use)."""
        entry = self._entry_with_channel(entry_ref)
        if entry is None:
            return
        self._forget_channel(entry)
        entry.channel = None
        if error is None:
            entry.cancelled = True  # ended before consumption: nothing left to consume
        else:
            entry.add_error(error)
        self._entry_changed(entry)

    def _channel_down(self, down: Down) -> None:
        """A channel ended without a word: it crashed (or was killed)."""
        where = self.channels.pop(down.target, None)
        join = self._joins.get(where[1]) if where is not None else None
        if join is not None and join.channel is down.target:  # it died before it answered "join"
            del self._joins[join.entry.ref]
            self._answer_join(join, _join_error("writer_error"))
        config = self.configs.get(where[0]) if where is not None else None
        entry = config.entry(where[1]) if config is not None and where is not None else None
        if config is None or entry is None:
            return
        entry.channel = None
        entry.monitor = None
        if not is_clean_exit(down.reason):
            entry.cancelled = True
            entry.add_error(("channel_crash", down.reason))
            self._changed(config, entry)

    def _exit_signal(self, message: Exit) -> None:
        if message.sender is self.supervisor:
            if self._stopping is not None:
                self.exit(self._stopping)  # every channel has stopped: the stop is done
            else:
                # Our supervisor ended (it gave up on restarts or was killed): so do we.
                self.exit(message.reason if not is_clean_exit(message.reason) else ("shutdown", "supervisor_exited"))
        elif message.sender is None or message.sender is self._parent:
            # Our parent (a supervisor shutting us down) or an exit signal from outside
            # any process: obey it, as a gen_server obeys its parent, whatever the reason.
            self._begin_stop(message.reason)
        elif not is_clean_exit(message.reason) and message.sender not in self.channels:
            self._begin_stop(message.reason)  # a linked process we do not own crashed

    # -- helpers ---------------------------------------------------------------------------

    def _entry_with_channel(self, entry_ref: str) -> UploadEntry | None:
        for config in self.configs.values():
            entry = config.entry(entry_ref)
            if entry is not None and isinstance(entry.channel, ProcessRef):  # not a join still starting it
                return entry
        return None

    def _forget_channel(self, entry: UploadEntry) -> None:
        if entry.monitor is not None:
            actors.process.demonitor(entry.monitor)
        self.channels.pop(entry.channel, None)
        entry.monitor = None

    def _config(self, name_or_ref: str) -> UploadConfig:
        if not isinstance(name_or_ref, str):  # a list would make the lookup raise TypeError
            raise ClientError(f"an upload name or ref must be a string, got {type(name_or_ref).__name__}")
        config = self.configs.get(name_or_ref) or self._config_by_ref(name_or_ref)
        if config is None:
            raise ClientError(f"no upload named {name_or_ref!r} is allowed")
        return config

    def _config_by_ref(self, ref: str) -> UploadConfig | None:
        for config in self.configs.values():
            if config.ref == ref:
                return config
        return None

    def _changed(self, config: UploadConfig, entry: UploadEntry | None = None) -> Any:
        """Tell the listeners: ``on_update`` what changed (``entry`` alone, or
        the whole ``config``), then ``on_change``. Returns the data reported
        (the entry's or the config's ``to_dict()``)."""
        data = entry.to_dict() if entry is not None else config.to_dict()
        if entry is not None:
            self._report(SessionChange(config.name, entry=data))
        else:
            self._report(SessionChange(config.name, config=data))
        self._notify()
        return data

    def _entry_changed(self, entry: UploadEntry) -> None:
        config = self.configs.get(entry.upload_config)
        if config is not None:
            self._changed(config, entry)

    def _report(self, change: SessionChange) -> None:
        if self.on_update is not None:
            try:
                self.on_update(change)
            except Exception:  # a listener's bug must not end the session (logged)
                log.exception("upload_session_listener_failed")

    def _notify(self) -> None:
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:  # a listener's bug must not end the session (logged)
                log.exception("upload_session_listener_failed")


def channel_substrate(writer: UploadWriter) -> str | None:
    """Where an upload's channel runs, as its writer declares: a thread of its
    own for a writer that blocks (``blocking``); the server's event loop, when
    one is bound, for a writer that never waits (``loop_safe``), so that the
    ``lvu:`` topic's ask of each chunk crosses no thread; else the runtime's
    default (the shared pool), where a writer that stalls unannounced holds
    only its own upload."""
    if writer.blocking:
        return "thread"
    if writer.loop_safe and substrates.bound_loop() is not None:
        return "loop"
    return None


class _StopDeadline:
    """Mail to a stopping session: its channels' time to stop is up."""


CANCELLED: ExitReason = ("shutdown", "cancelled")
"""The exit signal of a channel whose join was given up (as a cancel's exit)."""


@dataclass(eq=False)
class _Join:
    """A join in progress: the asker's deferred reply, what it joins, and its
    channel once started. Until then it stands in ``entry.channel``."""

    reply: DeferredReply
    claim: EntryClaim
    config: UploadConfig
    entry: UploadEntry
    channel: ProcessRef | None = None
    answered: bool = False


@dataclass(frozen=True)
class _JoinStarted:
    """Mail to the session: the supervisor answered a join's ``start_child``."""

    join: _Join
    future: ProcessFuture[Any]


@dataclass(frozen=True)
class _JoinAnswered:
    """Mail to the session: a joining channel answered ``"join"``."""

    join: _Join
    future: ProcessFuture[Any]


def _tell_session(
    session: ProcessRef, mail: Callable[[_Join, ProcessFuture[Any]], Any], join: _Join
) -> Callable[[ProcessFuture[Any]], None]:
    """The done-callback of a join's ask (run in the thread that answers it):
    only tell the session, whose own process goes on with the join."""

    def done(future: ProcessFuture[Any]) -> None:
        try:
            session.tell(mail(join, future))
        except ActorDeadError:
            pass  # the session is gone: its supervisor stops the channel

    return done


class ChannelGone(RuntimeError):
    """A completed entry's channel ended before it could be consumed."""


def _join_error(reason: str) -> tuple[str, dict[str, str]]:
    return ("error", {"reason": reason})


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 2
    return len(positional)
