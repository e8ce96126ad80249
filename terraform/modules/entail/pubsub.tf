# Topics, push subscriptions and their dead letters (docs/design.md: Tiers, Contracts).
# Every push carries an OIDC token signed as the push service account; the
# receivers verify it. Delivery is at-least-once: the worker claims a decision
# id once and the audit insert is keyed by decision id, so redeliveries after a
# retry change nothing.

locals {
  message_retention     = "${var.message_retention_seconds}s"
  dead_letter_retention = "${var.dead_letter_retention_seconds}s"
}

# reasoning-jobs: one Job per decision (schema entail.job.v1).
#   publisher:   backend
#   subscriber:  reasoning-worker (push subscription worker_push)
#   dead letter: reasoning-jobs-dead-letter
resource "google_pubsub_topic" "reasoning_jobs" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; messages live at most the retention period and carry what the audit table keeps anyway
  project                    = var.project_id
  name                       = local.topic_reasoning_jobs
  labels                     = local.labels
  message_retention_duration = local.message_retention

  depends_on = [google_project_service.enabled]
}

# decisions: one audit row per final decision.
#   publisher:   reasoning-worker
#   subscriber:  audit_sink function (push subscription audit_sink_push)
#   dead letter: decisions-dead-letter
resource "google_pubsub_topic" "decisions" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; messages live at most the retention period and carry what the audit table keeps anyway
  project                    = var.project_id
  name                       = local.topic_decisions
  labels                     = local.labels
  message_retention_duration = local.message_retention

  depends_on = [google_project_service.enabled]
}

# reasoning-jobs-dead-letter: jobs the worker refused max_delivery_attempts times.
#   publisher:   the Pub/Sub service agent (dead-lettering of worker_push)
#   subscriber:  reasoning-jobs-dead-letter (pull; operators inspect and replay)
#                and worker_dead_letter_push (the job's decision ends failed,
#                code delivery-failed: every accepted decision ends)
resource "google_pubsub_topic" "reasoning_jobs_dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; messages live at most the retention period and carry what the audit table keeps anyway
  project                    = var.project_id
  name                       = "${local.topic_reasoning_jobs}-dead-letter"
  labels                     = local.labels
  message_retention_duration = local.dead_letter_retention

  depends_on = [google_project_service.enabled]
}

# decisions-dead-letter: audit rows the sink could not store.
#   publisher:   the Pub/Sub service agent (dead-lettering of audit_sink_push)
#   subscriber:  decisions-dead-letter (pull; nothing is lost while it is kept)
resource "google_pubsub_topic" "decisions_dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; messages live at most the retention period and carry what the audit table keeps anyway
  project                    = var.project_id
  name                       = "${local.topic_decisions}-dead-letter"
  labels                     = local.labels
  message_retention_duration = local.dead_letter_retention

  depends_on = [google_project_service.enabled]
}

# Without a subscription a dead-letter topic drops what it receives.
resource "google_pubsub_subscription" "reasoning_jobs_dead_letter" {
  project                    = var.project_id
  name                       = "${local.topic_reasoning_jobs}-dead-letter"
  topic                      = google_pubsub_topic.reasoning_jobs_dead_letter.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = local.dead_letter_retention
  retain_acked_messages      = true

  expiration_policy {
    ttl = "" # never expires, even when nobody pulls for a month
  }
}

# Every accepted decision ends: each dead-lettered job is pushed to the worker,
# which stores its decision as failed (code delivery-failed), signals it and
# publishes it on decisions (one audit row). Failing a final decision is a no-op,
# so redeliveries are harmless. No dead-letter policy of its own: it is the end of
# the line, retried until the message expires (the pull subscription above keeps
# a copy, and the sweeper, sweeper.tf, ends the decision at its deadline anyway).
resource "google_pubsub_subscription" "worker_dead_letter_push" {
  project                    = var.project_id
  name                       = "reasoning-worker-dead-letter-push"
  topic                      = google_pubsub_topic.reasoning_jobs_dead_letter.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = local.dead_letter_retention

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.service["worker"].uri}/push/dead-letters"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.push_audience
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.retry_maximum_backoff_seconds}s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_service_account_iam_member.pubsub_signs_as_push]
}

resource "google_pubsub_subscription" "decisions_dead_letter" {
  project                    = var.project_id
  name                       = "${local.topic_decisions}-dead-letter"
  topic                      = google_pubsub_topic.decisions_dead_letter.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = local.dead_letter_retention
  retain_acked_messages      = true

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "worker_push" {
  project                    = var.project_id
  name                       = "reasoning-worker-push"
  topic                      = google_pubsub_topic.reasoning_jobs.id
  labels                     = local.labels
  ack_deadline_seconds       = var.worker_ack_deadline_seconds
  message_retention_duration = local.message_retention

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.service["worker"].uri}/push/reasoning-jobs"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.push_audience
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.retry_maximum_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.reasoning_jobs_dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
    google_service_account_iam_member.pubsub_signs_as_push,
  ]
}

# The audit sink gets its own push subscription rather than an Eventarc
# trigger: Eventarc manages the subscription it creates and offers no
# dead-letter policy on it, and every audit row must end up stored or kept.
# functions-framework turns the raw push envelope into the same CloudEvent an
# Eventarc trigger would deliver (google.cloud.pubsub.topic.v1.messagePublished).
resource "google_pubsub_subscription" "audit_sink_push" {
  project                    = var.project_id
  name                       = "audit-sink-push"
  topic                      = google_pubsub_topic.decisions.id
  labels                     = local.labels
  ack_deadline_seconds       = 60
  message_retention_duration = local.message_retention

  push_config {
    push_endpoint = google_cloudfunctions2_function.audit_sink.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.push.email
      # Cloud Run (which runs gen2 functions) accepts its own URL as audience
      audience = google_cloudfunctions2_function.audit_sink.service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${var.retry_minimum_backoff_seconds}s"
    maximum_backoff = "${var.retry_maximum_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.decisions_dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_pubsub_topic_iam_member.agent_publishes_dead_letters,
    google_service_account_iam_member.pubsub_signs_as_push,
  ]
}
