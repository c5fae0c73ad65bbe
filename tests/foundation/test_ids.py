"""Ids carry the time they were made: ``id_floor`` is the smallest id of a moment, so a time window is an
id range on the primary key (core/finance/dashboard.py uses it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from qris_soundbox.core.ids import ID_PATTERN, id_floor, new_id


def test_the_floor_of_a_moment_sorts_after_earlier_ids_and_before_later_ones() -> None:
    earlier = new_id("txn")
    time.sleep(0.002)
    moment = datetime.now(UTC)
    time.sleep(0.002)
    later = new_id("txn")
    floor = id_floor("txn", moment)
    assert ID_PATTERN.fullmatch(floor)
    assert earlier < floor < later
    assert id_floor("txn", moment - timedelta(hours=1)) < floor < id_floor("txn", moment + timedelta(milliseconds=1))
