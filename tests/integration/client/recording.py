"""A real HTTP transport that keeps a log of what went over it: the tests read the
requests the SDK sent (paths, idempotency keys) and the answers it got (429s,
Retry-After) without standing in for the service."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    status: int
    answer_headers: dict[str, str]
    at: float


class RecordingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[Exchange] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.log.append(
            Exchange(
                request.method,
                request.url.path,
                {k.lower(): v for k, v in request.headers.items()},
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                time.monotonic(),
            )
        )
        return response
