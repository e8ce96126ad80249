output "api_url" {
  description = "Public URL of the API."
  value       = module.cloudflare.api_url
}

output "app_url" {
  description = "Public URL of the web app."
  value       = module.cloudflare.app_url
}

output "backend_url" {
  description = "Cloud Run URL of the backend (smoke tests)."
  value       = module.entail.backend_url
}

output "worker_url" {
  description = "Cloud Run URL of the reasoning worker."
  value       = module.entail.worker_url
}

output "web_bucket" {
  description = "Bucket that serves the SPA."
  value       = module.entail.web_bucket
}

output "function_source_bucket" {
  description = "Bucket of the functions' source zips."
  value       = module.entail.function_source_bucket
}

output "artifact_registry" {
  description = "Docker repository of the images."
  value       = module.entail.artifact_registry
}

output "service_accounts" {
  description = "Email of each workload's service account."
  value       = module.entail.service_accounts
}

output "dataset_bucket" {
  description = "Bucket of the datasets' Parquet objects (docs/datasets.md, Storage)."
  value       = module.entail.dataset_bucket
}

output "dataset_bigquery_dataset" {
  description = "BigQuery dataset of the per-predicate dataset tables."
  value       = module.entail.dataset_bigquery_dataset
}
