# Inputs of the Entail module. Units are in the names; every limit a service
# reads at run time is passed to it as an ENTAIL_* environment variable.

variable "project_id" {
  type        = string
  description = "GCP project that holds every resource of this environment."
}

variable "region" {
  type        = string
  description = "Region of Cloud Run, Pub/Sub push, Redis, the functions and Artifact Registry (e.g. europe-west1)."
}

variable "environment" {
  type        = string
  description = "Environment name (staging or prod); prefixes names that must be unique per project and labels everything."

  validation {
    condition     = contains(["staging", "prod"], var.environment)
    error_message = "environment must be staging or prod."
  }
}

variable "app_hostname" {
  type        = string
  description = "Public hostname of the web app (app.<domain>), served by the CDN bucket behind Cloudflare."
}

variable "api_hostname" {
  type        = string
  description = "Public hostname of the API (api.<domain>), served by API Gateway behind Cloudflare."
}

variable "backend_image" {
  type        = string
  description = "Container image of the backend for the first deploy (Artifact Registry path with tag or digest); Cloud Build deploys later revisions."
}

variable "worker_image" {
  type        = string
  description = "Container image of the reasoning worker for the first deploy; Cloud Build deploys later revisions."
}

variable "function_source_objects" {
  type        = map(string)
  description = "Object name in the function source bucket of each function's first source zip (keys: audit_sink, batch_reason, trail_roots); Cloud Build deploys later sources."
}

# --- Cloud Run sizing --------------------------------------------------------

variable "backend_min_instances" {
  type        = number
  description = "Minimum backend instances kept warm (at least 3: one per zone, no cold start on the request path)."
  default     = 3

  validation {
    condition     = var.backend_min_instances >= 3
    error_message = "backend_min_instances must be at least 3."
  }
}

variable "backend_max_instances" {
  type        = number
  description = "Maximum backend instances (caps cost and the Redis connection count)."
  default     = 20
}

variable "backend_max_concurrent_requests" {
  type        = number
  description = "Requests one backend instance serves at once (async server: mostly waiting on Redis)."
  default     = 80
}

variable "backend_cpu_count" {
  type        = number
  description = "vCPUs per backend instance."
  default     = 1
}

variable "backend_memory_mib" {
  type        = number
  description = "Memory per backend instance in MiB."
  default     = 512
}

variable "worker_min_instances" {
  type        = number
  description = "Minimum reasoning-worker instances kept warm (at least 3)."
  default     = 3

  validation {
    condition     = var.worker_min_instances >= 3
    error_message = "worker_min_instances must be at least 3."
  }
}

variable "worker_max_instances" {
  type        = number
  description = "Maximum reasoning-worker instances."
  default     = 30
}

variable "worker_max_concurrent_requests" {
  type        = number
  description = "Push requests one worker instance evaluates at once (evaluation is CPU-bound: keep it near the vCPU count)."
  default     = 4
}

variable "worker_cpu_count" {
  type        = number
  description = "vCPUs per reasoning-worker instance."
  default     = 1
}

variable "worker_memory_mib" {
  type        = number
  description = "Memory per reasoning-worker instance in MiB (bounds the derived facts one evaluation can hold)."
  default     = 1024
}

variable "cpu_always_allocated" {
  type        = bool
  description = "Keep CPU allocated between requests on both services (no throttled background work, steady latency); false bills idle minimum instances at the lower idle rate (docs/deploy.md, cost)."
  default     = true
}

variable "request_timeout_seconds" {
  type        = number
  description = "Cloud Run request timeout of both services (the SSE stream of a decision lives at most this long)."
  default     = 300
}

# --- Engine and API limits (ENTAIL_* settings) -------------------------------

variable "limit_wall_time_ms" {
  type        = number
  description = "Cap on one evaluation's wall time in milliseconds (ENTAIL_LIMIT_WALL_TIME_MS)."
  default     = 10000
}

variable "tenant_max_running_count" {
  type        = number
  description = "Decisions of one tenant evaluating at once across the whole worker tier (ENTAIL_TENANT_MAX_RUNNING): the worker tier's CPUs (max instances x CPUs each) less the share kept for the other tenants."
  default     = 8
}

variable "rate_limit_per_second" {
  type        = number
  description = "Requests per second per API key allowed by the backend itself (ENTAIL_RATE_LIMIT_PER_S); Cloudflare and API Gateway limit in front of it."
  default     = 50
}

variable "cors_origins" {
  type        = list(string)
  description = "Extra browser origins allowed to call the API; https://<app_hostname> is always allowed."
  default     = []
}

# --- Redis ------------------------------------------------------------------

variable "redis_memory_size_gb" {
  type        = number
  description = "Memorystore capacity in GB (the primary; each replica has the same). Read replicas need at least 5 GB."
  default     = 5

  validation {
    condition     = var.redis_memory_size_gb >= 5
    error_message = "Memorystore read replicas need an instance of at least 5 GB."
  }
}

variable "redis_read_replica_count" {
  type        = number
  description = "Memorystore read replicas (STANDARD_HA with READ_REPLICAS_ENABLED; the design asks for 2)."
  default     = 2

  validation {
    condition     = var.redis_read_replica_count >= 2 && var.redis_read_replica_count <= 5
    error_message = "redis_read_replica_count must be between 2 and 5."
  }
}

variable "redis_version" {
  type        = string
  description = "Memorystore Redis version."
  default     = "REDIS_7_2"
}

variable "vpc_subnet_cidr" {
  type        = string
  description = "CIDR of the subnet Cloud Run egresses from (Direct VPC egress) to reach Redis."
  default     = "10.8.0.0/24"
}

# --- Pub/Sub ----------------------------------------------------------------

variable "worker_ack_deadline_seconds" {
  type        = number
  description = "Ack deadline of the push subscription to the worker: longer than the longest evaluation (limit_wall_time_ms) plus Redis writes."
  default     = 60
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of one message before it goes to the dead-letter topic (Pub/Sub allows 5 to 100)."
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100."
  }
}

variable "retry_minimum_backoff_seconds" {
  type        = number
  description = "Minimum delay before a message that was not acknowledged is delivered again."
  default     = 10
}

variable "retry_maximum_backoff_seconds" {
  type        = number
  description = "Maximum delay between redeliveries (exponential backoff in between)."
  default     = 600
}

variable "message_retention_seconds" {
  type        = number
  description = "How long topics and subscriptions keep messages (7 days: time to fix a broken consumer)."
  default     = 604800
}

variable "dead_letter_retention_seconds" {
  type        = number
  description = "How long dead-lettered messages are kept for inspection and replay (the Pub/Sub maximum, 31 days)."
  default     = 2678400
}

# --- BigQuery ---------------------------------------------------------------

variable "bigquery_location" {
  type        = string
  description = "Location of the audit dataset (US, EU or a region); fixed once created."
  default     = "EU"
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to destroy the audit tables and the function source bucket from Terraform (keep true outside experiments)."
  default     = true
}

# --- Functions --------------------------------------------------------------

variable "audit_sink_max_instances" {
  type        = number
  description = "Maximum audit_sink function instances (BigQuery streaming inserts scale far beyond this)."
  default     = 20
}

variable "audit_sink_memory_mib" {
  type        = number
  description = "Memory per audit_sink function instance in MiB."
  default     = 512
}

variable "batch_reason_memory_mib" {
  type        = number
  description = "Memory per batch_reason function instance in MiB (it compiles rulesets to SQL; BigQuery does the work)."
  default     = 512
}

variable "batch_reason_timeout_seconds" {
  type        = number
  description = "Request timeout of batch_reason (it waits for the BigQuery query jobs it starts)."
  default     = 540
}

# --- API Gateway ------------------------------------------------------------

variable "gateway_openapi_path" {
  type        = string
  description = "Path of the OpenAPI 2.0 spec of the gateway (scripts/gen_gateway_openapi.py writes terraform/modules/entail/gateway/openapi.yaml); BACKEND_URL in it is replaced by the backend's URL."
  default     = null
}

# --- Monitoring -------------------------------------------------------------

variable "alert_email" {
  type        = string
  description = "Email address that receives the alert notifications."
}

variable "alert_5xx_per_second" {
  type        = number
  description = "Backend 5xx responses per second (5-minute mean) that raise an alert."
  default     = 1
}

variable "alert_redis_memory_ratio" {
  type        = number
  description = "Redis used/maximum memory ratio (0 to 1) that raises an alert."
  default     = 0.8
}

# --- Service-level objectives (slo.tf, docs/operations.md) ---------------------

variable "page_notification_channels" {
  type        = list(string)
  description = "Notification channel ids (projects/P/notificationChannels/N: PagerDuty, Slack, SMS) that fast error-budget burns page, besides alert_email."
  default     = []
}

variable "ticket_notification_channels" {
  type        = list(string)
  description = "Notification channel ids that slow error-budget burns notify, besides alert_email."
  default     = []
}

variable "slo_availability_goal_ratio" {
  type        = number
  description = "Fraction of backend requests (28 rolling days) that must answer without a 5xx."
  default     = 0.999

  validation {
    condition     = var.slo_availability_goal_ratio > 0 && var.slo_availability_goal_ratio <= 0.999
    error_message = "Cloud Monitoring accepts SLO goals in (0, 0.999]."
  }
}

variable "slo_decision_latency_goal_ratio" {
  type        = number
  description = "Fraction of decisions (28 rolling days) that must complete within slo_decision_latency_threshold_ms of their submission."
  default     = 0.99

  validation {
    condition     = var.slo_decision_latency_goal_ratio > 0 && var.slo_decision_latency_goal_ratio <= 0.999
    error_message = "Cloud Monitoring accepts SLO goals in (0, 0.999]."
  }
}

variable "slo_decision_latency_threshold_ms" {
  type        = number
  description = "Milliseconds from a decision's submitted_at to its completed_at that count as a good decision."
  default     = 1000

  validation {
    condition     = var.slo_decision_latency_threshold_ms > 0 && floor(var.slo_decision_latency_threshold_ms) == var.slo_decision_latency_threshold_ms
    error_message = "A whole number of milliseconds: it is also a bucket bound of the latency metrics."
  }
}

variable "slo_audit_lag_goal_ratio" {
  type        = number
  description = "Fraction of decisions (28 rolling days) whose audit row must be stored within slo_audit_lag_threshold_ms of completing."
  default     = 0.99

  validation {
    condition     = var.slo_audit_lag_goal_ratio > 0 && var.slo_audit_lag_goal_ratio <= 0.999
    error_message = "Cloud Monitoring accepts SLO goals in (0, 0.999]."
  }
}

variable "slo_audit_lag_threshold_ms" {
  type        = number
  description = "Milliseconds from a decision's completed_at to its row in BigQuery that count as good."
  default     = 60000

  validation {
    condition     = var.slo_audit_lag_threshold_ms > 0 && floor(var.slo_audit_lag_threshold_ms) == var.slo_audit_lag_threshold_ms
    error_message = "A whole number of milliseconds: it is also a bucket bound of the latency metrics."
  }
}

variable "slo_delivery_goal_ratio" {
  type        = number
  description = "Fraction of Pub/Sub messages (jobs and decisions, 28 rolling days) that must be delivered rather than dead-lettered."
  default     = 0.999

  validation {
    condition     = var.slo_delivery_goal_ratio > 0 && var.slo_delivery_goal_ratio <= 0.999
    error_message = "Cloud Monitoring accepts SLO goals in (0, 0.999]."
  }
}

variable "labels" {
  type        = map(string)
  description = "Extra labels put on every resource that takes labels."
  default     = {}
}
