# The two Cloud Run services. Terraform owns their configuration; Cloud Build
# owns which image runs and the traffic split (deploy with --no-traffic, smoke
# test the tagged revision, then shift), so those are ignored here.

locals {
  backend_env = merge(local.common_env, {
    ENTAIL_RATE_LIMIT_PER_S = tostring(var.rate_limit_per_second)
    ENTAIL_CORS_ORIGINS     = jsonencode(concat(["https://${var.app_hostname}"], var.cors_origins))
    ENTAIL_PUBLIC_BASE_URL  = "https://${var.api_hostname}"
  })

  # push requests carry Google-signed OIDC tokens (pubsub.tf), which the
  # worker verifies with ENTAIL_PUSH_* of settings_env (main.tf)
  worker_env = merge(local.common_env, {
    # the sweeper (sweeper.tf) ends decisions open past this
    ENTAIL_DECISION_DEADLINE_S = tostring(local.decision_deadline_seconds)
  })

  backend_secret_env = merge(local.redis_secret_env, {
    ENTAIL_API_KEYS_JSON = google_secret_manager_secret.api_keys.secret_id
    ENTAIL_MASK_SECRET   = google_secret_manager_secret.mask_secret.secret_id
  })

  worker_secret_env = merge(local.redis_secret_env, {
    ENTAIL_MASK_SECRET = google_secret_manager_secret.mask_secret.secret_id
  })
}

resource "google_cloud_run_v2_service" "backend" {
  project  = var.project_id
  name     = "backend"
  location = var.region
  labels   = local.labels
  # API Gateway reaches the backend over the internet; the backend
  # authenticates every /v1 call itself (API keys, docs/deploy.md "Access").
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.backend.email
    max_instance_request_concurrency = var.backend_max_concurrent_requests
    timeout                          = "${var.request_timeout_seconds}s"

    scaling {
      min_instance_count = var.backend_min_instances
      max_instance_count = var.backend_max_instances
    }

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = google_compute_network.entail.id
        subnetwork = google_compute_subnetwork.run.id
      }
    }

    containers {
      image = var.backend_image

      ports {
        container_port = 3005
      }

      resources {
        limits = {
          cpu    = tostring(var.backend_cpu_count)
          memory = "${var.backend_memory_mib}Mi"
        }
        cpu_idle          = !var.cpu_always_allocated
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.backend_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.backend_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      volume_mounts {
        name       = "redis-ca"
        mount_path = dirname(local.redis_ca_path)
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 15
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 15
      }
    }

    volumes {
      name = "redis-ca"
      secret {
        secret = google_secret_manager_secret.redis_ca.secret_id
        items {
          path    = basename(local.redis_ca_path)
          version = "latest"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      template[0].revision,
      template[0].labels,
      traffic,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_secret_manager_secret_iam_member.reader,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_read_url,
    google_secret_manager_secret_version.redis_ca,
  ]
}

# Anyone may call the backend's URL: the gateway forwards callers' own
# Authorization header, which the backend checks (API keys, tenants, rate
# limits); a gateway-signed token would replace that header.
resource "google_cloud_run_v2_service_iam_member" "backend_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.backend.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service" "worker" {
  project  = var.project_id
  name     = "reasoning-worker"
  location = var.region
  labels   = local.labels
  # Pub/Sub push comes from Google's network but not from the VPC, so ingress
  # stays "all"; the invoker binding (iam.tf: push account only) and the OIDC
  # check in the worker keep everyone else out.
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.worker.email
    max_instance_request_concurrency = var.worker_max_concurrent_requests
    timeout                          = "${var.request_timeout_seconds}s"

    scaling {
      min_instance_count = var.worker_min_instances
      max_instance_count = var.worker_max_instances
    }

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = google_compute_network.entail.id
        subnetwork = google_compute_subnetwork.run.id
      }
    }

    containers {
      image = var.worker_image

      ports {
        container_port = 4002
      }

      resources {
        limits = {
          cpu    = tostring(var.worker_cpu_count)
          memory = "${var.worker_memory_mib}Mi"
        }
        cpu_idle          = !var.cpu_always_allocated
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.worker_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.worker_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      volume_mounts {
        name       = "redis-ca"
        mount_path = dirname(local.redis_ca_path)
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 15
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 15
      }
    }

    volumes {
      name = "redis-ca"
      secret {
        secret = google_secret_manager_secret.redis_ca.secret_id
        items {
          path    = basename(local.redis_ca_path)
          version = "latest"
        }
      }
    }
  }

  lifecycle {
    ignore_changes = [
      template[0].containers[0].image,
      template[0].revision,
      template[0].labels,
      traffic,
      client,
      client_version,
    ]
  }

  depends_on = [
    google_secret_manager_secret_iam_member.reader,
    google_secret_manager_secret_version.redis_url,
    google_secret_manager_secret_version.redis_read_url,
    google_secret_manager_secret_version.redis_ca,
  ]
}
