# Images of both Cloud Run services; Cloud Build pushes here.

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption; the images hold open code and no data
  project       = var.project_id
  location      = var.region
  repository_id = "entail-${var.environment}"
  format        = "DOCKER"
  description   = "Entail container images (backend, reasoning-worker)"
  labels        = local.labels

  docker_config {
    # a tag names one build: redeploying a tag must not change what runs
    immutable_tags = true
  }

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }

  depends_on = [google_project_service.enabled]
}
