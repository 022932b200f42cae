"""Per-socket budgets of the ``lv:``/``lvu:`` handlers (issue 17): pages and
topics joined per socket. Past a budget the join gets an error reply and one
structured log line; the socket, its other topics and other sockets carry on."""

from __future__ import annotations

import pytest

from server.budgets import SocketBudgets
from tests.hostile.wire_helpers import assert_real_upload_completes, server
from tests.server.test_server import serve_process
from tests.server.wire import Page, Upload, Wire, error, fetch_page, ok

pytestmark = pytest.mark.timeout(60)


def logged(logs: list[dict], event: str) -> list[dict]:
    return [e for e in logs if e["event"] == event]


def test_pages_per_socket_past_the_budget_are_refused(tmp_path, logs):
    with server(tmp_path, max_pages_per_socket=3) as (url, app):
        wire = Wire(url)
        pages = [Page(wire, fetch_page(url)) for _ in range(3)]
        refused = [Page(wire, fetch_page(url), join=False) for _ in range(20)]
        for page in refused:
            assert page.join() == error({"reason": "too_many_pages"})
        [line] = logged(logs, "lv.budget_exceeded")[:1]
        assert line["budget"] == "pages" and line["limit"] == 3
        assert len(logged(logs, "lv.budget_exceeded")) == 20
        assert len(app.state.live.sessions) == 3  # no session started for a refused page
        # The joined pages still work, and a page freed makes room for another.
        tokens = pages[0].upload_tokens({"a.txt": 10})
        upload = Upload(pages[0], "0", tokens["0"])
        assert upload.join_reply == ok()
        assert pages[1].call("phx_leave", {}) == ok()
        wire.expect(lambda f: f[2] == pages[1].topic and f[3] == "phx_close")
        late = Page(wire, fetch_page(url), join=False)
        # The page's count is given back as it leaves, just after its phx_close:
        # a join may still race that by a moment, never for long.
        replies = [late.join()]
        while replies[-1]["status"] != "ok" and len(replies) < 50:
            replies.append(late.join())
        assert replies[-1]["status"] == "ok", replies[-1]
        wire.close()
        assert_real_upload_completes(url, tmp_path)


@pytest.mark.pure  # the server runs in a child process
def test_serve_flags_set_the_socket_budgets(tmp_path):
    with serve_process(tmp_path, "--max-pages-per-socket", "1", "--max-topics-per-socket", "2") as (url, _lines):
        wire = Wire(url)
        page = Page(wire, fetch_page(url))
        assert Page(wire, fetch_page(url), join=False).join() == error({"reason": "too_many_pages"})
        tokens = page.upload_tokens({"a.txt": 10, "b.txt": 10})
        assert Upload(page, "0", tokens["0"]).join_reply == ok()  # the page and this upload: 2 topics
        assert Upload(page, "1", tokens["1"]).join_reply == error({"reason": "too_many_topics"})
        wire.close()


def test_topics_per_socket_past_the_budget_are_refused(tmp_path, logs):
    with server(tmp_path, max_topics_per_socket=4) as (url, app):
        wire = Wire(url)
        page = Page(wire)
        tokens = page.upload_tokens({f"{i}.txt": 10 for i in range(5)})
        uploads = [Upload(page, str(i), tokens[str(i)]) for i in range(5)]
        assert [u.join_reply for u in uploads] == [ok()] * 3 + [error({"reason": "too_many_topics"})] * 2
        assert logged(logs, "lvu.budget_exceeded")[0]["budget"] == "topics"
        assert uploads[0].chunk(b"0123456789") == ok()  # the joined ones carry on
        assert Page(wire, fetch_page(url), join=False).join() == error({"reason": "too_many_topics"})
        wire.close()
        assert_real_upload_completes(url, tmp_path)


def test_the_counts_are_given_back_when_topics_end():
    budgets = SocketBudgets(max_pages=2, max_topics=3)
    socket = object()
    assert budgets.take(socket, page=True) is None
    assert budgets.take(socket, page=True) is None
    assert budgets.take(socket, page=True) == "too_many_pages"
    assert budgets.take(socket, page=False) is None
    assert budgets.take(socket, page=False) == "too_many_topics"
    budgets.give_back(socket, page=True)
    budgets.give_back(socket, page=True)
    budgets.give_back(socket, page=False)
    assert budgets.counts(socket) == (0, 0)
    assert budgets.sockets() == 0  # nothing kept for a socket with nothing joined


def test_the_default_topic_budget_fits_every_page_uploading_all_it_may():
    budgets = SocketBudgets.for_configs({"a": {"max_entries": 3}, "b": {}}, max_pages=10)
    assert budgets.max_pages == 10 and budgets.max_topics == 10 * (1 + 3 + 1)
