# Names and values shared by the files of this module. The services read
# their configuration from ENTAIL_* environment variables
# (shared/entail/settings.py); the ones every deployable shares are here.

locals {
  labels = merge(var.labels, {
    app         = "entail"
    environment = var.environment
  })

  # Pub/Sub topics (docs/design.md, Contracts); the bus adapter publishes to
  # projects/<project>/topics/<name>.
  topic_reasoning_jobs = "reasoning-jobs"
  topic_decisions      = "decisions"

  # The audience of the OIDC tokens Pub/Sub push attaches; the worker checks it
  # (ENTAIL_PUSH_AUDIENCE). A fixed string rather than the worker's URL, which
  # would make the worker's configuration depend on itself.
  push_audience = "entail-reasoning-worker-${var.environment}"

  redis_ca_path = "/secrets/redis-ca/ca.pem"

  # Settings every deployable (services and functions) loads. Production
  # settings refuse a placeholder push secret unless pushes are verified by
  # OIDC, so every one of them names the push account, even those that
  # receive no push themselves.
  settings_env = {
    ENTAIL_ENV                  = "production"
    ENTAIL_GCP_PROJECT          = var.project_id
    ENTAIL_AUDIT_STORE          = "bigquery"
    ENTAIL_BIGQUERY_DATASET     = google_bigquery_dataset.audit.dataset_id
    ENTAIL_BIGQUERY_LOCATION    = var.bigquery_location
    ENTAIL_PUSH_AUTH            = "oidc"
    ENTAIL_PUSH_SERVICE_ACCOUNT = google_service_account.push.email
    ENTAIL_PUSH_AUDIENCE        = local.push_audience
    # spans to Cloud Trace (entail.tracing; iam.tf grants roles/cloudtrace.agent)
    ENTAIL_TRACE_EXPORTER = "gcp"
    # datasets (datasets.tf): Parquet objects in the bucket, a table per predicate
    ENTAIL_DATASET_STORE      = "cloud"
    ENTAIL_DATASET_BUCKET     = google_storage_bucket.datasets.name
    ENTAIL_DATASET_BQ_DATASET = google_bigquery_dataset.datasets.dataset_id
  }

  # ... and what both Cloud Run services add
  common_env = merge(local.settings_env, {
    ENTAIL_HOST               = "0.0.0.0"
    ENTAIL_GCP_REGION         = var.region
    ENTAIL_BUS                = "pubsub"
    ENTAIL_LIMIT_WALL_TIME_MS = tostring(var.limit_wall_time_ms)
    ENTAIL_TENANT_MAX_RUNNING = tostring(var.tenant_max_running_count)
  })

  # secret -> environment variable, for the services that need them
  redis_secret_env = {
    ENTAIL_REDIS_URL      = google_secret_manager_secret.secret["redis_url"].secret_id
    ENTAIL_REDIS_READ_URL = google_secret_manager_secret.secret["redis_read_url"].secret_id
  }
}
