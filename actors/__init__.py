"""actors: BEAM-style processes on Pykka.

The process runtime (``Process``, exit signals, links, monitors, names,
timers, the asyncio bridge) is the bottom layer; the upload actors live in
``uploads``, above ``supervision``.
"""

from __future__ import annotations

from actors.bridge import ask_async
from actors.current import blocking
from actors.futures import ProcessFuture
from actors.log import configure_logging
from actors.names import NameTakenError, register, registered, unregister, whereis
from actors.process import (
    Process,
    ProcessRef,
    StartError,
    await_exit,
    current_process,
    demonitor,
    exit,
    link,
    monitor,
    processes,
    unlink,
)
from actors.reasons import (
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    Down,
    Exit,
    ExitReason,
    MonitorRef,
    is_clean_exit,
)
from actors.shutdown import shutdown
from actors.substrates import default_substrate, set_default_substrate
from actors.timers import Timer, cancel_timer, pending_timers, send_after

__all__ = [
    "KILL",
    "KILLED",
    "NOPROC",
    "NORMAL",
    "SHUTDOWN",
    "Down",
    "Exit",
    "ExitReason",
    "MonitorRef",
    "NameTakenError",
    "Process",
    "ProcessFuture",
    "ProcessRef",
    "StartError",
    "Timer",
    "ask_async",
    "blocking",
    "default_substrate",
    "set_default_substrate",
    "shutdown",
    "await_exit",
    "cancel_timer",
    "configure_logging",
    "current_process",
    "demonitor",
    "exit",
    "is_clean_exit",
    "link",
    "monitor",
    "pending_timers",
    "processes",
    "register",
    "registered",
    "send_after",
    "unlink",
    "unregister",
    "whereis",
]
