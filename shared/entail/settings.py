"""All configuration, from environment variables with the ``ENTAIL_`` prefix.

One class for every entry point (backend, worker, relay, ``entail up``, tests);
units are in the names. Cloud Run's ``PORT`` wins over the service defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "change-me", "dev-push-secret", "dev-mask-secret"}
#: The longest Unix socket path Linux takes, in bytes: ``sun_path`` is 108 with its NUL.
MAX_UNIX_SOCKET_PATH = 107


def redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, or None: ``redis://[:password@]host[:port][/db]``,
    ``rediss://`` the same over TLS, ``unix://[:password@]/path/to/socket[?db=N]``.

    Checked when the settings load, so a typo fails at start with the reason rather
    than at the first command with redis-py's. The message never repeats the URL (it
    may hold the password)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("redis", "rediss", "unix"):
        return "must start with redis://, rediss:// or unix://"
    query = parse_qs(parts.query)
    if "password" in query:
        # the log redaction (entail.logs) finds the password before the '@' only
        return (
            "carries its password in the query: put it before the host, as in redis://:PASSWORD@host:6379/0"
        )
    for db in query.get("db", []):
        if not db.isdigit():
            return f"has db={db!r} in its query: the database is a whole number (db=0)"
    path = unquote(parts.path)
    if parts.scheme == "unix":
        if parts.hostname or port is not None:
            return "names a host: a unix:// URL is unix://[:PASSWORD@]/absolute/path/to/socket[?db=N]"
        if not path.startswith("/"):
            return "names no absolute socket path: unix:///absolute/path/to/socket"
        size = len(os.fsencode(path))
        if size > MAX_UNIX_SOCKET_PATH:
            return f"names a socket path of {size} bytes: Unix sockets take at most {MAX_UNIX_SOCKET_PATH}"
        return None
    if not parts.hostname:
        return "names no host: redis://host:6379/0"
    if path.strip("/") and not path.strip("/").isdigit():
        return f"has the path {path!r}: after the host only the database number may follow (/0)"
    return None


class Settings(BaseSettings):
    # errors name the setting and the reason without echoing values: a Redis URL
    # or a secret would otherwise land in the log of a service that fails to start
    model_config = SettingsConfigDict(env_prefix="ENTAIL_", extra="ignore", hide_input_in_errors=True)

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path(".entail")
    # logs (entail/logs.py): production writes Cloud Logging's JSON, one object a line;
    # one access line per HTTP request: None = on in production only
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "debug", "info", "warning", "error"] = "INFO"
    log_access: bool | None = None
    # traces (entail/tracing.py): "auto" = a trace file when ENTAIL_TRACE_FILE is set,
    # else OTLP/HTTP when an endpoint is (this or OTEL_EXPORTER_OTLP_ENDPOINT), else
    # Cloud Trace in production on Cloud Run / Cloud Functions, else none (no overhead)
    trace_exporter: Literal["auto", "none", "file", "otlp", "gcp"] = "auto"
    trace_file: Path | None = None  # JSON lines, one span a line; {service} and {pid} are filled in
    trace_otlp_endpoint: str = ""  # e.g. http://127.0.0.1:4318 (a collector, Jaeger)
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)  # of new traces; a parent's choice wins
    trace_redis: bool = False  # a span per Redis command too (a dozen per decision: off by default)

    # Redis. Services need a URL; `entail up` and the test fixtures start an
    # embedded server and pass its URL on. With Sentinels (comma list of
    # host:port) the primary and the replicas are found through them instead;
    # a read URL (Memorystore's read endpoint) serves the stale-tolerant reads.
    # redis:// and rediss:// (TLS) over TCP; unix:///path/to/socket?db=0 for a server on
    # this machine (`entail up`'s); checked by redis_url_problem.
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_sentinels: str = ""
    redis_master_name: str = "entail"
    redis_read_url: str = ""
    redis_socket_timeout_ms: int = 5_000
    # connections per client pool; a call waits (up to the socket timeout) for a free one
    redis_max_connections: int = Field(default=100, ge=4)
    # how long one Redis call keeps retrying connection, timeout and read-only
    # errors (a failover); None: 10 s with Sentinels or a read URL, 1 s otherwise
    redis_retry_window_ms: int | None = None
    # durable acknowledgements: WAIT for this many replicas (at most those connected)
    redis_wait_replicas: int = 1
    redis_wait_timeout_ms: int = 1_000
    redis_replica_check_ms: int = 1_000  # how long a count of connected replicas is trusted

    # HTTP services
    backend_port: int = 3005
    worker_port: int = 4002
    host: str = "127.0.0.1"
    public_base_url: str = ""  # shown in links and the `make run` banner; derived when empty

    # API keys: a JSON file or a JSON string, each entry
    # {"id", "sha256" (hex of the key), "tenant", "scopes": [...]}; keys are never stored in clear.
    api_keys_file: Path | None = None
    api_keys_json: str = ""
    dev_api_key: str = ""  # `entail up` only: the key it prints (generated when empty)

    # limits on requests
    max_body_bytes: int = 1_000_000
    rate_limit_per_s: float = 50.0
    rate_limit_burst: int = 100
    wait_ms_max: int = 30_000
    batch_max_cases: int = 100
    # clients waiting at once per backend process (wait_ms, SSE); one more gets a 503
    waiters_max: int = Field(default=1_000, ge=1)

    # fairness between tenants on the worker tier (state/quotas.py): decisions a
    # tenant may have queued or running (429 past it; a batch must fit whole), and
    # evaluating at once across all workers (the rest wait parked, in order)
    tenant_max_open: int = Field(default=1_000, ge=1)
    # default: the CPUs this process may use less one, at least 1, so one tenant's
    # evaluations leave a core to the others (on 2 cores: 1; measured with
    # bench/fairness.py). In the cloud, set it for the worker tier (instances x
    # CPUs per instance, less headroom)
    tenant_max_running: int = Field(default_factory=lambda: max(1, len(os.sched_getaffinity(0)) - 1), ge=1)
    # the worker evaluates in this many processes (entail_worker/evaluation.py); more
    # than tenant_max_running, so another tenant always finds one; pushes beyond
    # the processes wait, at most worker_queue_max of them (then 503, redelivered)
    worker_processes: int = Field(default=3, ge=1)
    worker_queue_max: int = Field(default=256, ge=0)
    # nice value of the evaluation processes: > 0 where they share cores with the
    # routing processes on a dedicated machine; 0 where other work shares the machine
    worker_niceness: int = Field(default=0, ge=0, le=19)

    # size caps on what a decision stores: answers over all its queries, and the
    # final record's JSON (facts included); past either it fails with
    # limit-answers / limit-record-size instead of storing a huge record. 1.5 MB (above
    # max_body_bytes, since the facts are in the record): each
    # record crosses Redis, the bus, the sink and the audit store, and at 2 MB one
    # tenant's big answers took another's p99 past a second (bench/fairness.py)
    limit_answers: int = Field(default=10_000, ge=1)
    record_max_bytes: int = Field(default=1_500_000, ge=10_000)

    # decision reports (entail/report.py): what one report shows at most; past a
    # bound a proof is cut with a note, so a report stays printable
    report_max_proof_steps: int = Field(default=2_000, ge=1)
    report_max_proof_depth: int = Field(default=64, ge=1, le=500)
    report_max_rows: int = Field(default=1_000, ge=1)

    # engine limits for one decision (caps on what a request may ask for)
    limit_derived_facts: int = 1_000_000
    limit_wall_time_ms: int = 10_000
    limit_input_facts: int = 100_000
    limit_program_bytes: int = 1_000_000
    # compiling a ruleset (parse, analysis, planning, code generation; limit-compile-time)
    # and the literals of one rule's body (limit-rule-body): a hostile program is
    # refused quickly instead of occupying a process
    limit_compile_time_ms: int = Field(default=10_000, ge=1)
    limit_rule_body_literals: int = Field(default=10_000, ge=1)

    # state lifetimes
    decision_ttl_s: int = 7 * 24 * 3600
    # Idempotency-Key (entail/idempotency.py): how long a key's first response is
    # replayed, and how long a request still in flight holds its key (a backend that
    # died mid-request frees the key after this)
    idempotency_ttl_s: float = Field(default=24 * 3600, gt=0)
    idempotency_in_flight_s: float = Field(default=300, gt=0)
    cache_ttl_s: int = 24 * 3600
    # a backend remembers the records it served cache hits from this long (never
    # past the cache entry's or the record's own expiry): repeats skip two Redis
    # reads (entail/state/cache.py LocalHits); 0 turns it off
    result_cache_local_s: float = Field(default=5.0, ge=0)
    # the worker's materialised reference models (entail/reference_cache.py): the
    # bytes all of a worker process's (ruleset version, dataset versions) may take
    reference_cache_bytes: int = Field(default=512 * 1024 * 1024, ge=0)
    claim_lease_ms: int = 5_000  # renewed while the worker lives; a crashed worker's expires
    # every accepted decision ends: the sweeper fails one still not final this long
    # after it was accepted (code deadline-exceeded). Must exceed the longest a
    # decision can legitimately take: evaluation (limit_wall_time_ms) plus the bus's
    # redelivery budget (attempts x (ack deadline + backoff)); see docs/service.md
    decision_deadline_s: int = Field(default=600, gt=0)
    sweep_interval_s: float = Field(default=30.0, gt=0)  # how often the sweeper looks
    sweep_batch: int = Field(default=100, gt=0)  # decisions failed per sweep at most

    # bus and push delivery
    push_secret: str = "dev-push-secret"  # relay -> worker shared secret (local mode)
    worker_push_url: str = "http://127.0.0.1:4002/push/reasoning-jobs"
    relay_max_attempts: int = 5
    relay_backoff_initial_ms: int = 500
    relay_backoff_max_ms: int = 10_000
    relay_ack_deadline_ms: int = 60_000  # pending longer than this (a crashed relay) is reclaimed
    stream_max_len: int = 1_000_000

    # the bus: Redis Streams + the relay (local), or Google Pub/Sub (cloud mode,
    # docs/service.md "Cloud mode"); topics are projects/<gcp_project>/topics/<name>
    bus: Literal["redis", "pubsub"] = "redis"
    gcp_project: str = ""
    gcp_region: str = "europe-west1"  # `entail cloud status`: where the Cloud Run services are
    # host:port of a Pub/Sub emulator (tests); empty: the standard PUBSUB_EMULATOR_HOST, else Google
    pubsub_emulator_host: str = ""
    pubsub_publish_timeout_ms: int = 10_000  # a publish not stored by then fails (503, retried)

    # how the worker authenticates push requests: "secret" (the relay's shared
    # secret header, local mode), "oidc" (the Google-signed ID token Pub/Sub push
    # sends), "none" (emulators only: the Pub/Sub emulator signs nothing; refused in production)
    push_auth: Literal["oidc", "secret", "none"] = "secret"
    push_service_account: str = ""  # oidc: the token's email must be this push service account
    push_audience: str = ""  # oidc: the token's audience; default: ENTAIL_WORKER_PUSH_URL
    push_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"  # oidc: Google's signing certs

    # audit store: a DuckDB file shared by the audit sink and the backend, or BigQuery
    audit_duckdb_path: Path | None = None  # default: <data_dir>/audit.duckdb
    audit_sink_url: str = "http://127.0.0.1:4003/"  # where the relay delivers topic `decisions` (CloudEvents)
    audit_sink_port: int = 4003
    # false only to measure what the audit trail costs (bench/audit_throughput.py):
    # no audit-sink subscription, no sink process; refused in production
    audit_sink_enabled: bool = True
    # where audit rows live: a local DuckDB file, or BigQuery (the cloud; bqemulator in tests)
    audit_store: Literal["duckdb", "bigquery"] = "duckdb"
    # the trail's signed roots (docs/audit.md): a local Ed25519 key directory, or in the
    # cloud a Cloud KMS key version (projects/…/cryptoKeyVersions/N) and its endpoint
    audit_keys_dir: Path | None = None  # default: <data_dir>/audit-keys
    audit_kms_key_version: str = ""
    audit_kms_endpoint: str = "https://cloudkms.googleapis.com"
    # older KMS key versions (comma-separated) whose roots still verify after a rotation;
    # the backend reads their public keys (roles/cloudkms.publicKeyViewer)
    audit_kms_verify_key_versions: str = ""
    # where the daily job publishes each signed root (functions/trail_roots): the
    # Cloud Storage bucket with the locked retention policy, and its API endpoint
    # (an emulator in tests); empty: roots are not published
    audit_roots_bucket: str = ""
    audit_storage_endpoint: str = "https://storage.googleapis.com"
    # where dataset versions live (docs/datasets.md, "Storage"): Parquet files under
    # <data_dir>/datasets and metadata in Redis (local), or in the cloud the Parquet
    # objects in a Cloud Storage bucket and a BigQuery table per predicate (the SQL
    # batch path's), metadata in Redis; the Cloud Storage endpoint is an emulator in tests
    dataset_store: Literal["local", "cloud"] = "local"
    dataset_bucket: str = ""
    dataset_bq_dataset: str = Field(default="entail_datasets", pattern=r"^[A-Za-z0-9_]{1,1024}$")
    dataset_storage_endpoint: str = "https://storage.googleapis.com"
    # dataset uploads (docs/datasets.md, "Uploads"): facts and bytes per upload (413
    # past them), and bytes of all of a tenant's versions together
    dataset_max_facts: int = Field(default=10_000_000, ge=1)
    dataset_max_bytes: int = Field(default=4 << 30, ge=1)
    dataset_tenant_max_bytes: int = Field(default=20 << 30, ge=1)
    # the determinism canary: decisions replayed per run (docs/audit.md)
    canary_sample_size: int = Field(default=100, ge=1, le=100_000)
    bigquery_project: str | None = None  # default: ENTAIL_GCP_PROJECT
    bigquery_dataset: str = "entail_audit"
    bigquery_location: str = "US"
    bigquery_endpoint: str | None = None  # an emulator (anonymous credentials), e.g. http://127.0.0.1:9050
    # the most one audit-store call may take, retries included: a BigQuery request
    # that hangs fails (the sink answers 500, Pub/Sub redelivers) instead of holding
    # every decision queued behind it
    bigquery_timeout_s: float = Field(default=30.0, gt=0)

    # audited batch runs in BigQuery (functions/batch_reason, docs/batch.md): the caps
    # a request may only go below, and the dataset of the runs' working tables.
    # The defaults match entail.reasoning.sql.run.BatchLimits (not imported: this
    # module loads no engine)
    batch_max_bytes: int = Field(default=1_000_000_000_000, ge=0)  # scanned per run: 1 TB
    batch_max_iterations: int = Field(default=100_000, ge=0)  # rounds per recursive stratum
    batch_max_rows: int = Field(default=2_000_000_000, ge=0)  # derived rows per run
    batch_work_dataset: str = Field(default="entail_batch_work", pattern=r"^[A-Za-z0-9_]{1,1024}$")

    # HMAC key for masked input predicates in stored decisions (see docs/audit.md)
    mask_secret: str = "dev-mask-secret"

    # the built web app (static/dist) that the backend serves at /; default: the
    # repository's static/dist when it exists (in the cloud the CDN bucket serves it)
    static_dir: Path | None = None
    # origins allowed to call the API from a browser (the web app on another origin),
    # a JSON list, e.g. ENTAIL_CORS_ORIGINS='["https://app.example.com"]'
    cors_origins: list[str] = Field(default_factory=list)
    # serve the web app's *.map source maps (a debugging aid; off: they are 404)
    webapp_source_maps: bool = False

    # requests without a valid API key: 401s per client address, then 429
    unauthenticated_rate_per_s: float = Field(default=1.0, gt=0)
    unauthenticated_burst: int = Field(default=20, ge=1)
    # how often (s) ENTAIL_API_KEYS_FILE is checked for changes: keys reload without a restart
    api_keys_reload_s: float = Field(default=2.0, ge=0)
    # per ruleset: publishing past ruleset_max_versions, or a new tag past
    # ruleset_max_tags, is refused (409); lists of versions and tag moves are paginated
    ruleset_max_versions: int = Field(default=1000, ge=1)
    ruleset_max_tags: int = Field(default=100, ge=1)

    # the backend's compute pool (docs/service.md "Compute pool"): compile, validate,
    # example cases, draft evaluation, replay and impact run in these processes,
    # never on the event loop, under the limit_* caps above
    # default: min(2, the CPUs this process may run on)
    compute_pool_size: int = Field(default_factory=lambda: min(2, len(os.sched_getaffinity(0))), ge=1)
    compute_queue_max: int = Field(default=16, ge=0)  # waiting tasks beyond this: 503 + Retry-After
    compute_queue_max_per_tenant: int = Field(default=8, ge=1)
    # a task running past this many times its limit is SIGKILLed and its process replaced
    compute_kill_factor: float = Field(default=2.0, ge=1.0)
    compute_memory_mb: int = Field(default=2048, ge=0)  # address-space cap per process; 0: none
    impact_job_ttl_s: int = Field(default=24 * 3600, ge=60)  # how long an impact job's status is kept
    impact_jobs_per_tenant: int = Field(default=2, ge=1)  # running at once; more: 429

    # worker
    ruleset_cache_size: int = 256
    worker_id: str = Field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")

    @model_validator(mode="after")
    def _redis_urls_valid(self) -> Settings:
        # the URL is unused with Sentinels: the services ask them for the primary
        urls = {"ENTAIL_REDIS_READ_URL": self.redis_read_url}
        if not self.redis_sentinels:
            urls["ENTAIL_REDIS_URL"] = self.redis_url
        for name, url in urls.items():
            if not url and name == "ENTAIL_REDIS_READ_URL":
                continue
            problem = redis_url_problem(url) if url else "is empty: set it or ENTAIL_REDIS_SENTINELS"
            if problem:
                raise ValueError(f"{name} {problem}")
        return self

    @model_validator(mode="after")
    def _redis_timeouts_fit(self) -> Settings:
        # a WAIT blocks the connection: the socket must not time out first
        if self.redis_wait_replicas > 0 and self.redis_socket_timeout_ms <= self.redis_wait_timeout_ms:
            raise ValueError(
                f"ENTAIL_REDIS_SOCKET_TIMEOUT_MS ({self.redis_socket_timeout_ms}) must exceed "
                f"ENTAIL_REDIS_WAIT_TIMEOUT_MS ({self.redis_wait_timeout_ms})"
            )
        return self

    @model_validator(mode="after")
    def _deadline_outlasts_evaluation(self) -> Settings:
        # the sweeper must never end a decision a worker is still allowed to finish:
        # a deadline set too short is an error; the default grows with a long wall limit
        if self.decision_deadline_s * 1000 <= 2 * self.limit_wall_time_ms:
            if "decision_deadline_s" in self.model_fields_set:
                raise ValueError(
                    f"ENTAIL_DECISION_DEADLINE_S ({self.decision_deadline_s}) must exceed twice "
                    f"ENTAIL_LIMIT_WALL_TIME_MS ({self.limit_wall_time_ms} ms) plus the redelivery budget"
                )
            self.decision_deadline_s = 2 * -(-self.limit_wall_time_ms // 1000) + 60
        return self

    @property
    def redis_ha(self) -> bool:
        """Sentinels or a read endpoint: a topology with replicas and failovers."""
        return bool(self.redis_sentinels or self.redis_read_url)

    @property
    def redis_retry_window_s(self) -> float:
        if self.redis_retry_window_ms is not None:
            return self.redis_retry_window_ms / 1000
        return 10.0 if self.redis_ha else 1.0

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.env == "production":
            for name in ("push_secret", "mask_secret"):
                if name == "push_secret" and self.push_auth != "secret":
                    continue
                if getattr(self, name) in PLACEHOLDER_SECRETS:
                    raise ValueError(
                        f"ENTAIL_{name.upper()} must be set to a real secret outside development"
                    )
            if not self.audit_sink_enabled:
                raise ValueError("ENTAIL_AUDIT_SINK_ENABLED=false: production keeps every decision")
        return self

    @model_validator(mode="after")
    def _cloud_mode_complete(self) -> Settings:
        if self.bus == "pubsub" and not self.gcp_project:
            raise ValueError("ENTAIL_BUS=pubsub needs ENTAIL_GCP_PROJECT (the project of the topics)")
        if self.push_auth == "oidc" and not self.push_service_account:
            raise ValueError(
                "ENTAIL_PUSH_AUTH=oidc needs ENTAIL_PUSH_SERVICE_ACCOUNT (the email the push tokens carry)"
            )
        if self.env == "production" and self.push_auth == "none":
            raise ValueError("ENTAIL_PUSH_AUTH=none is for emulators: production verifies every push")
        if self.dataset_store == "cloud" and not self.dataset_bucket:
            raise ValueError(
                "ENTAIL_DATASET_STORE=cloud needs ENTAIL_DATASET_BUCKET (the bucket of the Parquet objects)"
            )
        return self

    @property
    def push_oidc_audience(self) -> str:
        """The audience push tokens must carry: Pub/Sub's default is the push endpoint URL."""
        return self.push_audience or self.worker_push_url

    @property
    def audit_path(self) -> Path:
        return self.audit_duckdb_path or self.data_dir / "audit.duckdb"

    @property
    def audit_keys_path(self) -> Path:
        return self.audit_keys_dir or self.data_dir / "audit-keys"

    def port_for(self, service: Literal["backend", "worker"]) -> int:
        """Cloud Run's ``PORT`` wins over the service's default."""
        port = os.environ.get("PORT")
        if port:
            return int(port)
        return self.backend_port if service == "backend" else self.worker_port
