# Service-level objectives, their multi-window burn-rate alerts and the latency
# dashboard. The operator's path from an alert to a trace to the decision is
# docs/operations.md.
#
# SLO               SLI (28 rolling days)                                  source
# availability      backend requests answered without a 5xx                Cloud Run request_count
# decision_latency  decisions completed within N ms of submission          log metric decision_ms
# audit_lag         audit rows stored within N ms of completion            log metric audit_lag_ms
# delivery          Pub/Sub messages acknowledged rather than dead-lettered  Pub/Sub push/dead-letter counts
#
# The two log metrics read fields of the audit sink's structured log line for
# each stored row (jsonPayload.decision_ms = completed_at - submitted_at,
# jsonPayload.audit_lag_ms = insert time - completed_at): the sink sees every
# decision once, with both timestamps, right after the insert.

locals {
  slo_period_days = 28

  # Alerting on SLOs, multi-window and multi-burn-rate (Google SRE workbook,
  # ch. 5): a policy fires when the budget burns faster than burn_rate over
  # both windows; the long one makes it significant (fast: 2% of the 28-day
  # budget in 1 h; slow: 5% in 6 h), the short one makes it stop soon after
  # the burn stops.
  burn_rate_alerts = {
    fast = { long_window = "3600s", short_window = "300s", burn_rate = 14.4, severity = "CRITICAL" }
    slow = { long_window = "21600s", short_window = "1800s", burn_rate = 6, severity = "WARNING" }
  }

  # key -> the SLO's full name (select_slo_burn_rate takes it)
  slos = {
    availability     = google_monitoring_slo.availability.name
    decision_latency = google_monitoring_slo.decision_latency.name
    audit_lag        = google_monitoring_slo.audit_lag.name
    delivery         = google_monitoring_slo.delivery.name
  }

  # every SLO with every burn rate: "availability-fast", "availability-slow", ...
  slo_alerts = {
    for pair in setproduct(keys(local.slos), keys(local.burn_rate_alerts)) :
    "${pair[0]}-${pair[1]}" => merge(local.burn_rate_alerts[pair[1]], { slo = pair[0], speed = pair[1] })
  }

  # what the on-call reads first in each alert (the full path: docs/operations.md)
  slo_runbooks = {
    availability     = "The backend answers 5xx. Dashboard: backend request latency and 5xx; Logs: severity>=ERROR on service backend, each line carries logging.googleapis.com/trace. Check Redis and Pub/Sub health, then the latest revision (docs/deploy.md: roll back)."
    decision_latency = "Decisions complete late. Dashboard: which tier grew (Pub/Sub push to the worker, the worker's request latency, the oldest unacked job). Open a slow decision's trace in Cloud Trace; GET /v1/decisions/{id} shows its stats."
    audit_lag        = "Audit rows reach BigQuery late. Dashboard: Pub/Sub push to the audit sink and its latency; the sink's logs; BigQuery streaming-insert quotas."
    delivery         = "Messages are being dead-lettered. Pull the dead-letter subscriptions (docs/deploy.md), read the failing deliveries' logs by trace, fix, republish."
  }

  notify_page   = concat(local.notify, var.page_notification_channels)
  notify_ticket = concat(local.notify, var.ticket_notification_channels)

  # bucket bounds of the log-based latency metrics: a fixed ladder plus both
  # thresholds, so that each SLO's cut falls exactly on a bucket boundary
  # (numbers are sorted as zero-padded strings: Terraform's sort is lexical)
  latency_bucket_bounds_ms = [
    for padded in sort(distinct([
      for ms in concat(
        [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000, 600000, 1800000],
        [var.slo_decision_latency_threshold_ms, var.slo_audit_lag_threshold_ms],
      ) : format("%012d", ms)
    ])) : tonumber(padded)
  ]

  # the audit sink is a gen2 function: its logs are those of the Cloud Run
  # service of the same name
  audit_sink_log_filter = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=\"${google_cloudfunctions2_function.audit_sink.name}\"",
  ])
}

# --- the service and its SLOs ----------------------------------------------------

resource "google_monitoring_custom_service" "entail" {
  project      = var.project_id
  service_id   = "entail-${var.environment}"
  display_name = "Entail ${var.environment}"
  user_labels  = local.labels

  depends_on = [google_project_service.enabled]
}

resource "google_logging_metric" "decision_latency" {
  project         = var.project_id
  name            = "entail-${var.environment}-decision-latency"
  filter          = "${local.audit_sink_log_filter} AND jsonPayload.decision_ms:*"
  value_extractor = "EXTRACT(jsonPayload.decision_ms)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "Entail decision latency (submitted to completed)"
  }

  bucket_options {
    explicit_buckets {
      bounds = local.latency_bucket_bounds_ms
    }
  }
}

resource "google_logging_metric" "audit_lag" {
  project         = var.project_id
  name            = "entail-${var.environment}-audit-lag"
  filter          = "${local.audit_sink_log_filter} AND jsonPayload.audit_lag_ms:*"
  value_extractor = "EXTRACT(jsonPayload.audit_lag_ms)"

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "ms"
    display_name = "Entail audit lag (completed to row in BigQuery)"
  }

  bucket_options {
    explicit_buckets {
      bounds = local.latency_bucket_bounds_ms
    }
  }
}

resource "google_monitoring_slo" "availability" {
  project             = var.project_id
  service             = google_monitoring_custom_service.entail.service_id
  slo_id              = "availability"
  display_name        = "Backend requests answered without a 5xx"
  goal                = var.slo_availability_goal_ratio
  rolling_period_days = local.slo_period_days
  user_labels         = local.labels

  request_based_sli {
    good_total_ratio {
      bad_service_filter = join(" AND ", [
        "metric.type=\"run.googleapis.com/request_count\"",
        "resource.type=\"cloud_run_revision\"",
        "resource.labels.service_name=\"${google_cloud_run_v2_service.service["backend"].name}\"",
        "metric.labels.response_code_class=\"5xx\"",
      ])
      total_service_filter = join(" AND ", [
        "metric.type=\"run.googleapis.com/request_count\"",
        "resource.type=\"cloud_run_revision\"",
        "resource.labels.service_name=\"${google_cloud_run_v2_service.service["backend"].name}\"",
      ])
    }
  }
}

resource "google_monitoring_slo" "decision_latency" {
  project             = var.project_id
  service             = google_monitoring_custom_service.entail.service_id
  slo_id              = "decision-latency"
  display_name        = "Decisions completed within ${var.slo_decision_latency_threshold_ms} ms of submission"
  goal                = var.slo_decision_latency_goal_ratio
  rolling_period_days = local.slo_period_days
  user_labels         = local.labels

  request_based_sli {
    distribution_cut {
      distribution_filter = join(" AND ", [
        "metric.type=\"logging.googleapis.com/user/${google_logging_metric.decision_latency.name}\"",
        "resource.type=\"cloud_run_revision\"",
      ])
      range {
        max = var.slo_decision_latency_threshold_ms
      }
    }
  }
}

resource "google_monitoring_slo" "audit_lag" {
  project             = var.project_id
  service             = google_monitoring_custom_service.entail.service_id
  slo_id              = "audit-lag"
  display_name        = "Audit rows in BigQuery within ${var.slo_audit_lag_threshold_ms} ms of completion"
  goal                = var.slo_audit_lag_goal_ratio
  rolling_period_days = local.slo_period_days
  user_labels         = local.labels

  request_based_sli {
    distribution_cut {
      distribution_filter = join(" AND ", [
        "metric.type=\"logging.googleapis.com/user/${google_logging_metric.audit_lag.name}\"",
        "resource.type=\"cloud_run_revision\"",
      ])
      range {
        max = var.slo_audit_lag_threshold_ms
      }
    }
  }
}

# Good: a push the subscriber acknowledged; bad: a message forwarded to a
# dead-letter topic after max_delivery_attempts. Messages waiting in the
# dead-letter subscriptions page on their own (monitoring.tf, dead_letters).
resource "google_monitoring_slo" "delivery" {
  project             = var.project_id
  service             = google_monitoring_custom_service.entail.service_id
  slo_id              = "delivery"
  display_name        = "Jobs and decisions delivered, not dead-lettered"
  goal                = var.slo_delivery_goal_ratio
  rolling_period_days = local.slo_period_days
  user_labels         = local.labels

  request_based_sli {
    good_total_ratio {
      good_service_filter = join(" AND ", [
        "metric.type=\"pubsub.googleapis.com/subscription/push_request_count\"",
        "resource.type=\"pubsub_subscription\"",
        "resource.labels.subscription_id=one_of(\"${google_pubsub_subscription.worker_push.name}\", \"${google_pubsub_subscription.audit_sink_push.name}\")",
        "metric.labels.response_class=\"ack\"",
      ])
      bad_service_filter = join(" AND ", [
        "metric.type=\"pubsub.googleapis.com/subscription/dead_letter_message_count\"",
        "resource.type=\"pubsub_subscription\"",
        "resource.labels.subscription_id=one_of(\"${google_pubsub_subscription.worker_push.name}\", \"${google_pubsub_subscription.audit_sink_push.name}\")",
      ])
    }
  }
}

# --- burn-rate alerts: every SLO, fast and slow ---------------------------------------

resource "google_monitoring_alert_policy" "slo_burn" {
  for_each = local.slo_alerts

  project               = var.project_id
  display_name          = "Entail ${var.environment}: ${each.value.slo} SLO, ${each.value.speed} burn (${each.value.burn_rate}x)"
  combiner              = "AND"
  severity              = each.value.severity
  notification_channels = each.value.speed == "fast" ? local.notify_page : local.notify_ticket

  conditions {
    display_name = "budget burn rate over ${each.value.long_window} above ${each.value.burn_rate}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${local.slos[each.value.slo]}\", \"${each.value.long_window}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.burn_rate
      duration        = "0s"
    }
  }

  conditions {
    display_name = "budget burn rate over ${each.value.short_window} above ${each.value.burn_rate}"
    condition_threshold {
      filter          = "select_slo_burn_rate(\"${local.slos[each.value.slo]}\", \"${each.value.short_window}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = each.value.burn_rate
      duration        = "0s"
    }
  }

  documentation {
    content   = "${local.slo_runbooks[each.value.slo]}\n\nFrom this alert to the trace and the decision: docs/operations.md (SLO `${each.value.slo}`). Dashboard: https://console.cloud.google.com/monitoring/dashboards/builder/${basename(google_monitoring_dashboard.latency.id)}?project=${var.project_id}"
    mime_type = "text/markdown"
  }
}

# --- the latency dashboard ------------------------------------------------------------

# dashboards/latency.json is plain JSON whose strings hold ${...} placeholders
# for what only Terraform knows (tests/cloud/test_terraform_slo.py parses it
# and checks every placeholder and every metric).
resource "google_monitoring_dashboard" "latency" {
  project = var.project_id
  dashboard_json = templatefile("${path.module}/dashboards/latency.json", {
    environment             = var.environment
    project_id              = var.project_id
    backend_service         = google_cloud_run_v2_service.service["backend"].name
    worker_service          = google_cloud_run_v2_service.service["worker"].name
    audit_sink_service      = google_cloudfunctions2_function.audit_sink.name
    jobs_subscription       = google_pubsub_subscription.worker_push.name
    decisions_subscription  = google_pubsub_subscription.audit_sink_push.name
    decision_latency_metric = google_logging_metric.decision_latency.name
    audit_lag_metric        = google_logging_metric.audit_lag.name
  })

  depends_on = [google_project_service.enabled]
}
