# State, result cache, registry and rate limits (docs/design.md, Contracts).
# STANDARD_HA: a primary and a standby in another zone with automatic
# failover; READ_REPLICAS_ENABLED adds the read replicas behind the read
# endpoint, which serves the reads that may be stale (the result cache).

resource "google_redis_instance" "state" {
  project        = var.project_id
  name           = "entail-${var.environment}"
  region         = var.region
  tier           = "STANDARD_HA"
  memory_size_gb = var.redis_memory_size_gb
  redis_version  = var.redis_version
  labels         = local.labels

  read_replicas_mode = "READ_REPLICAS_ENABLED"
  replica_count      = var.redis_read_replica_count

  authorized_network      = google_compute_network.entail.id
  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  redis_configs = {
    # decision state and claims carry TTLs; under memory pressure evict
    # those first, never keys without one (registry, tags)
    maxmemory-policy = "volatile-lru"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 3
        minutes = 0
      }
    }
  }

  depends_on = [google_project_service.enabled]
}
