"""Upload writers: where an upload entry's chunks go.

Pure Python, independent of the actor runtime. See :mod:`writers.behaviour`
for the contract (Phoenix's ``UploadWriter`` plus a ``release`` hook).
"""

from .behaviour import (
    Chunk,
    CloseReason,
    CloseResult,
    InitResult,
    Pending,
    Reason,
    UploadWriter,
    Waitable,
    WriteResult,
    WriterFactory,
    WriterSpec,
    WriterState,
    instantiate,
    settle,
)
from .echo import LOG_LEVELS, EchoWriter
from .faulty import CLOSE_ON, FAULTS, FaultConfig, FaultInjected, FaultyState, FaultyWriter
from .journal import Journal, JournaledState, JournalingWriter, journaling
from .memory import MemoryState, MemoryWriter
from .tmpfile import (
    TMPFILE_PREFIX,
    TMPFILE_SUFFIX,
    TmpFileState,
    TmpFileWriter,
    default_writer_factory,
    oserror_reason,
    remove_dir_if_empty,
)

__all__ = [
    "CLOSE_ON",
    "Chunk",
    "CloseReason",
    "CloseResult",
    "EchoWriter",
    "FAULTS",
    "FaultConfig",
    "FaultInjected",
    "FaultyState",
    "FaultyWriter",
    "InitResult",
    "Journal",
    "JournaledState",
    "JournalingWriter",
    "LOG_LEVELS",
    "MemoryState",
    "MemoryWriter",
    "Pending",
    "Reason",
    "TMPFILE_PREFIX",
    "TMPFILE_SUFFIX",
    "TmpFileState",
    "TmpFileWriter",
    "UploadWriter",
    "Waitable",
    "WriteResult",
    "WriterFactory",
    "WriterSpec",
    "WriterState",
    "default_writer_factory",
    "instantiate",
    "journaling",
    "oserror_reason",
    "settle",
    "remove_dir_if_empty",
]

