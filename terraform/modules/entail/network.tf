# A private network for Redis. Cloud Run reaches it by Direct VPC egress (no
# connector instances to pay for); only private ranges go through the VPC.

resource "google_compute_network" "entail" {
  project                 = var.project_id
  name                    = "entail-${var.environment}"
  auto_create_subnetworks = false

  depends_on = [google_project_service.enabled]
}

resource "google_compute_subnetwork" "run" {
  project                  = var.project_id
  name                     = "entail-${var.environment}-run"
  region                   = var.region
  network                  = google_compute_network.entail.id
  ip_cidr_range            = var.vpc_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}
