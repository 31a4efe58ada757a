# CodexContinue on Google Cloud, in an existing VPC network: GKE, Cloud SQL and
# Memorystore for Redis Cluster from the gcp module, then the chart with its Secrets from
# the app module. Run it from a network in master_authorized_cidrs (see
# terraform/README.md).

terraform {
  required_version = ">= 1.3"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.38"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Region."
  type        = string
}

variable "network_id" {
  description = "Existing VPC network (projects/P/global/networks/N)."
  type        = string
}

variable "subnetwork_id" {
  description = "Subnetwork of the nodes, with secondary ranges named pods and services."
  type        = string
}

variable "redis_psc_subnetwork_id" {
  description = "Subnetwork for the Redis cluster's Private Service Connect addresses."
  type        = string
}

variable "master_authorized_cidrs" {
  description = "CIDRs allowed to reach the Kubernetes API, including where Terraform runs."
  type        = list(string)
}

variable "image_repository" {
  description = "Container image repository of the server."
  type        = string
}

variable "image_tag" {
  description = "Container image tag of the server."
  type        = string
}

variable "chart_path" {
  description = "Path of the CodexContinue chart, relative to this directory."
  type        = string
  default     = "../../../helm/codexcontinue"
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "platform" {
  source = "../../modules/gcp"

  name                    = "codexcontinue"
  project_id              = var.project_id
  region                  = var.region
  network_id              = var.network_id
  subnetwork_id           = var.subnetwork_id
  pods_range_name         = "pods"
  services_range_name     = "services"
  redis_psc_subnetwork_id = var.redis_psc_subnetwork_id
  master_authorized_cidrs = var.master_authorized_cidrs
}

data "google_client_config" "current" {}

provider "kubernetes" {
  host                   = module.platform.cluster_endpoint
  cluster_ca_certificate = module.platform.cluster_ca_certificate
  token                  = data.google_client_config.current.access_token
}

provider "helm" {
  kubernetes = {
    host                   = module.platform.cluster_endpoint
    cluster_ca_certificate = module.platform.cluster_ca_certificate
    token                  = data.google_client_config.current.access_token
  }
}

module "app" {
  source = "../../modules/app"

  chart_path              = var.chart_path
  image_repository        = var.image_repository
  image_tag               = var.image_tag
  database                = module.platform.database
  database_owner_password = module.platform.database_owner_password
  redis                   = module.platform.redis
  redis_password          = module.platform.redis_password
}

output "cluster_name" {
  description = "GKE cluster name (gcloud container clusters get-credentials ...)."
  value       = module.platform.cluster_name
}

output "master_key" {
  description = "The master key: copy it to your secret store (terraform output -raw master_key)."
  value       = module.app.master_key
  sensitive   = true
}
