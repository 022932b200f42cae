"""Timers: ``send_after`` and ``cancel_timer``, all served by one thread.

The timer thread starts with the first pending timer and ends when none is
left, so an idle runtime holds no thread. A timer aimed at a process is
cancelled when that process dies, as BEAM cancels timers to a dead pid (this
module's death hook); ``Process.send_after`` is served from here too.
"""

from __future__ import annotations

import heapq
import threading
import time
from itertools import count
from typing import Any

from pykka import ActorDeadError, ActorRef

from actors.process import ProcessRef, from_a_killed_process, on_death, serve_timers
from actors.reasons import ExitReason

__all__ = ["Timer", "cancel_all_timers", "cancel_timer", "pending_timers", "send_after", "timer_thread"]

_PENDING, _FIRED, _CANCELLED = 0, 1, 2

_cond = threading.Condition(threading.Lock())
_heap: list[tuple[float, int, Timer]] = []
_sequence = count()
_pending = 0
_thread: threading.Thread | None = None
_timers_of: dict[ProcessRef, set[Timer]] = {}  # pending timers aimed at each process


class Timer:
    """One scheduled message; pass it to ``cancel_timer``."""

    __slots__ = ("deadline", "message", "state", "target")

    def __init__(self, target: ActorRef[Any], message: Any, deadline: float) -> None:
        self.target = target
        self.message = message
        self.deadline = deadline
        self.state = _PENDING

    def __repr__(self) -> str:
        state = ("pending", "fired", "cancelled")[self.state]
        return f"<Timer {state} to {self.target} at {self.deadline:.3f}>"


def send_after(ref: ActorRef[Any], message: Any, seconds: float) -> Timer:
    """Tell ``message`` to ``ref`` after ``seconds``; returns the timer."""
    global _pending, _thread
    timer = Timer(ref, message, time.monotonic() + max(0.0, seconds))
    if from_a_killed_process():
        timer.state = _CANCELLED
        return timer
    with _cond:
        if isinstance(ref, ProcessRef):
            if ref.exit_reason is not None:
                timer.state = _CANCELLED
                return timer
            aimed = _timers_of.get(ref)
            if aimed is None:
                aimed = _timers_of[ref] = set()
            aimed.add(timer)
        heapq.heappush(_heap, (timer.deadline, next(_sequence), timer))
        _pending += 1
        if _thread is None:
            _thread = threading.Thread(target=_serve, name="actors-timers", daemon=True)
            _thread.start()
        elif _heap[0][2] is timer:
            _cond.notify()
    return timer


def cancel_timer(timer: Timer) -> bool:
    """Cancel ``timer``. False if it already fired or was cancelled."""
    with _cond:
        return _cancel_locked(timer)


def pending_timers() -> int:
    """How many timers are waiting to fire."""
    return _pending


def cancel_all_timers() -> int:
    """Cancel every pending timer (the runtime is shutting down); how many were."""
    with _cond:
        pending = [item[2] for item in _heap if item[2].state == _PENDING]
        for timer in pending:
            _cancel_locked(timer)  # the last one wakes the timer thread, which then ends
    return len(pending)


def timer_thread() -> threading.Thread | None:
    """The thread serving timers, while any is pending."""
    return _thread


def _cancel_locked(timer: Timer) -> bool:
    global _pending
    if timer.state != _PENDING:
        return False
    timer.state = _CANCELLED
    _pending -= 1
    _forget(timer)
    if _pending == 0 or len(_heap) > 4 * _pending + 64:
        _cond.notify()
    return True


def _forget(timer: Timer) -> None:
    target = timer.target
    if isinstance(target, ProcessRef):
        aimed = _timers_of.get(target)
        if aimed is not None:
            aimed.discard(timer)
            if not aimed:
                del _timers_of[target]  # the dict must not keep a dead ref alive


def _serve() -> None:
    global _thread, _pending
    while True:
        due: list[Timer] = []
        with _cond:
            while not due:
                if len(_heap) > 4 * _pending + 64:
                    _heap[:] = [item for item in _heap if item[2].state == _PENDING]
                    heapq.heapify(_heap)
                while _heap and _heap[0][2].state != _PENDING:
                    heapq.heappop(_heap)
                if not _heap:
                    _thread = None
                    return
                now = time.monotonic()
                while _heap and _heap[0][0] <= now:
                    timer = heapq.heappop(_heap)[2]
                    if timer.state == _PENDING:
                        timer.state = _FIRED
                        _pending -= 1
                        _forget(timer)
                        due.append(timer)
                if not due and _heap:
                    _cond.wait(_heap[0][0] - now)
        for timer in due:
            try:
                timer.target.tell(timer.message)
            except ActorDeadError:
                pass


def _cancel_timers_of(ref: ProcessRef, _reason: ExitReason) -> None:
    if ref in _timers_of:  # most processes have no timer: no lock for them
        with _cond:
            for timer in list(_timers_of.get(ref, ())):
                _cancel_locked(timer)


on_death(_cancel_timers_of)
serve_timers(send_after)
