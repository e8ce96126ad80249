variable "project_id" {
  type        = string
  description = "GCP project of the staging environment."
}

variable "region" {
  type        = string
  description = "Region of the regional resources (Cloud Run, Redis, Pub/Sub push, functions)."
  default     = "europe-west1"
}

variable "domain" {
  type        = string
  description = "The Cloudflare zone's domain; the API is staging-api.<domain>, the web app staging-app.<domain>."
}

variable "cloudflare_zone_id" {
  type        = string
  description = "Cloudflare zone id of the domain."
}

variable "image_tag" {
  type        = string
  description = "Tag of the backend and reasoning-worker images for the first deploy (Cloud Build pushes them: docs/deploy.md)."
}

variable "function_source_objects" {
  type        = map(string)
  description = "Object names of the first function source zips in the function source bucket (keys: audit_sink, batch_reason, trail_roots)."
}

variable "alert_email" {
  type        = string
  description = "Email address that receives the alerts of the staging environment."
}

variable "page_notification_channels" {
  type        = list(string)
  description = "Monitoring notification channel ids that fast SLO burns of staging page (PagerDuty, Slack), besides alert_email."
  default     = []
}

variable "ticket_notification_channels" {
  type        = list(string)
  description = "Monitoring notification channel ids that slow SLO burns of staging notify, besides alert_email."
  default     = []
}

variable "bigquery_location" {
  type        = string
  description = "Location of the audit dataset (US, EU or a region)."
  default     = "EU"
}
