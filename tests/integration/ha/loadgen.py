"""A load generator for failover tests and bench/failover.py: threads submitting
decisions through the backend, each with its own API key, recording every
outcome with its start and end time."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    ended: float
    status: int  # 0: no HTTP answer (connection error, timeout)
    decision_id: str | None

    @property
    def acknowledged(self) -> bool:
        return self.status in (200, 202) and self.decision_id is not None


@dataclass
class LoadGenerator:
    """``keys``: one thread per API key, each submitting a decision every
    ``interval_s`` (fresh facts each time, so no request is a cache hit)."""

    base_url: str
    keys: list[str]
    ruleset: str
    interval_s: float = 0.1
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def start(self) -> LoadGenerator:
        for key in self.keys:
            thread = threading.Thread(target=self._run, args=(key,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        with self._lock:
            return list(self.outcomes)

    def snapshot(self) -> list[Outcome]:
        with self._lock:
            return list(self.outcomes)

    def first_success_after(self, t: float) -> Outcome | None:
        """The earliest-ending acknowledged request that started after ``t``."""
        after = [o for o in self.snapshot() if o.started > t and o.acknowledged]
        return min(after, key=lambda o: o.ended) if after else None

    def _run(self, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            while not self._stop.is_set():
                n = next(self._counter)
                body = {"ruleset": self.ruleset, "facts": {"a": [[n]]}, "query": ["ok(X)"], "wait_ms": 0}
                started = time.monotonic()
                try:
                    response = client.post("/v1/decisions", json=body)
                    status = response.status_code
                    ident = response.json().get("decision_id") if status in (200, 202) else None
                except httpx.HTTPError:
                    status, ident = 0, None
                with self._lock:
                    self.outcomes.append(Outcome(started, time.monotonic(), status, ident))
                self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
