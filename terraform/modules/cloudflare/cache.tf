# Cache rules: the SPA's hashed assets are immutable (cache for a year); its
# HTML must be fresh so a deploy shows at once; the API is never cached.

resource "cloudflare_ruleset" "cache" {
  zone_id     = var.zone_id
  name        = "entail-cache"
  description = "Cache the SPA's assets, never the API"
  kind        = "zone"
  phase       = "http_request_cache_settings"

  rules {
    description = "SPA hashed assets: cache at the edge and in browsers"
    expression  = "(http.host eq \"${var.app_hostname}\" and starts_with(http.request.uri.path, \"/assets/\"))"
    action      = "set_cache_settings"
    enabled     = true
    action_parameters {
      cache = true
      edge_ttl {
        mode    = "override_origin"
        default = var.assets_edge_ttl_seconds
      }
      browser_ttl {
        mode    = "override_origin"
        default = var.assets_edge_ttl_seconds
      }
    }
  }

  rules {
    description = "SPA HTML and other files: revalidate with the origin"
    expression  = "(http.host eq \"${var.app_hostname}\" and not starts_with(http.request.uri.path, \"/assets/\"))"
    action      = "set_cache_settings"
    enabled     = true
    action_parameters {
      cache = true
      edge_ttl {
        mode = "respect_origin"
      }
      browser_ttl {
        mode = "respect_origin"
      }
    }
  }

  rules {
    description = "API: never cached"
    expression  = "(http.host eq \"${var.api_hostname}\")"
    action      = "set_cache_settings"
    enabled     = true
    action_parameters {
      cache = false
    }
  }
}
