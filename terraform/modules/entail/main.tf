# Names and values shared by the files of this module. The services read
# their configuration from ENTAIL_* environment variables
# (shared/entail/settings.py); the ones common to backend and worker are here.

locals {
  labels = merge(var.labels, {
    app         = "entail"
    environment = var.environment
  })

  # Pub/Sub topics (DESIGN.md section 5); the bus adapter publishes to
  # projects/<project>/topics/<name>.
  topic_reasoning_jobs = "reasoning-jobs"
  topic_decisions      = "decisions"

  # The audience of the OIDC tokens Pub/Sub push attaches; the worker checks it
  # (ENTAIL_PUSH_AUDIENCE). A fixed string rather than the worker's URL, which
  # would make the worker's configuration depend on itself.
  push_audience = "entail-reasoning-worker-${var.environment}"

  redis_ca_path = "/secrets/redis-ca/ca.pem"

  common_env = {
    ENTAIL_ENV                = "production"
    ENTAIL_HOST               = "0.0.0.0"
    ENTAIL_GCP_PROJECT        = var.project_id
    ENTAIL_GCP_REGION         = var.region
    ENTAIL_BUS                = "pubsub"
    ENTAIL_AUDIT_STORE        = "bigquery"
    ENTAIL_BIGQUERY_DATASET   = google_bigquery_dataset.audit.dataset_id
    ENTAIL_BIGQUERY_LOCATION  = var.bigquery_location
    ENTAIL_LIMIT_WALL_TIME_MS = tostring(var.limit_wall_time_ms)
  }

  # secret -> environment variable, for the services that need them
  redis_secret_env = {
    ENTAIL_REDIS_URL      = google_secret_manager_secret.redis_url.secret_id
    ENTAIL_REDIS_READ_URL = google_secret_manager_secret.redis_read_url.secret_id
  }
}
