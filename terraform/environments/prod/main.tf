# The prod environment: the Entail stack in one GCP project behind one
# Cloudflare zone. Apply with the pipeline cloudbuild-terraform.yaml, or by hand
# as docs/deploy.md shows.

locals {
  api_hostname = "api.${var.domain}"
  app_hostname = "app.${var.domain}"
  registry     = "${var.region}-docker.pkg.dev/${var.project_id}/entail-prod"
}

module "entail" {
  source = "../../modules/entail"

  project_id                   = var.project_id
  region                       = var.region
  environment                  = "prod"
  api_hostname                 = local.api_hostname
  app_hostname                 = local.app_hostname
  backend_image                = "${local.registry}/backend:${var.image_tag}"
  worker_image                 = "${local.registry}/reasoning-worker:${var.image_tag}"
  function_source_objects      = var.function_source_objects
  alert_email                  = var.alert_email
  page_notification_channels   = var.page_notification_channels
  ticket_notification_channels = var.ticket_notification_channels
  bigquery_location            = var.bigquery_location
  deletion_protection          = true

  backend_min_instances = 3
  backend_max_instances = 50
  worker_min_instances  = 3
  worker_max_instances  = 100
}

module "cloudflare" {
  source = "../../modules/cloudflare"

  zone_id                    = var.cloudflare_zone_id
  api_hostname               = local.api_hostname
  app_hostname               = local.app_hostname
  gateway_hostname           = module.entail.gateway_hostname
  web_ip_address             = module.entail.web_ip_address
  app_certificate_dns_record = module.entail.app_certificate_dns_record
}
