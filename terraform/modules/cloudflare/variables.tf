variable "zone_id" {
  type        = string
  description = "Cloudflare zone id of the domain (dashboard: the zone's Overview page)."
}

variable "api_hostname" {
  type        = string
  description = "Full hostname of the API record (api.<domain>), proxied to API Gateway."
}

variable "app_hostname" {
  type        = string
  description = "Full hostname of the web app record (app.<domain>), proxied to the CDN load balancer."
}

variable "gateway_hostname" {
  type        = string
  description = "Default hostname of the API Gateway (entail module output gateway_hostname)."
}

variable "web_ip_address" {
  type        = string
  description = "IPv4 address of the CDN load balancer (entail module output web_ip_address)."
}

variable "app_certificate_dns_record" {
  type = object({
    name = string
    type = string
    data = string
  })
  description = "Certificate Manager's DNS authorization record for the app hostname (entail module output app_certificate_dns_record)."
}

variable "api_rate_limit_requests_per_minute" {
  type        = number
  description = "Requests per minute one client IP may send to the API before Cloudflare blocks it."
  default     = 600
}

variable "api_rate_limit_block_seconds" {
  type        = number
  description = "How long a client IP that exceeded the rate limit stays blocked, in seconds."
  default     = 60
}

variable "assets_edge_ttl_seconds" {
  type        = number
  description = "Edge cache lifetime of the SPA's hashed assets (/assets/*), in seconds."
  default     = 31536000
}
