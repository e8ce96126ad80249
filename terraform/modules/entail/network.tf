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

# Nothing in this network accepts connections: Cloud Run only sends (Direct
# VPC egress, replies are allowed statefully) and Redis lives in Google's
# peered network. An explicit, logged deny instead of the implied one.
resource "google_compute_firewall" "deny_ingress" {
  project   = var.project_id
  name      = "entail-${var.environment}-deny-ingress"
  network   = google_compute_network.entail.id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
