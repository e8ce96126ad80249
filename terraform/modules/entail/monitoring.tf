# Alert policies: what an operator must hear about. Each notifies var.alert_email.

resource "google_monitoring_notification_channel" "email" {
  project      = var.project_id
  display_name = "Entail ${var.environment} on-call"
  type         = "email"
  labels = {
    email_address = var.alert_email
  }

  depends_on = [google_project_service.enabled]
}

locals {
  notify = [google_monitoring_notification_channel.email.id]
}

resource "google_monitoring_alert_policy" "backend_5xx" {
  project               = var.project_id
  display_name          = "Entail ${var.environment}: backend 5xx rate"
  combiner              = "OR"
  notification_channels = local.notify

  conditions {
    display_name = "backend 5xx responses per second"
    condition_threshold {
      filter = join(" AND ", [
        "resource.type = \"cloud_run_revision\"",
        "resource.labels.service_name = \"${google_cloud_run_v2_service.service["backend"].name}\"",
        "metric.type = \"run.googleapis.com/request_count\"",
        "metric.labels.response_code_class = \"5xx\"",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_5xx_per_second
      duration        = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "The backend answers 5xx. Check Redis and Pub/Sub health, then the latest revision (docs/deploy.md: roll back)."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "Entail ${var.environment}: dead-lettered messages"
  combiner              = "OR"
  notification_channels = local.notify

  conditions {
    display_name = "messages waiting in a dead-letter subscription"
    condition_threshold {
      filter = join(" AND ", [
        "resource.type = \"pubsub_subscription\"",
        "metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\"",
        "resource.labels.subscription_id = one_of(\"${google_pubsub_subscription.reasoning_jobs_dead_letter.name}\", \"${google_pubsub_subscription.decisions_dead_letter.name}\")",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "60s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    content   = "A job or an audit row failed every delivery attempt. Pull the dead-letter subscription, fix the cause, republish (docs/deploy.md)."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "redis_memory" {
  project               = var.project_id
  display_name          = "Entail ${var.environment}: Redis memory"
  combiner              = "OR"
  notification_channels = local.notify

  conditions {
    display_name = "Redis used/maximum memory"
    condition_threshold {
      filter = join(" AND ", [
        "resource.type = \"redis_instance\"",
        "resource.labels.instance_id = \"${google_redis_instance.state.id}\"",
        "metric.type = \"redis.googleapis.com/stats/memory/usage_ratio\"",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_redis_memory_ratio
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    content   = "Redis is near its maximum memory: volatile keys will be evicted. Raise redis_memory_size_gb or shorten ENTAIL_DECISION_TTL_S / ENTAIL_CACHE_TTL_S."
    mime_type = "text/markdown"
  }
}

resource "google_monitoring_alert_policy" "audit_sink_errors" {
  project               = var.project_id
  display_name          = "Entail ${var.environment}: audit sink errors"
  combiner              = "OR"
  notification_channels = local.notify

  conditions {
    display_name = "audit_sink non-2xx responses"
    condition_threshold {
      # gen2 functions are Cloud Run services of the same name
      filter = join(" AND ", [
        "resource.type = \"cloud_run_revision\"",
        "resource.labels.service_name = \"${google_cloudfunctions2_function.audit_sink.name}\"",
        "metric.type = \"run.googleapis.com/request_count\"",
        "metric.labels.response_code_class != \"2xx\"",
      ])
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "The audit sink fails: decisions are redelivered and, after max_delivery_attempts, dead-lettered. Check BigQuery quotas and the function's logs."
    mime_type = "text/markdown"
  }
}
