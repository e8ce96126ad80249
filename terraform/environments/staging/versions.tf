terraform {
  required_version = ">= 1.9"

  # State in a GCS bucket made once by hand (docs/deploy.md, step 3):
  #   terraform init -backend-config="bucket=<project>-tfstate"
  backend "gcs" {
    prefix = "entail/staging"
  }

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.40"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.40"
    }
    cloudflare = {
      source  = "cloudflare/cloudflare"
      version = "~> 4.52"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

# The token comes from the CLOUDFLARE_API_TOKEN environment variable (Zone
# DNS, Zone Settings, Zone WAF and Cache Rules edit on this zone only).
provider "cloudflare" {}
