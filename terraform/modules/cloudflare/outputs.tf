output "api_url" {
  description = "Public URL of the API through Cloudflare."
  value       = "https://${cloudflare_record.api.hostname}"
}

output "app_url" {
  description = "Public URL of the web app through Cloudflare."
  value       = "https://${cloudflare_record.app.hostname}"
}
