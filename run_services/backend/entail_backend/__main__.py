"""``python -m entail_backend``: serve the API with uvicorn on ``PORT`` or 3005."""

from __future__ import annotations

from entail.bootstrap import serve_http
from entail.settings import Settings

from .app import create_app
from .one_write import OneWriteHttpTools


def main() -> None:
    settings = Settings()
    # each answer in one write (one_write.py)
    serve_http(create_app(settings), settings, "backend", http=OneWriteHttpTools)


if __name__ == "__main__":
    main()
