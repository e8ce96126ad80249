# api and app are proxied: clients only ever see Cloudflare, which applies the
# WAF, the rate limit and the cache rules (security.tf, cache.tf).

resource "cloudflare_record" "api" {
  zone_id = var.zone_id
  name    = var.api_hostname
  type    = "CNAME"
  content = var.gateway_hostname
  proxied = true
  comment = "Entail API: API Gateway"
}

resource "cloudflare_record" "app" {
  zone_id = var.zone_id
  name    = var.app_hostname
  type    = "A"
  content = var.web_ip_address
  proxied = true
  comment = "Entail web app: CDN load balancer"
}

# Proves control of the app hostname to Google Certificate Manager; must not
# be proxied (it is looked up by Google, not browsed).
resource "cloudflare_record" "app_certificate" {
  zone_id = var.zone_id
  name    = var.app_certificate_dns_record.name
  type    = var.app_certificate_dns_record.type
  content = var.app_certificate_dns_record.data
  proxied = false
  ttl     = 300
  comment = "Entail: Certificate Manager DNS authorization"
}

# API Gateway answers only for its own hostname, and Cloudflare's strict mode
# checks the origin certificate against the name it connects to: send the
# gateway's hostname as Host and SNI.
resource "cloudflare_ruleset" "api_origin" {
  zone_id     = var.zone_id
  name        = "entail-api-origin"
  description = "API requests reach API Gateway under its own hostname"
  kind        = "zone"
  phase       = "http_request_origin"

  rules {
    description = "Host header and SNI of the gateway"
    expression  = "(http.host eq \"${var.api_hostname}\")"
    action      = "route"
    enabled     = true
    action_parameters {
      host_header = var.gateway_hostname
      sni {
        value = var.gateway_hostname
      }
    }
  }
}
