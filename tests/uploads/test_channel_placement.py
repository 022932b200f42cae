"""Where an upload's channel runs is the writer's declaration (issue 16): a
``blocking`` writer's channel gets a thread of its own, a ``loop_safe``
writer's runs on the server's event loop when one is bound, and any other on
the runtime's default, so a writer that stalls unannounced never holds the
server's loop."""

from __future__ import annotations

import pytest

from tests.runtime.test_loop_substrate import LoopThread
from uploads.session import channel_substrate
from writers import EchoWriter, FaultyWriter, MemoryWriter, TmpFileWriter
from writers.journal import JournalingWriter
from writers.s3 import S3Writer


class Blocking(MemoryWriter):
    blocking = True


@pytest.mark.pure
@pytest.mark.timeout(30)
def test_channel_placement_follows_the_writers_declaration():
    declared = [TmpFileWriter(), MemoryWriter(), EchoWriter()]
    undeclared = [FaultyWriter(), JournalingWriter(), S3Writer()]
    # No loop bound (embedded without a server): the default, or a thread.
    assert [channel_substrate(w) for w in declared + undeclared] == [None] * 6
    assert channel_substrate(Blocking()) == "thread"
    loop = LoopThread()
    try:
        assert [channel_substrate(w) for w in declared] == ["loop"] * 3
        assert [channel_substrate(w) for w in undeclared] == [None] * 3
        assert channel_substrate(Blocking()) == "thread"
    finally:
        loop.close()
