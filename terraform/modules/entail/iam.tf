# One service account per workload, each granted only what it calls, on the
# narrowest resource that IAM allows (a topic, a secret, the dataset).

resource "google_service_account" "backend" {
  project      = var.project_id
  account_id   = "entail-${var.environment}-backend"
  display_name = "Entail backend (Cloud Run)"
}

resource "google_service_account" "worker" {
  project      = var.project_id
  account_id   = "entail-${var.environment}-worker"
  display_name = "Entail reasoning worker (Cloud Run)"
}

# The identity Pub/Sub signs push requests as; the only invoker of the worker.
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "entail-${var.environment}-push"
  display_name = "Entail Pub/Sub push (OIDC tokens to the worker and the audit sink)"
}

resource "google_service_account" "audit_sink" {
  project      = var.project_id
  account_id   = "entail-${var.environment}-audit-sink"
  display_name = "Entail audit_sink function"
}

resource "google_service_account" "batch_reason" {
  project      = var.project_id
  account_id   = "entail-${var.environment}-batch"
  display_name = "Entail batch_reason function"
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# --- backend: publishes jobs, reads secrets, queries the audit dataset --------

resource "google_pubsub_topic_iam_member" "backend_publishes_jobs" {
  project = var.project_id
  topic   = google_pubsub_topic.reasoning_jobs.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.backend.member
}

resource "google_bigquery_dataset_iam_member" "backend_reads_audit" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.audit.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = google_service_account.backend.member
}

# ... and writes one table: the hashes of the decision reports it generates
# (entail/report.py; the decisions rows themselves stay the audit sink's alone)
resource "google_bigquery_table_iam_member" "backend_writes_decision_reports" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.audit.dataset_id
  table_id   = google_bigquery_table.audit["decision_reports"].table_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.backend.member
}

# audit search and replay run query jobs; jobs are project-level
resource "google_project_iam_member" "backend_runs_queries" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.backend.member
}

# the backend starts batch runs through batch_reason
resource "google_cloud_run_service_iam_member" "backend_invokes_batch" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.batch_reason.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.backend.member
}

# --- worker: publishes decisions ----------------------------------------------

resource "google_pubsub_topic_iam_member" "worker_publishes_decisions" {
  project = var.project_id
  topic   = google_pubsub_topic.decisions.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.worker.member
}

# --- secrets: each read by the services that use it -------------------------

locals {
  secret_readers = {
    "redis-url-backend"      = [google_secret_manager_secret.secret["redis_url"].secret_id, google_service_account.backend.member]
    "redis-url-worker"       = [google_secret_manager_secret.secret["redis_url"].secret_id, google_service_account.worker.member]
    "redis-read-url-backend" = [google_secret_manager_secret.secret["redis_read_url"].secret_id, google_service_account.backend.member]
    "redis-read-url-worker"  = [google_secret_manager_secret.secret["redis_read_url"].secret_id, google_service_account.worker.member]
    "redis-ca-backend"       = [google_secret_manager_secret.secret["redis_ca"].secret_id, google_service_account.backend.member]
    "redis-ca-worker"        = [google_secret_manager_secret.secret["redis_ca"].secret_id, google_service_account.worker.member]
    "api-keys-backend"       = [google_secret_manager_secret.secret["api_keys"].secret_id, google_service_account.backend.member]
    "mask-backend"           = [google_secret_manager_secret.secret["mask_secret"].secret_id, google_service_account.backend.member]
    "mask-worker"            = [google_secret_manager_secret.secret["mask_secret"].secret_id, google_service_account.worker.member]
    "mask-audit-sink"        = [google_secret_manager_secret.secret["mask_secret"].secret_id, google_service_account.audit_sink.member]
    "mask-batch-reason"      = [google_secret_manager_secret.secret["mask_secret"].secret_id, google_service_account.batch_reason.member]
    "mask-trail"             = [google_secret_manager_secret.secret["mask_secret"].secret_id, google_service_account.trail.member]
  }
}

resource "google_secret_manager_secret_iam_member" "reader" {
  for_each = local.secret_readers

  project   = var.project_id
  secret_id = each.value[0]
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value[1]
}

# --- audit_sink: writes audit rows --------------------------------------------

resource "google_bigquery_dataset_iam_member" "audit_sink_writes" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.audit.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = google_service_account.audit_sink.member
}

# --- batch_reason: reads the warehouse and runs query jobs ------------------

resource "google_project_iam_member" "batch_runs_queries" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = google_service_account.batch_reason.member
}

resource "google_project_iam_member" "batch_reads_tables" {
  project = var.project_id
  role    = "roles/bigquery.dataViewer"
  member  = google_service_account.batch_reason.member
}

# --- tracing: every workload writes its spans to Cloud Trace --------------------

# The OpenTelemetry exporter of each process (docs/operations.md) writes spans
# with the workload's own identity; the role is project-level only.
resource "google_project_iam_member" "writes_traces" {
  for_each = {
    backend      = google_service_account.backend.member
    worker       = google_service_account.worker.member
    audit_sink   = google_service_account.audit_sink.member
    batch_reason = google_service_account.batch_reason.member
  }

  project = var.project_id
  role    = "roles/cloudtrace.agent"
  member  = each.value
}

# --- Pub/Sub push and dead-lettering ------------------------------------------

# the worker is not public: the push identity is its only invoker
resource "google_cloud_run_v2_service_iam_member" "push_invokes_worker" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.service["worker"].name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# the push subscription of audit_sink pushes as the same identity
resource "google_cloud_run_service_iam_member" "push_invokes_audit_sink" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.audit_sink.service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# Pub/Sub mints the push OIDC tokens as the push account
resource "google_service_account_iam_member" "pubsub_signs_as_push" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# Dead-lettering: the Pub/Sub service agent must publish to each dead-letter
# topic and subscribe to each source subscription, or it cannot forward.
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  for_each = {
    reasoning_jobs = google_pubsub_topic.reasoning_jobs_dead_letter.name
    decisions      = google_pubsub_topic.decisions_dead_letter.name
  }

  project = var.project_id
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_forwards_dead_letters" {
  for_each = {
    worker     = google_pubsub_subscription.worker_push.name
    audit_sink = google_pubsub_subscription.audit_sink_push.name
  }

  project      = var.project_id
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# --- the deploy pipeline (cloudbuild.yaml) ----------------------------------

# Cloud Build runs cloudbuild.yaml as this account: it pushes images, deploys
# revisions and functions, uploads the SPA, and impersonates the push account
# only to smoke-test the worker. Infrastructure changes go through the separate
# Terraform pipeline and its own account (docs/deploy.md).
resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "entail-${var.environment}-deployer"
  display_name = "Entail deploy pipeline (Cloud Build)"
}

resource "google_artifact_registry_repository_iam_member" "deployer_pushes" {
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.deployer.member
}

resource "google_project_iam_member" "deployer" {
  for_each = toset([
    "roles/run.developer",            # deploy revisions, move traffic
    "roles/cloudfunctions.developer", # deploy function sources
    "roles/logging.logWriter",        # the build's own logs
  ])

  project = var.project_id
  role    = each.value
  member  = google_service_account.deployer.member
}

# deploying a revision that runs as a service account needs actAs on it
resource "google_service_account_iam_member" "deployer_acts_as" {
  for_each = {
    backend      = google_service_account.backend.name
    worker       = google_service_account.worker.name
    audit_sink   = google_service_account.audit_sink.name
    batch_reason = google_service_account.batch_reason.name
    trail        = google_service_account.trail.name
  }

  service_account_id = each.value
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.deployer.member
}

resource "google_service_account_iam_member" "deployer_smoke_tests_worker" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.deployer.member
}

resource "google_storage_bucket_iam_member" "deployer_uploads" {
  for_each = {
    web       = google_storage_bucket.web.name
    functions = google_storage_bucket.function_sources.name
  }

  bucket = each.value
  role   = "roles/storage.objectAdmin"
  member = google_service_account.deployer.member
}
