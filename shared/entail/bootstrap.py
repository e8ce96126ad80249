"""The composition root: the one place adapters are chosen from settings.

Every entry point builds what it works with here: the backend, the worker and
the relay their :class:`~entail.services.Services` (``bootstrap()`` /
``open_services()``), the audit sink its store (``open_audit_sink()``),
``batch_reason`` its audit store, BigQuery client and caps (``open_batch()``),
and ``entail batch`` its DuckDB database (``open_batch_database()``). Nothing
connects at import time, and nothing is imported here at module level that
needs Redis: the functions import this module and install no Redis client
(tests/cloud/test_cloudbuild.py). docs/architecture.md lists the entry points.
"""

from __future__ import annotations

__all__ = [
    "BatchResources",
    "DatasetReaderOpener",
    "Services",
    "bigquery_client",
    "bootstrap",
    "open_audit_sink",
    "open_audit_store",
    "open_batch",
    "open_batch_database",
    "open_dataset_reader",
    "open_dataset_store",
    "open_root_publisher",
    "open_services",
    "open_trail",
    "serve_http",
]

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .audit.port import AuditStore
from .settings import Settings

if TYPE_CHECKING:
    import duckdb
    import redis.asyncio as aioredis
    from google.cloud import bigquery

    from .audit.publish import RootPublisher
    from .audit.trail_job import TrailResources
    from .audit_sink import AuditSink
    from .batch import BatchCaps
    from .bus.port import Bus
    from .datasets.port import DatasetStore
    from .services import Services
    from .state.durability import Durability


def __getattr__(name: str) -> Any:
    # ``from entail.bootstrap import Services`` (the services' own modules) without
    # importing Redis for the functions, which never build Services
    if name == "Services":
        from .services import Services

        return Services
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_audit_store(settings: Settings, *, steady_writer: bool = False) -> AuditStore:
    """``ENTAIL_AUDIT_STORE``: the local DuckDB file (default) or BigQuery.

    ``steady_writer``: the audit sink, which writes all the time under load and
    so keeps the local file open while decisions flow (see DuckDBAuditStore)."""
    if settings.audit_store == "bigquery":
        from .audit.bigquery_store import BigQueryAuditStore  # the gcp extra: only in cloud mode

        return BigQueryAuditStore.from_settings(settings)
    from .audit.duckdb_store import STEADY_WRITER_LINGER_MS, DuckDBAuditStore

    path = settings.audit_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # shared: the audit sink and the backend are separate processes on one file
    return DuckDBAuditStore(path, shared=True, linger_ms=STEADY_WRITER_LINGER_MS if steady_writer else 0)


def open_audit_sink(settings: Settings | None = None) -> AuditSink:
    """The audit sink of one function instance. Its store is opened by the first
    message, from ``settings`` or, when None, from the environment at that
    moment (a failed open is retried with the environment of the next message)."""
    from .audit_sink import AuditSink

    def current() -> Settings:
        return settings if settings is not None else Settings()

    return AuditSink(lambda: open_audit_store(current(), steady_writer=True), settings=current)


def bigquery_client(settings: Settings) -> bigquery.Client:
    """A BigQuery client for ``ENTAIL_BIGQUERY_PROJECT`` (or the GCP project); with
    ``ENTAIL_BIGQUERY_ENDPOINT`` (an emulator) anonymous credentials at that endpoint."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    project = settings.bigquery_project or settings.gcp_project
    if not project:
        raise ValueError("BigQuery needs ENTAIL_BIGQUERY_PROJECT or ENTAIL_GCP_PROJECT")
    if settings.bigquery_endpoint:
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=settings.bigquery_endpoint),
        )
    return bigquery.Client(project=project, location=settings.bigquery_location)


@dataclass
class BatchResources:
    """What an audited batch run works with (``batch_reason``)."""

    store: AuditStore
    client: bigquery.Client
    caps: BatchCaps

    def close(self) -> None:
        self.store.close()
        self.client.close()  # type: ignore[no-untyped-call]


def open_batch(settings: Settings) -> BatchResources:
    """The audit store (the rulesets, the ``batch_runs`` rows), the BigQuery client
    the runs' jobs go to, and the caps (``ENTAIL_BATCH_*``) of ``settings``."""
    from .batch import BatchCaps

    client = bigquery_client(settings)
    try:
        store = open_audit_store(settings)
    except BaseException:
        client.close()  # type: ignore[no-untyped-call]
        raise
    return BatchResources(store, client, BatchCaps.from_settings(settings))


def open_root_publisher(settings: Settings, directory: Path | None = None) -> RootPublisher | None:
    """Where signed roots are published: ``directory`` (``entail audit roots
    --publish DIR``), else the Cloud Storage bucket ``ENTAIL_AUDIT_ROOTS_BUCKET``
    (google-auth's default credentials; anonymous at an emulator's
    ``ENTAIL_AUDIT_STORAGE_ENDPOINT``), else None: not published."""
    from .audit.publish import DirectoryPublisher, GcsPublisher

    if directory is not None:
        return DirectoryPublisher(directory)
    if not settings.audit_roots_bucket:
        return None
    token = None
    if settings.audit_storage_endpoint.rstrip("/") == "https://storage.googleapis.com":
        import google.auth  # the gcp extra: loaded only in cloud mode
        import google.auth.transport.requests

        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_write"])

        def token() -> str:
            if not credentials.valid:
                credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
            return str(credentials.token)

    return GcsPublisher(settings.audit_roots_bucket, token=token, endpoint=settings.audit_storage_endpoint)


def open_trail(settings: Settings, *, publish_dir: Path | None = None) -> TrailResources:
    """The audit store, the root signer (Cloud KMS or the local key) and the root
    publisher of the scheduled trail jobs (``functions/trail_roots``, ``entail audit roots``)."""
    from .audit.signing import open_signer
    from .audit.trail_job import TrailResources

    signer = open_signer(settings)
    store = open_audit_store(settings)
    try:
        publisher = open_root_publisher(settings, publish_dir)
    except BaseException:
        store.close()
        raise
    return TrailResources(store, signer, publisher)  # type: ignore[arg-type]


def open_batch_database(
    path: str | Path, *, memory_limit: str | None = None, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """The DuckDB database ``entail batch`` reads inputs from and writes outputs to
    (``:memory:`` for none), with DuckDB's memory and thread limits when given."""
    import duckdb

    config: dict[str, Any] = {}
    if memory_limit:
        config["memory_limit"] = memory_limit
    if threads:
        config["threads"] = threads
    return duckdb.connect(str(path), config=config)


def open_dataset_store(
    settings: Settings, redis: aioredis.Redis, durability: Durability | None = None
) -> DatasetStore:
    """The dataset store ``settings`` ask for (docs/datasets.md, "Storage"):
    ``ENTAIL_DATASET_STORE=local`` files under ``<data_dir>/datasets``, or ``cloud``
    the bucket ``ENTAIL_DATASET_BUCKET`` (anonymous at an emulator's
    ``ENTAIL_DATASET_STORAGE_ENDPOINT``) and the BigQuery dataset
    ``ENTAIL_DATASET_BQ_DATASET``; metadata in Redis either way."""
    from .datasets.local_store import LocalDatasetStore

    root = settings.data_dir / "datasets"
    max_facts, max_bytes = settings.dataset_max_facts, settings.dataset_max_bytes
    tenant_max_bytes = settings.dataset_tenant_max_bytes
    if settings.dataset_store == "cloud":
        from .datasets.bigquery_tables import DatasetTables  # the gcp extra: only in cloud mode
        from .datasets.cloud_store import CloudDatasetStore
        from .datasets.gcs_objects import GcsObjects

        objects = GcsObjects(
            settings.dataset_bucket,
            token=_storage_token(settings.dataset_storage_endpoint),
            endpoint=settings.dataset_storage_endpoint,
        )
        tables = DatasetTables(bigquery_client(settings), settings.dataset_bq_dataset)
        # the local directory is scratch space here: uploads being built, verified copies
        return CloudDatasetStore(
            redis,
            root,
            objects,
            tables,
            durability=durability,
            max_facts=max_facts,
            max_bytes=max_bytes,
            tenant_max_bytes=tenant_max_bytes,
        )
    return LocalDatasetStore(
        redis,
        root,
        durability=durability,
        max_facts=max_facts,
        max_bytes=max_bytes,
        tenant_max_bytes=tenant_max_bytes,
    )


def open_dataset_reader(settings: Settings) -> DatasetStore:
    """The dataset store ``settings`` ask for, opened in a compute pool process to
    ``read()`` versions' rows on a cache miss (entail/dataset_eval.py): the adapter
    :func:`bootstrap` chooses; its Redis client never connects (``read`` touches
    files or objects alone; the metadata was resolved by the service process)."""
    from .state.client import connect

    return open_dataset_store(settings, connect(settings))


@dataclass
class DatasetReaderOpener:
    """:func:`open_dataset_reader` of ``settings``, as a value a task takes across the
    pool's pipe (a few KB of settings); equal for equal settings, so a pool process
    opens one store per configuration and keeps it."""

    settings: Settings

    def __call__(self) -> DatasetStore:
        return open_dataset_reader(self.settings)


def _storage_token(endpoint: str) -> Callable[[], str] | None:
    """OAuth tokens of google-auth's default credentials for Cloud Storage itself;
    None (anonymous) for any other endpoint: an emulator."""
    if endpoint.rstrip("/") != "https://storage.googleapis.com":
        return None
    import google.auth  # the gcp extra: loaded only in cloud mode
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/devstorage.read_write"])

    def token() -> str:
        if not credentials.valid:
            credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
        return str(credentials.token)

    return token


async def bootstrap(
    settings: Settings,
    *,
    redis: aioredis.Redis | None = None,
    bus: Bus | None = None,
    audit: AuditStore | None = None,
) -> Services:
    """The services ``settings`` ask for. A ``redis`` client given by the caller
    (tests) serves as primary and replica and stays the caller's to close."""
    from .auth import KeyRing
    from .bus.redis_streams import RedisStreamsBus
    from .services import Services
    from .state.cache import ResultCache
    from .state.client import connect_clients
    from .state.decisions import DecisionStore
    from .state.durability import Durability
    from .state.ratelimit import RateLimiter
    from .state.registry import RulesetRegistry

    if bus is None and settings.bus == "pubsub":
        from .bus.pubsub import PubSubBus  # the gcp extra: loaded only in cloud mode

        bus = PubSubBus.from_settings(settings)
    clients = connect_clients(settings) if redis is None else None
    primary = clients.primary if clients is not None else redis
    replica = clients.replica if clients is not None else redis
    assert primary is not None and replica is not None
    durability = Durability.from_settings(primary, settings)
    return Services(
        settings=settings,
        redis=primary,
        bus=bus
        if bus is not None
        else RedisStreamsBus(primary, settings.stream_max_len, durability=durability),
        decisions=DecisionStore(primary, settings.decision_ttl_s, durability=durability),
        cache=ResultCache(primary, replica=replica),
        registry=RulesetRegistry(primary, replica=replica, durability=durability),
        rate_limiter=RateLimiter(primary, retry_window_s=settings.redis_retry_window_s),
        keys=KeyRing.from_settings(settings),
        durability=durability,
        datasets=open_dataset_store(settings, primary, durability),
        dataset_reader=DatasetReaderOpener(settings),
        redis_read=replica if replica is not primary else None,
        _audit=audit,
        _open_audit=lambda: open_audit_store(settings),
        _clients=clients,
    )


@asynccontextmanager
async def open_services(settings: Settings, services: Services | None = None) -> AsyncIterator[Services]:
    """The services of an app's lifespan: built here and closed at the end, or
    given by the caller (tests) and left open."""
    if services is not None:
        yield services
        return
    owned = await bootstrap(settings)
    try:
        yield owned
    finally:
        await owned.aclose()


def serve_http(
    app: Any, settings: Settings, service: Literal["backend", "worker"], *, http: Any = "auto"
) -> None:
    """Run an ASGI app with uvicorn on 127.0.0.1 (``ENTAIL_HOST``) and ``PORT`` or the
    default; ``http``: uvicorn's HTTP protocol (a class, or its name)."""
    import uvicorn

    from . import tracing
    from .logs import configure
    from .process_heap import freeze_startup_heap

    configure(settings, service)
    if tracing.setup(settings, service):
        tracing.instrument_app(app)  # a server span per request, the parent of the app's own spans
    freeze_startup_heap()  # full collections skip the startup heap: 100-400 ms pauses under load
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port_for(service),
        log_config=None,  # uvicorn's lines go through entail.logs (JSON in production)
        log_level=settings.log_level.lower(),
        access_log=False,  # entail.request_context writes the access lines
        proxy_headers=True,
        timeout_graceful_shutdown=5,
        http=http,
    )
