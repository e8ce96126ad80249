# Datasets (docs/datasets.md, "Storage"): the versioned reference data beside the
# rulesets. Each version's Parquet files live in a bucket of their own
# (gs://BUCKET/datasets/<tenant>/<name>/<version>/<predicate>.parquet) and its rows
# in a BigQuery table per predicate (a `version` column) for the SQL batch path;
# metadata, tags and history live in Redis. The backend writes (uploads), the
# worker reads (materialisation), batch_reason reads the tables (its project-level
# dataViewer, iam.tf).

locals {
  # a dataset object deleted by hand stays recoverable this long as a noncurrent
  # version (Entail itself never deletes or overwrites one)
  dataset_noncurrent_days = 30
}

resource "google_storage_bucket" "datasets" {
  project                     = var.project_id
  name                        = "${var.project_id}-entail-${var.environment}-datasets"
  location                    = var.region
  labels                      = local.labels
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  # a version's objects are created once (ifGenerationMatch=0) and never
  # replaced; versioning keeps a copy of anything deleted by hand
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = local.dataset_noncurrent_days
      with_state                 = "ARCHIVED"
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

resource "google_bigquery_dataset" "datasets" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption at rest, as for the audit dataset (bigquery.tf)
  project     = var.project_id
  dataset_id  = "entail_datasets"
  location    = var.bigquery_location
  description = "Entail datasets: a table per dataset predicate (ds_<tenant>_<name>_<predicate>_<arity>_<key>), one row per fact and version."
  labels      = local.labels

  delete_contents_on_destroy = false

  depends_on = [google_project_service.enabled]
}

# --- who may do what, each on the one resource -----------------------------------

# backend: creates objects (an upload) and reads them (read-before-write, pages,
# diffs); without storage.objects.delete it cannot overwrite a version either
resource "google_storage_bucket_iam_member" "backend_writes_datasets" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])

  bucket = google_storage_bucket.datasets.name
  role   = each.value
  member = google_service_account.backend.member
}

# worker: reads a version's Parquet objects to materialise it
resource "google_storage_bucket_iam_member" "worker_reads_datasets" {
  bucket = google_storage_bucket.datasets.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.worker.member
}

# backend: creates the per-predicate tables and loads each version's rows (its
# load jobs run under the project-level jobUser of iam.tf)
resource "google_bigquery_dataset_iam_member" "backend_loads_dataset_tables" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.datasets.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.backend.member
}
