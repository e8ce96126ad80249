output "backend_url" {
  description = "Cloud Run URL of the backend (behind API Gateway; smoke tests use its tagged URLs)."
  value       = google_cloud_run_v2_service.service["backend"].uri
}

output "worker_url" {
  description = "Cloud Run URL of the reasoning worker (invokable only by the push account)."
  value       = google_cloud_run_v2_service.service["worker"].uri
}

output "gateway_hostname" {
  description = "Default hostname of the API Gateway; the api record of the Cloudflare zone points at it."
  value       = google_api_gateway_gateway.entail.default_hostname
}

output "api_url" {
  description = "Public URL of the API."
  value       = "https://${var.api_hostname}"
}

output "app_url" {
  description = "Public URL of the web app."
  value       = "https://${var.app_hostname}"
}

output "web_ip_address" {
  description = "IP address of the CDN load balancer; the app record of the Cloudflare zone points at it."
  value       = google_compute_global_address.web.address
}

output "web_bucket" {
  description = "Bucket that serves static/dist (Cloud Build syncs the SPA into it)."
  value       = google_storage_bucket.web.name
}

output "function_source_bucket" {
  description = "Bucket that holds the functions' source zips."
  value       = google_storage_bucket.function_sources.name
}

output "artifact_registry" {
  description = "Docker repository path for the images (REGION-docker.pkg.dev/PROJECT/REPO)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "app_certificate_dns_record" {
  description = "The CNAME that proves control of the app hostname to Certificate Manager: {name, type, data}."
  value = {
    name = google_certificate_manager_dns_authorization.app.dns_resource_record[0].name
    type = google_certificate_manager_dns_authorization.app.dns_resource_record[0].type
    data = google_certificate_manager_dns_authorization.app.dns_resource_record[0].data
  }
}

output "service_accounts" {
  description = "Email of each workload's service account."
  value = {
    backend      = google_service_account.backend.email
    worker       = google_service_account.worker.email
    push         = google_service_account.push.email
    audit_sink   = google_service_account.audit_sink.email
    batch_reason = google_service_account.batch_reason.email
    deployer     = google_service_account.deployer.email
  }
}

output "dataset_bucket" {
  description = "Bucket that holds every dataset version's Parquet objects (ENTAIL_DATASET_BUCKET)."
  value       = google_storage_bucket.datasets.name
}

output "dataset_bigquery_dataset" {
  description = "BigQuery dataset of the per-predicate dataset tables (ENTAIL_DATASET_BQ_DATASET)."
  value       = google_bigquery_dataset.datasets.dataset_id
}
