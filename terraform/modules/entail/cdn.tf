# The web app (static/dist): a bucket behind a global HTTPS load balancer with
# Cloud CDN, proxied by Cloudflare at app.<domain>. The certificate is issued
# by Certificate Manager through a DNS authorization (a CNAME the cloudflare
# module creates): HTTP validation cannot work while Cloudflare proxies the
# name, and Cloudflare's "Full (strict)" mode needs a valid origin certificate.

resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62:this is the access-log bucket: logging it into itself would loop
  project                     = var.project_id
  name                        = "${var.project_id}-entail-${var.environment}-logs"
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

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket" "web" {
  #checkov:skip=CKV_GCP_114:the built SPA is public by nature (served to every browser through the CDN); it holds no data
  project                     = var.project_id
  name                        = "${var.project_id}-entail-${var.environment}-web"
  location                    = "EU"
  labels                      = local.labels
  uniform_bucket_level_access = true
  force_destroy               = true # build output only: Cloud Build uploads it again

  website {
    main_page_suffix = "index.html"
    # the SPA routes on the client: unknown paths get the app
    not_found_page = "index.html"
  }

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 5
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

# The SPA is public by nature: anyone may read the built files.
resource "google_storage_bucket_iam_member" "web_public" {
  #checkov:skip=CKV_GCP_28:the built SPA is public by nature; only static/dist is uploaded here (cloudbuild.yaml sync-web)
  bucket = google_storage_bucket.web.name
  role   = "roles/storage.objectViewer"
  member = "allUsers"
}

resource "google_compute_backend_bucket" "web" {
  project     = var.project_id
  name        = "entail-${var.environment}-web"
  bucket_name = google_storage_bucket.web.name
  enable_cdn  = true

  cdn_policy {
    # hashed asset names never change; index.html is sent with no-cache by the
    # upload step (cloudbuild.yaml), which USE_ORIGIN_HEADERS respects
    cache_mode        = "USE_ORIGIN_HEADERS"
    serve_while_stale = 86400
  }
}

resource "google_compute_global_address" "web" {
  project = var.project_id
  name    = "entail-${var.environment}-web"
}

resource "google_compute_url_map" "web" {
  project         = var.project_id
  name            = "entail-${var.environment}-web"
  default_service = google_compute_backend_bucket.web.id
}

resource "google_certificate_manager_dns_authorization" "app" {
  project = var.project_id
  name    = "entail-${var.environment}-app"
  domain  = var.app_hostname

  depends_on = [google_project_service.enabled]
}

resource "google_certificate_manager_certificate" "app" {
  project = var.project_id
  name    = "entail-${var.environment}-app"

  managed {
    domains            = [var.app_hostname]
    dns_authorizations = [google_certificate_manager_dns_authorization.app.id]
  }
}

resource "google_certificate_manager_certificate_map" "web" {
  project = var.project_id
  name    = "entail-${var.environment}-web"
}

resource "google_certificate_manager_certificate_map_entry" "app" {
  project      = var.project_id
  name         = "entail-${var.environment}-app"
  map          = google_certificate_manager_certificate_map.web.name
  hostname     = var.app_hostname
  certificates = [google_certificate_manager_certificate.app.id]
}

resource "google_compute_ssl_policy" "modern" {
  project         = var.project_id
  name            = "entail-${var.environment}-modern"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_target_https_proxy" "web" {
  project         = var.project_id
  name            = "entail-${var.environment}-web"
  url_map         = google_compute_url_map.web.id
  certificate_map = "//certificatemanager.googleapis.com/${google_certificate_manager_certificate_map.web.id}"
  ssl_policy      = google_compute_ssl_policy.modern.id
}

resource "google_compute_global_forwarding_rule" "web_https" {
  project               = var.project_id
  name                  = "entail-${var.environment}-web-https"
  target                = google_compute_target_https_proxy.web.id
  ip_address            = google_compute_global_address.web.address
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
