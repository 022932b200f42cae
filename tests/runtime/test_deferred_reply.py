"""``Process.defer_reply``: OTP's ``{noreply, State}`` and ``GenServer.reply``."""

from __future__ import annotations

import pytest
from pykka import ActorDeadError

import actors
from tests.helpers import WAIT


class Later(actors.Process):
    """Answers each ``"ask"`` only when told ``"answer"``."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list = []

    def on_receive(self, message):
        match message:
            case "ask":
                self.waiting.append(self.defer_reply())
                return "ignored: the reply is deferred"
            case ("answer", value):
                for reply in self.waiting:
                    reply.send(value)
                self.waiting.clear()
                return None
            case "count":
                return len(self.waiting)
            case "crash":
                raise RuntimeError("crashed with replies deferred")


def test_a_deferred_reply_is_sent_from_a_later_message_and_the_process_serves_others_meanwhile():
    ref = Later.start()
    try:
        first, second = ref.ask("ask", block=False), ref.ask("ask", block=False)
        assert ref.ask("count", timeout=WAIT) == 2  # not stuck on the two asks
        assert not first.done() and not second.done()
        ref.tell(("answer", 42))
        assert first.get(timeout=WAIT) == 42 and second.get(timeout=WAIT) == 42
    finally:
        ref.stop()


@pytest.mark.parametrize("how", ["stop", "kill", "crash"])
def test_a_deferred_reply_never_sent_is_actor_dead_error_once_the_process_exits(how):
    ref = Later.start()
    pending = ref.ask("ask", block=False)
    assert ref.ask("count", timeout=WAIT) == 1
    if how == "stop":
        ref.stop()
    elif how == "kill":
        actors.exit(ref, actors.KILL)
    else:
        ref.tell("crash")
    actors.await_exit(ref, WAIT)
    with pytest.raises(ActorDeadError):
        pending.get(timeout=WAIT)


def test_defer_reply_outside_a_handler_is_an_error():
    process = Later()
    with pytest.raises(RuntimeError, match="outside a message handler"):
        process.defer_reply()
