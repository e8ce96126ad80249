# Secrets the services read as environment variables or files. Values that
# Terraform derives (Redis URLs and CA) get their versions here; the API keys
# and the masking key are set by an operator (docs/deploy.md), never in state.

locals {
  # Secret ids are entail-<environment>-<key with dashes>.
  secrets = toset([
    "redis_url",      # ENTAIL_REDIS_URL: rediss URL of the primary
    "redis_read_url", # ENTAIL_REDIS_READ_URL: rediss URL of the read endpoint
    "redis_ca",       # Memorystore's server CA, mounted as a file (local.redis_ca_path)
    # JSON list of {"id", "sha256", "tenant", "scopes"} (ENTAIL_API_KEYS_JSON):
    # added with `gcloud secrets versions add` (docs/deploy.md).
    "api_keys",
    # HMAC key for masked predicates in audit rows (ENTAIL_MASK_SECRET); the
    # same value for every service, or replays could not match masked rows.
    "mask_secret",
  ])

  # the versions Terraform writes: rediss: is in-transit encryption
  # (SERVER_AUTHENTICATION) with Memorystore's CA; the read endpoint balances
  # over the replicas (stale-tolerant reads only). Looked up by key rather than
  # iterated, because for_each refuses values derived from the (sensitive)
  # AUTH string (so the keys are spelled out again below).
  derived_secret_data = {
    redis_url = format(
      "rediss://:%s@%s:%d/0?ssl_ca_certs=%s",
      google_redis_instance.state.auth_string,
      google_redis_instance.state.host,
      google_redis_instance.state.port,
      local.redis_ca_path,
    )
    redis_read_url = format(
      "rediss://:%s@%s:%d/0?ssl_ca_certs=%s",
      google_redis_instance.state.auth_string,
      google_redis_instance.state.read_endpoint,
      google_redis_instance.state.read_endpoint_port,
      local.redis_ca_path,
    )
    redis_ca = join("\n", [for c in google_redis_instance.state.server_ca_certs : c.cert])
  }
}

resource "google_secret_manager_secret" "secret" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = "entail-${var.environment}-${replace(each.key, "_", "-")}"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "derived" {
  for_each = toset(["redis_url", "redis_read_url", "redis_ca"])

  secret      = google_secret_manager_secret.secret[each.key].id
  secret_data = local.derived_secret_data[each.key]
}

# Each secret and version used to be a resource of its own; these move the
# state of an existing deployment to the keyed instances (no destroy/create,
# which would lose the operator-set versions).
moved {
  from = google_secret_manager_secret.redis_url
  to   = google_secret_manager_secret.secret["redis_url"]
}

moved {
  from = google_secret_manager_secret.redis_read_url
  to   = google_secret_manager_secret.secret["redis_read_url"]
}

moved {
  from = google_secret_manager_secret.redis_ca
  to   = google_secret_manager_secret.secret["redis_ca"]
}

moved {
  from = google_secret_manager_secret.api_keys
  to   = google_secret_manager_secret.secret["api_keys"]
}

moved {
  from = google_secret_manager_secret.mask_secret
  to   = google_secret_manager_secret.secret["mask_secret"]
}

moved {
  from = google_secret_manager_secret_version.redis_url
  to   = google_secret_manager_secret_version.derived["redis_url"]
}

moved {
  from = google_secret_manager_secret_version.redis_read_url
  to   = google_secret_manager_secret_version.derived["redis_read_url"]
}

moved {
  from = google_secret_manager_secret_version.redis_ca
  to   = google_secret_manager_secret_version.derived["redis_ca"]
}
