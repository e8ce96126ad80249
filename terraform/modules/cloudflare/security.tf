# TLS end to end (strict: the origin's certificate is validated), Cloudflare's
# managed WAF rules, and a per-IP rate limit on the API in front of the
# backend's own per-key limits.

resource "cloudflare_zone_settings_override" "tls" {
  zone_id = var.zone_id

  settings {
    ssl                      = "strict"
    always_use_https         = "on"
    min_tls_version          = "1.2"
    tls_1_3                  = "on"
    automatic_https_rewrites = "on"
  }
}

resource "cloudflare_ruleset" "waf_managed" {
  zone_id     = var.zone_id
  name        = "entail-waf-managed"
  description = "Cloudflare managed rulesets on every request of the zone"
  kind        = "zone"
  phase       = "http_request_firewall_managed"

  rules {
    description = "Cloudflare Managed Ruleset"
    expression  = "true"
    action      = "execute"
    enabled     = true
    action_parameters {
      id = "efb7b8c949ac4650a09736fc376e9aee"
    }
  }

  rules {
    description = "Cloudflare OWASP Core Ruleset"
    expression  = "true"
    action      = "execute"
    enabled     = true
    action_parameters {
      id = "4814384a9e5d4991b9815dcfc25d2f1f"
    }
  }
}

resource "cloudflare_ruleset" "api_rate_limit" {
  zone_id     = var.zone_id
  name        = "entail-api-rate-limit"
  description = "Per-IP request rate on the API"
  kind        = "zone"
  phase       = "http_ratelimit"

  rules {
    description = "Block a client IP above the API request rate"
    expression  = "(http.host eq \"${var.api_hostname}\")"
    action      = "block"
    enabled     = true
    ratelimit {
      characteristics     = ["cf.colo.id", "ip.src"]
      period              = 60
      requests_per_period = var.api_rate_limit_requests_per_minute
      mitigation_timeout  = var.api_rate_limit_block_seconds
    }
  }
}
