# The sweeper: every accepted decision ends. Cloud Scheduler calls the worker's
# POST /sweep every minute with an OIDC token of the push account (the worker's
# only invoker, verified by the worker like a push); the worker fails each
# decision still open past ENTAIL_DECISION_DEADLINE_S (code deadline-exceeded),
# signals it and publishes it on decisions. Several calls at once are harmless:
# exactly one stores each failure. Locally the relay runs the same sweep.

locals {
  # The deadline must outlast everything that may still legitimately finish a
  # decision: every delivery attempt waiting its full ack deadline and maximum
  # backoff, plus twice the evaluation limit (the supervisor's kill), plus a minute.
  decision_deadline_seconds = (
    var.max_delivery_attempts * (var.worker_ack_deadline_seconds + var.retry_maximum_backoff_seconds)
    + 2 * ceil(var.limit_wall_time_ms / 1000) + 60
  )
}

resource "google_cloud_scheduler_job" "sweeper" {
  project          = var.project_id
  region           = var.region
  name             = "entail-${var.environment}-sweeper"
  description      = "Fails decisions open past ENTAIL_DECISION_DEADLINE_S (POST /sweep on the worker)"
  schedule         = "* * * * *"
  time_zone        = "Etc/UTC"
  attempt_deadline = "60s"

  retry_config {
    retry_count = 0 # the next minute's call sweeps what this one missed
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.service["worker"].uri}/sweep"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.push_audience
    }
  }

  depends_on = [google_project_service.enabled]
}
