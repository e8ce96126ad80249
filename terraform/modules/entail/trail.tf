# The audit trail an outside auditor can trust (docs/audit.md, docs/auditors.md):
# the Cloud KMS key that signs the daily Merkle roots, the bucket the signed
# roots are published to under a locked seven-year retention policy, and the
# determinism canary's metric and alert.

variable "audit_roots_retention_locked" {
  type        = bool
  description = "Lock the seven-year retention policy of the signed-roots bucket (irreversible: no object or the bucket can be deleted before it expires). Only a throwaway experiment sets false."
  default     = true
}

variable "audit_kms_verify_key_versions" {
  type        = list(string)
  description = "Older versions of the audit-roots KMS key (full cryptoKeyVersions names) whose signed roots the backend still verifies after a rotation; the signing version is always included."
  default     = []
}

locals {
  # RETENTION_DAYS of entail.audit.schema (2557 days), in seconds
  audit_roots_retention_seconds = 2557 * 24 * 60 * 60
}

resource "google_kms_key_ring" "audit" {
  project  = var.project_id
  name     = "entail-${var.environment}-audit"
  location = var.region

  depends_on = [google_project_service.enabled]
}

resource "google_kms_crypto_key" "audit_roots" {
  #checkov:skip=CKV_GCP_43:asymmetric signing keys cannot rotate automatically; a new key version is made by hand and old roots keep verifying with the old public key (docs/audit.md)
  name     = "audit-roots"
  key_ring = google_kms_key_ring.audit.id
  purpose  = "ASYMMETRIC_SIGN"
  labels   = local.labels

  version_template {
    algorithm        = "EC_SIGN_P256_SHA256"
    protection_level = "HSM"
  }

  lifecycle {
    prevent_destroy = true
  }
}

resource "google_storage_bucket" "audit_roots" {
  #checkov:skip=CKV_GCP_78:Object Versioning cannot be combined with a retention policy; the locked policy is what keeps every published root unchanged
  project                     = var.project_id
  name                        = "${var.project_id}-entail-${var.environment}-audit-roots"
  location                    = var.region
  labels                      = local.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  retention_policy {
    retention_period = local.audit_roots_retention_seconds
    is_locked        = var.audit_roots_retention_locked
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  depends_on = [google_project_service.enabled]
}

# The determinism canary logs one JSON line per mismatch ({"event": "canary_mismatch", ...});
# this metric counts them and the alert fires on the first.
resource "google_logging_metric" "canary_mismatches" {
  project = var.project_id
  name    = "entail-${var.environment}-canary-mismatches"
  filter  = "jsonPayload.event=\"canary_mismatch\" OR textPayload:\"\\\"event\\\": \\\"canary_mismatch\\\"\""

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Entail canary mismatches"
  }
}

resource "google_monitoring_alert_policy" "canary_mismatch" {
  project               = var.project_id
  display_name          = "Entail ${var.environment}: determinism canary mismatch"
  combiner              = "OR"
  notification_channels = local.notify

  conditions {
    display_name = "an archived decision replays to another result"
    condition_threshold {
      filter          = "resource.type = \"global\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.canary_mismatches.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "The determinism canary replayed an archived decision with today's engine and got another result. The engine's promise (docs/audit.md) is broken or a documented conformance fix shipped: read table canary_mismatches for the decision, both engine versions and the answers that differ."
    mime_type = "text/markdown"
  }
}

# --- the scheduled trail jobs (functions/trail_roots, docs/audit.md) -------------
#
# Cloud Scheduler calls the trail_roots function twice a day with an OIDC token of
# its own identity (trail_cron, which may do nothing but invoke the function):
#
# - {"job": "roots"} at 00:30 UTC: yesterday's roots for every tenant (rows
#   inserted up to five minutes before the run; a later row of yesterday gets a
#   supplementary root the next night), signed with the KMS key, written to
#   audit_roots/audit_leaves, published to the locked bucket, and the held rows of
#   partitions within 30 days of expiry copied to held_decisions (the hold
#   mechanics are this step, not a separate scheduled query: one identity, one
#   log, one failure alert);
# - {"job": "canary"} at 04:00 UTC: the determinism canary.
#
# Every step is idempotent, so Scheduler retries a failed run.

variable "trail_roots_schedule" {
  type        = string
  description = "Cron (UTC) of the daily roots job; after midnight, leaving the grace for late rows."
  default     = "30 0 * * *"
}

variable "canary_schedule" {
  type        = string
  description = "Cron (UTC) of the daily determinism canary."
  default     = "0 4 * * *"
}

variable "canary_sample_count" {
  type        = number
  description = "Archived decisions the canary replays per day (stratified by ruleset version and age)."
  default     = 100

  validation {
    condition     = var.canary_sample_count >= 1 && var.canary_sample_count <= 100000
    error_message = "canary_sample_count is between 1 and 100000 (ENTAIL_CANARY_SAMPLE_SIZE)."
  }
}

locals {
  trail_grace_seconds = 300
  # the trail function writes these tables and only these (table-level dataEditor)
  trail_written_tables = toset(["audit_roots", "audit_leaves", "held_decisions", "canary_mismatches"])
}

resource "google_service_account" "trail" {
  project      = var.project_id
  account_id   = "entail-${var.environment}-trail"
  display_name = "Entail trail_roots function (signed roots, canary, holds)"
}

resource "google_service_account" "trail_cron" {
  project      = var.project_id
  account_id   = "entail-${var.environment}-trail-cron"
  display_name = "Entail trail scheduler (OIDC tokens to trail_roots)"
}

# the asymmetric key's first version: the one the function signs with
data "google_kms_crypto_key_version" "audit_roots" {
  crypto_key = google_kms_crypto_key.audit_roots.id
}

resource "google_cloudfunctions2_function" "trail_roots" {
  #checkov:skip=CKV_GCP_124:Cloud Scheduler calls it over the internet path with an OIDC token; only trail_cron may invoke it (trail_cron_invokes)
  project     = var.project_id
  name        = "trail-roots"
  location    = var.region
  description = "Builds, signs and publishes the audit trail's daily roots; runs the determinism canary."
  labels      = local.labels

  build_config {
    runtime     = "python311"
    entry_point = "trail_roots"
    source {
      storage_source {
        bucket = google_storage_bucket.function_sources.name
        object = var.function_source_objects["trail_roots"]
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.trail.email
    ingress_settings                 = "ALLOW_ALL" # invoker: trail_cron only
    all_traffic_on_latest_revision   = true
    min_instance_count               = 0
    max_instance_count               = 1 # one run at a time: roots are built once
    max_instance_request_concurrency = 1
    available_memory                 = "2048M"
    available_cpu                    = "1"
    timeout_seconds                  = 1800

    environment_variables = merge(local.settings_env, {
      ENTAIL_AUDIT_KMS_KEY_VERSION = data.google_kms_crypto_key_version.audit_roots.name
      ENTAIL_AUDIT_ROOTS_BUCKET    = google_storage_bucket.audit_roots.name
      ENTAIL_CANARY_SAMPLE_SIZE    = tostring(var.canary_sample_count)
    })

    secret_environment_variables {
      key        = "ENTAIL_MASK_SECRET"
      project_id = var.project_id
      secret     = google_secret_manager_secret.secret["mask_secret"].secret_id
      version    = "latest"
    }
  }

  lifecycle {
    ignore_changes = [build_config[0].source, build_config[0].docker_repository]
  }

  depends_on = [google_secret_manager_secret_iam_member.reader]
}

resource "google_cloud_run_service_iam_member" "trail_cron_invokes" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.trail_roots.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.trail_cron.member
}

resource "google_cloud_scheduler_job" "trail_roots" {
  project          = var.project_id
  region           = var.region
  name             = "entail-${var.environment}-trail-roots"
  description      = "Builds, signs and publishes yesterday's audit roots (functions/trail_roots)"
  schedule         = var.trail_roots_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "1800s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "300s"
    max_backoff_duration = "1800s"
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.trail_roots.service_config[0].uri
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode({ job = "roots", grace_s = local.trail_grace_seconds }))

    oidc_token {
      service_account_email = google_service_account.trail_cron.email
      audience              = google_cloudfunctions2_function.trail_roots.service_config[0].uri
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_cloud_scheduler_job" "canary" {
  project          = var.project_id
  region           = var.region
  name             = "entail-${var.environment}-canary"
  description      = "Replays a stratified sample of archived decisions (functions/trail_roots)"
  schedule         = var.canary_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "1800s"

  retry_config {
    retry_count = 1
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.trail_roots.service_config[0].uri
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode({ job = "canary" }))

    oidc_token {
      service_account_email = google_service_account.trail_cron.email
      audience              = google_cloudfunctions2_function.trail_roots.service_config[0].uri
    }
  }

  depends_on = [google_project_service.enabled]
}

# --- what the trail function may do, each on the narrowest resource -------------

resource "google_kms_crypto_key_iam_member" "trail_signs_roots" {
  crypto_key_id = google_kms_crypto_key.audit_roots.id
  role          = "roles/cloudkms.signerVerifier" # sign, and read the public key
  member        = google_service_account.trail.member
}

# the backend verifies roots (GET /v1/audit/verify): it reads the key versions'
# public keys, and may not sign
resource "google_kms_crypto_key_iam_member" "backend_reads_root_keys" {
  crypto_key_id = google_kms_crypto_key.audit_roots.id
  role          = "roles/cloudkms.publicKeyViewer"
  member        = google_service_account.backend.member
}

# create objects; read them to compare a re-published root (never overwrite or delete)
resource "google_storage_bucket_iam_member" "trail_publishes_roots" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])

  bucket = google_storage_bucket.audit_roots.name
  role   = each.value
  member = google_service_account.trail.member
}

# reads decisions, rulesets and legal_holds ...
resource "google_bigquery_dataset_iam_member" "trail_reads_audit" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.audit.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.trail.member
}

# ... and writes only the trail's own tables
resource "google_bigquery_table_iam_member" "trail_writes_trail_tables" {
  for_each = local.trail_written_tables

  project    = var.project_id
  dataset_id = google_bigquery_dataset.audit.dataset_id
  table_id   = google_bigquery_table.audit[each.key].table_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.trail.member
}

resource "google_project_iam_member" "trail_runs_queries" {
  for_each = toset(["roles/bigquery.jobUser", "roles/cloudtrace.agent"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.trail.member
}

# A night without roots is a gap in the trail: a failed roots run (after Scheduler's
# retries) reaches the on-call.
resource "google_logging_metric" "trail_job_failures" {
  project = var.project_id
  name    = "entail-${var.environment}-trail-job-failures"
  filter  = "resource.type=\"cloud_scheduler_job\" AND resource.labels.job_id=(\"${google_cloud_scheduler_job.trail_roots.name}\" OR \"${google_cloud_scheduler_job.canary.name}\") AND severity>=ERROR"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "Entail trail job failures"
  }
}

resource "google_monitoring_alert_policy" "trail_job_failed" {
  project               = var.project_id
  display_name          = "Entail ${var.environment}: a trail job failed"
  combiner              = "OR"
  notification_channels = local.notify

  conditions {
    display_name = "the roots or canary job failed"
    condition_threshold {
      filter          = "resource.type = \"cloud_scheduler_job\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.trail_job_failures.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "Cloud Scheduler's call of functions/trail_roots failed. For the roots job, yesterday has no signed root yet: read the function's log, fix, and re-run it (POST {\"job\": \"roots\"}; every step is idempotent). docs/audit.md."
    mime_type = "text/markdown"
  }
}
