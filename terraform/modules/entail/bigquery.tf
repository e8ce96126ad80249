# The audit dataset (docs/design.md, Contracts). Tables, their columns and their
# options all come from the one definition in shared/entail/audit/schema.py:
# scripts/gen_bigquery_schemas.py writes schemas/<table>.json (columns) and
# schemas/tables.json (description, day partitioning and its expiration,
# require_partition_filter, clustering), and a test keeps them in step.
# decisions: partitioned by completed_at, expiring after 2557 days (7 years);
# rulesets: never expires, or old decisions could not be replayed.

locals {
  audit_tables = jsondecode(file("${path.module}/schemas/tables.json"))
}

resource "google_bigquery_dataset" "audit" {
  #checkov:skip=CKV_GCP_81:Google-managed encryption at rest; a customer key would put every audit read behind a KMS key whose loss makes 7 years of decisions unreadable (docs/deploy.md, "Encryption")
  project     = var.project_id
  dataset_id  = "entail_audit"
  location    = var.bigquery_location
  description = "Entail audit trail: every decision and every ruleset version, replayable."
  labels      = local.labels

  # tables carry their own partition expiration; the dataset imposes none
  delete_contents_on_destroy = false

  depends_on = [google_project_service.enabled]
}

resource "google_bigquery_table" "audit" {
  #checkov:skip=CKV_GCP_80:Google-managed encryption at rest, as for the dataset (CKV_GCP_81 above)
  for_each = local.audit_tables

  project             = var.project_id
  dataset_id          = google_bigquery_dataset.audit.dataset_id
  table_id            = each.key
  description         = each.value.description
  labels              = local.labels
  schema              = file("${path.module}/schemas/${each.key}.json")
  clustering          = each.value.clustering
  deletion_protection = var.deletion_protection

  dynamic "time_partitioning" {
    for_each = each.value.partition_field == null ? [] : [each.value]
    content {
      type                     = time_partitioning.value.partition_type
      field                    = time_partitioning.value.partition_field
      require_partition_filter = time_partitioning.value.require_partition_filter
      # null: the partitions never expire
      expiration_ms = (time_partitioning.value.partition_expiration_days == null ? null :
      time_partitioning.value.partition_expiration_days * 24 * 3600 * 1000)
    }
  }
}
