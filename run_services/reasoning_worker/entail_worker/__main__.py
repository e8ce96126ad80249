"""``python -m entail_worker``: serve the push endpoint with uvicorn on ``PORT`` or 4002."""

from __future__ import annotations

from entail.bootstrap import serve_http
from entail.settings import Settings

from .app import create_app


def main() -> None:
    settings = Settings()
    serve_http(create_app(settings), settings, "worker")


if __name__ == "__main__":
    main()
