"""Per-device budgets for MQTT uplinks: how much one device can make the platform write.

Without them a device could publish as fast as its link allows and every message became work and
rows: 250,800 heartbeats in 20 s became as many trace rows, 72,809 dynamic-QR requests in 10 s
7,524 pending transactions (docs/security.md). Each device may send, per uplink kind (the topic after
``devices/<id>/uplink/``; every suffix no handler knows counts as the one kind ``other``),
``MQTT_UPLINK_BUDGET_MAX`` messages per ``MQTT_UPLINK_BUDGET_WINDOW_MS``. Past it, until its window
ends, that kind is dropped by the broker before any plugin sees it (still PUBACKed: a QoS 1 publish
left without one is sent again for ever), and the drop is

- counted: ``qris_broker_uplinks_dropped{kind}`` and the device's ``uplinks_dropped`` (written
  coalesced, as ACL denials are: ``DeviceCounter``), shown in its detail;
- logged once per device and kind per window, not once per message;
- traced 1 in ``MQTT_UPLINK_TRACE_SAMPLE``: the trace of a device over budget is a sample.

The counts live in the broker process (two dict operations per uplink, no I/O: the hot path of a
flood). With several broker nodes a device that reconnects elsewhere starts afresh there, which still
bounds it; the dynamic-QR request is held to the shared HTTP limit as well
(``core/payments/device_requests.py``).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable

from prometheus_client import Counter

from qris_soundbox.core.devices.counters import DeviceCounter
from qris_soundbox.core.devices.uplinks import parse_uplink_topic

log = logging.getLogger(__name__)
OTHER = "other"
_SWEEP_EVERY = 4096  # uplinks between sweeps of finished windows


class Verdict(enum.Enum):
    ADMIT = "admit"
    DROP = "drop"
    DROP_TRACED = "drop_traced"  # dropped, and the one in ``trace_sample`` that is traced


class UplinkBudget:
    def __init__(
        self,
        *,
        max_per_window: int,
        window_s: float,
        trace_sample: int,
        dropped: DeviceCounter,
        metric: Counter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max = max_per_window
        self.window_s = window_s
        self.trace_sample = trace_sample
        self.dropped = dropped
        self._clock = clock
        self._kinds: frozenset[str] = frozenset()
        # (device id, kind) -> [window start, uplinks in it, of which dropped]
        self._windows: dict[tuple[str, str], list[float]] = {}
        self._seen = 0
        self._metric = metric

    def track(self, kinds: Iterable[str]) -> None:
        """The uplink kinds handlers exist for (the broker's uplink plugin); every other suffix is ``other``."""
        self._kinds = frozenset(kinds)
        for kind in (*self._kinds, OTHER):
            self._metric.labels(kind)  # at zero from the start

    def admit(self, client_id: str, topic: str) -> Verdict:
        """ADMIT within budget (or for what is not an uplink of this client); otherwise the uplink is
        dropped, counted, and its verdict says whether to trace it."""
        parsed = parse_uplink_topic(topic)
        if parsed is None or parsed[0] != client_id:
            return Verdict.ADMIT
        kind = parsed[1] if parsed[1] in self._kinds else OTHER
        now = self._clock()
        self._seen += 1
        if self._seen % _SWEEP_EVERY == 0:
            self._sweep(now)
        key = (client_id, kind)
        window = self._windows.get(key)
        if window is None or now - window[0] >= self.window_s:
            self._windows[key] = [now, 1, 0]
            return Verdict.ADMIT
        window[1] += 1
        if window[1] <= self.max:
            return Verdict.ADMIT
        window[2] += 1
        self.dropped.count(client_id)
        self._metric.labels(kind).inc()
        if window[2] == 1:
            log.warning(
                "device over its uplink budget: dropping until the window ends",
                extra={"device_id": client_id, "kind": kind, "budget": self.max, "window_s": self.window_s},
            )
        return Verdict.DROP_TRACED if (window[2] - 1) % self.trace_sample == 0 else Verdict.DROP

    def _sweep(self, now: float) -> None:
        finished = [key for key, window in self._windows.items() if now - window[0] >= self.window_s]
        for key in finished:
            del self._windows[key]
