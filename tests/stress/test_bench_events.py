"""The ``events`` scenario's page, unbound and as served (its session on the
handler's own loop): every event is answered with its own diff and no push.
Nothing here is timed: no assertion is about speed."""

from __future__ import annotations

import pytest

from actors import substrates
from benchmarks.page_events import measure_progress_events, measure_round_trip

pytestmark = [pytest.mark.substrates("loop"), pytest.mark.timeout(60)]


@pytest.mark.parametrize("bound", [False, True])
def test_every_progress_event_is_answered_with_its_own_change(bound):
    cost = measure_progress_events(10, 30, bound=bound)
    assert (cost.entries, cost.events, cost.replies, cost.pushes) == (10, 30, 30, 0)
    assert 100 < cost.reply_bytes_per_event < 200  # one entry's changed fields, not the page
    assert cost.cpu_us_per_event > 0
    assert substrates.bound_loop() is None  # a bound run unbinds its loop when it ends


def test_a_bound_round_trip_unbinds_its_loop():
    assert measure_round_trip(50, bound=True) > 0
    assert substrates.bound_loop() is None
