"""Python client for the Entail API: decisions (waiting through 202 with server-sent
events, falling back to polling), batches, rulesets, replay, impact, audit search.

    from entail_client import Client

    with Client("http://127.0.0.1:3005", api_key="ent_...") as entail:
        decision = entail.decide("loan@prod", {"applicant": [["ann"]]}, ["decision(A, D)"])
"""

from ._core import DecisionReport, RetryPolicy, __version__
from .async_client import AsyncClient
from .client import Client
from .errors import (
    BadRequest,
    Conflict,
    DecisionTimeout,
    EntailError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
)

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "Conflict",
    "DecisionReport",
    "DecisionTimeout",
    "EntailError",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Unauthorized",
    "Unprocessable",
    "__version__",
]
