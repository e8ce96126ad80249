"""``python -m entail_worker``: serve the push endpoint with uvicorn on ``PORT`` or 4002."""

from __future__ import annotations

import logging

import uvicorn

from entail.settings import Settings

from .app import create_app


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port_for("worker"),
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
