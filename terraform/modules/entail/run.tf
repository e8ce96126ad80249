# The two Cloud Run services: one resource over local.cloud_run_services, so
# what differs between them is data and the rest is written once. Terraform
# owns their configuration; Cloud Build owns which image runs and the traffic
# split (deploy with --no-traffic, smoke test the tagged revision, then
# shift), so those are ignored here.

locals {
  backend_env = merge(local.common_env, {
    ENTAIL_RATE_LIMIT_PER_S = tostring(var.rate_limit_per_second)
    ENTAIL_CORS_ORIGINS     = jsonencode(concat(["https://${var.app_hostname}"], var.cors_origins))
    ENTAIL_PUBLIC_BASE_URL  = "https://${var.api_hostname}"
    # the trail routes verify signed roots with the KMS key versions' public keys
    # (trail.tf: roles/cloudkms.publicKeyViewer, no signing right)
    ENTAIL_AUDIT_KMS_KEY_VERSION         = data.google_kms_crypto_key_version.audit_roots.name
    ENTAIL_AUDIT_KMS_VERIFY_KEY_VERSIONS = join(",", var.audit_kms_verify_key_versions)
    # a dataset upload is spooled and built on the instance's in-memory file system
    # (datasets.tf): a quarter of the memory, leaving room for the build's copies
    ENTAIL_DATASET_MAX_BYTES = tostring(floor(var.backend_memory_mib / 4) * 1048576)
  })

  # push requests carry Google-signed OIDC tokens (pubsub.tf), which the
  # worker verifies with ENTAIL_PUSH_* of settings_env (main.tf)
  worker_env = merge(local.common_env, {
    # the sweeper (sweeper.tf) ends decisions open past this
    ENTAIL_DECISION_DEADLINE_S = tostring(local.decision_deadline_seconds)
  })

  backend_secret_env = merge(local.redis_secret_env, {
    ENTAIL_API_KEYS_JSON = google_secret_manager_secret.secret["api_keys"].secret_id
    ENTAIL_MASK_SECRET   = google_secret_manager_secret.secret["mask_secret"].secret_id
  })

  worker_secret_env = merge(local.redis_secret_env, {
    ENTAIL_MASK_SECRET = google_secret_manager_secret.secret["mask_secret"].secret_id
  })

  # key -> what makes that service itself. The keys are the resource
  # addresses (google_cloud_run_v2_service.service["backend"]); renaming one
  # needs a moved block, or Terraform replaces the service.
  cloud_run_services = {
    # Ingress is "all" for both. API Gateway reaches the backend over the
    # internet; the backend authenticates every /v1 call itself (API keys,
    # docs/deploy.md "Access"). Pub/Sub push comes from Google's network but
    # not from the VPC; the invoker binding (iam.tf: push account only) and
    # the OIDC check in the worker keep everyone else out of the worker.
    backend = {
      name                    = "backend"
      service_account         = google_service_account.backend.email
      image                   = var.backend_image
      container_port          = 3005
      max_concurrent_requests = var.backend_max_concurrent_requests
      min_instances           = var.backend_min_instances
      max_instances           = var.backend_max_instances
      cpu_count               = var.backend_cpu_count
      memory_mib              = var.backend_memory_mib
      env                     = local.backend_env
      secret_env              = local.backend_secret_env
    }
    worker = {
      name                    = "reasoning-worker"
      service_account         = google_service_account.worker.email
      image                   = var.worker_image
      container_port          = 4002
      max_concurrent_requests = var.worker_max_concurrent_requests
      min_instances           = var.worker_min_instances
      max_instances           = var.worker_max_instances
      cpu_count               = var.worker_cpu_count
      memory_mib              = var.worker_memory_mib
      env                     = local.worker_env
      secret_env              = local.worker_secret_env
    }
  }
}

resource "google_cloud_run_v2_service" "service" {
  for_each = local.cloud_run_services

  project             = var.project_id
  name                = each.value.name
  location            = var.region
  labels              = local.labels
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection

  template {
    service_account                  = each.value.service_account
    max_instance_request_concurrency = each.value.max_concurrent_requests
    timeout                          = "${var.request_timeout_seconds}s"

    scaling {
      min_instance_count = each.value.min_instances
      max_instance_count = each.value.max_instances
    }

    vpc_access {
      egress = "PRIVATE_RANGES_ONLY"
      network_interfaces {
        network    = google_compute_network.entail.id
        subnetwork = google_compute_subnetwork.run.id
      }
    }

    containers {
      image = each.value.image

      ports {
        container_port = each.value.container_port
      }

      resources {
        limits = {
          cpu    = tostring(each.value.cpu_count)
          memory = "${each.value.memory_mib}Mi"
        }
        cpu_idle          = !var.cpu_always_allocated
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = each.value.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = each.value.secret_env
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
        secret = google_secret_manager_secret.secret["redis_ca"].secret_id
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
    google_secret_manager_secret_version.derived,
  ]
}

# Each service used to be a resource of its own; these move the state of an
# existing deployment to the keyed instances, so a plan shows no
# destroy/create (tests/cloud/test_terraform_moved.py keeps them complete).
moved {
  from = google_cloud_run_v2_service.backend
  to   = google_cloud_run_v2_service.service["backend"]
}

moved {
  from = google_cloud_run_v2_service.worker
  to   = google_cloud_run_v2_service.service["worker"]
}

# Anyone may call the backend's URL: the gateway forwards callers' own
# Authorization header, which the backend checks (API keys, tenants, rate
# limits); a gateway-signed token would replace that header.
resource "google_cloud_run_v2_service_iam_member" "backend_public" {
  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.service["backend"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
