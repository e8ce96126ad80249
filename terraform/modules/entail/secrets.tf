# Secrets the services read as environment variables or files. Values that
# Terraform derives (Redis URLs and CA) get their versions here; the API keys
# and the masking key are set by an operator (docs/deploy.md), never in state.

resource "google_secret_manager_secret" "redis_url" {
  project   = var.project_id
  secret_id = "entail-${var.environment}-redis-url"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret = google_secret_manager_secret.redis_url.id
  # rediss: in-transit encryption (SERVER_AUTHENTICATION) with Memorystore's CA
  secret_data = format(
    "rediss://:%s@%s:%d/0?ssl_ca_certs=%s",
    google_redis_instance.state.auth_string,
    google_redis_instance.state.host,
    google_redis_instance.state.port,
    local.redis_ca_path,
  )
}

resource "google_secret_manager_secret" "redis_read_url" {
  project   = var.project_id
  secret_id = "entail-${var.environment}-redis-read-url"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "redis_read_url" {
  secret = google_secret_manager_secret.redis_read_url.id
  # the read endpoint balances over the replicas (stale-tolerant reads only)
  secret_data = format(
    "rediss://:%s@%s:%d/0?ssl_ca_certs=%s",
    google_redis_instance.state.auth_string,
    google_redis_instance.state.read_endpoint,
    google_redis_instance.state.read_endpoint_port,
    local.redis_ca_path,
  )
}

resource "google_secret_manager_secret" "redis_ca" {
  project   = var.project_id
  secret_id = "entail-${var.environment}-redis-ca"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "redis_ca" {
  secret      = google_secret_manager_secret.redis_ca.id
  secret_data = join("\n", [for c in google_redis_instance.state.server_ca_certs : c.cert])
}

# JSON list of {"id", "sha256", "tenant", "scopes"} (ENTAIL_API_KEYS_JSON):
# added with `gcloud secrets versions add` (docs/deploy.md).
resource "google_secret_manager_secret" "api_keys" {
  project   = var.project_id
  secret_id = "entail-${var.environment}-api-keys"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# HMAC key for masked predicates in audit rows (ENTAIL_MASK_SECRET); the same
# value for every service, or replays could not match masked rows.
resource "google_secret_manager_secret" "mask_secret" {
  project   = var.project_id
  secret_id = "entail-${var.environment}-mask-secret"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}
