# Cloud Functions (gen2). Terraform creates each function with its
# configuration from a first source zip (docs/deploy.md); Cloud Build deploys
# later sources (`gcloud functions deploy`), so the source is ignored here.
#
# audit_sink has no Eventarc trigger: pubsub.tf gives it a push subscription
# on `decisions` with a dead-letter topic, and it accepts only the push
# account's OIDC tokens (invoker binding in iam.tf).

resource "google_storage_bucket" "function_sources" {
  project                     = var.project_id
  name                        = "${var.project_id}-entail-${var.environment}-functions"
  location                    = var.region
  labels                      = local.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  depends_on = [google_project_service.enabled]
}

locals {
  audit_sink_concurrency = 16
}

resource "google_cloudfunctions2_function" "audit_sink" {
  project     = var.project_id
  name        = "audit-sink"
  location    = var.region
  description = "Stores every final decision from topic decisions in BigQuery, once."
  labels      = local.labels

  build_config {
    runtime     = "python311"
    entry_point = "audit_sink"
    source {
      storage_source {
        bucket = google_storage_bucket.function_sources.name
        object = var.function_source_objects["audit_sink"]
      }
    }
  }

  service_config {
    service_account_email = google_service_account.audit_sink.email
    # Pub/Sub push from the same project counts as internal traffic
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    min_instance_count               = 0
    max_instance_count               = var.audit_sink_max_instances
    available_memory                 = "${var.audit_sink_memory_mib}M"
    max_instance_request_concurrency = local.audit_sink_concurrency # group commit: concurrent messages share one insert
    available_cpu                    = "1"
    timeout_seconds                  = 60

    # functions-framework's gunicorn runs 4 threads per CPU unless THREADS says
    # otherwise: as many threads as concurrent requests, or the extra requests
    # queue in front of the group commit instead of joining its batch
    environment_variables = merge(local.settings_env, { THREADS = tostring(local.audit_sink_concurrency) })

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

resource "google_cloudfunctions2_function" "batch_reason" {
  #checkov:skip=CKV_GCP_124:the backend calls it from Cloud Run over the internet path; only the backend's account may invoke it (iam.tf backend_invokes_batch)
  project     = var.project_id
  name        = "batch-reason"
  location    = var.region
  description = "Runs a ruleset over warehouse tables as SQL (BigQuery query jobs)."
  labels      = local.labels

  build_config {
    runtime     = "python311"
    entry_point = "batch_reason"
    source {
      storage_source {
        bucket = google_storage_bucket.function_sources.name
        object = var.function_source_objects["batch_reason"]
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.batch_reason.email
    ingress_settings               = "ALLOW_ALL" # invoker: the backend only (iam.tf)
    all_traffic_on_latest_revision = true
    min_instance_count             = 0
    max_instance_count             = 10
    available_memory               = "${var.batch_reason_memory_mib}M"
    available_cpu                  = "1"
    timeout_seconds                = var.batch_reason_timeout_seconds

    environment_variables = local.settings_env

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
