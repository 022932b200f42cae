"""The journal of writer calls and the writer that keeps one (no process involved)."""

from __future__ import annotations

import os
import threading

import pytest

from writers import FaultyWriter, Journal, JournalingWriter, instantiate, journaling

pytestmark = pytest.mark.pure


def test_a_journaling_writer_journals_every_callback_of_the_writer_it_wraps(tmp_path):
    journal = Journal()
    writer, opts = instantiate(journaling(journal, opts={"dir": str(tmp_path)}, tag=("a.bin",)))
    assert isinstance(writer, JournalingWriter)
    ok, state = writer.init(opts)
    assert ok == "ok"
    path = writer.meta(state)["path"]
    assert writer.write_chunk(b"ab", state)[0] == "ok" and writer.write_chunk(b"c", state)[0] == "ok"
    assert writer.close(state, "done")[0] == "ok"
    with open(path, "rb") as f:
        assert f.read() == b"abc"
    writer.release(state)
    assert not os.path.exists(path)
    assert journal.items() == [("init", "a.bin"), ("path", "a.bin", path), ("chunk", "a.bin", 1),
                               ("chunk", "a.bin", 2), ("close", "a.bin", "done"), ("release", "a.bin")]
    assert journal.closes("a.bin") == ["done"] and journal.closes() == [] and journal.path("a.bin") == path


def test_a_journaling_writer_passes_the_wrapped_writers_errors_on():
    journal = Journal()
    writer, opts = instantiate(journaling(journal, writer=FaultyWriter,
                                          opts={"fault": "error", "at_chunk": 1, "reason": "full"}))
    _, state = writer.init(opts)
    assert writer.write_chunk(b"x", state) == ("error", "full", state)
    writer, opts = instantiate(journaling(journal, writer=FaultyWriter, opts={"fault": "init_error", "reason": "no"}))
    assert writer.init(opts) == ("error", "no")
    assert journal.count("init") == 2 and journal.path() is None  # a memory writer has no file


def test_a_journal_is_waited_on_with_a_deadline_and_stamps_each_entry():
    journal = Journal()
    assert journal.wait(lambda items: ("close", "done") in items, 0.01) is False
    with pytest.raises(TimeoutError, match=r"holds \[\]"):
        journal.wait_for(lambda items: bool(items), 0.01)
    appender = threading.Thread(target=lambda: [journal.append(("chunk", n)) for n in (1, 2)])
    appender.start()
    assert journal.wait_for(lambda items: ("chunk", 2) in items, 5.0) == [("chunk", 1), ("chunk", 2)]
    appender.join()
    first, second = journal.first(("chunk", 1)), journal.first(("chunk", 2))
    assert first is not None and second is not None and first <= second
    assert [item for _, item in journal.timed()] == list(journal) and len(journal) == 2 and ("chunk", 1) in journal
    assert journal.first(("close", "done")) is None


def test_a_faulty_writer_appends_to_a_journal():
    journal = Journal()
    writer = FaultyWriter()
    _, state = writer.init({"journal": journal, "journal_release": True})
    writer.write_chunk(b"x", state)
    writer.close(state, "cancel")
    writer.release(state)
    assert journal.closes() == ["cancel"] and journal.count("release") == 1
