# The audit trail an outside auditor can trust (docs/audit.md, docs/auditors.md):
# the Cloud KMS key that signs the daily Merkle roots, the bucket the signed
# roots are published to under a locked seven-year retention policy, and the
# determinism canary's metric and alert.

variable "audit_roots_retention_locked" {
  type        = bool
  description = "Lock the seven-year retention policy of the signed-roots bucket (irreversible: no object or the bucket can be deleted before it expires). Only a throwaway experiment sets false."
  default     = true
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
