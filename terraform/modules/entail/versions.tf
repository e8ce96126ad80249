terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.40"
    }
    # API Gateway resources exist only in the beta provider
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.40"
    }
  }
}
