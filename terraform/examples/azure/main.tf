# CodexContinue on Azure, in an existing virtual network: AKS, PostgreSQL Flexible Server
# and Azure Managed Redis from the azure module, then the chart with its Secrets from the
# app module. Run it from inside the virtual network (the AKS API is private), signed in
# with the Azure CLI and with kubelogin installed (see terraform/README.md).

terraform {
  required_version = ">= 1.3"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55"
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

variable "subscription_id" {
  description = "Azure subscription."
  type        = string
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Existing resource group."
  type        = string
}

variable "virtual_network_id" {
  description = "Existing virtual network."
  type        = string
}

variable "aks_subnet_id" {
  description = "Subnet of the AKS nodes."
  type        = string
}

variable "postgres_subnet_id" {
  description = "Subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers."
  type        = string
}

variable "private_endpoint_subnet_id" {
  description = "Subnet of the Redis private endpoint."
  type        = string
}

variable "admin_group_object_ids" {
  description = "Entra ID groups that administer the cluster; include the identity Terraform runs as."
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

provider "azurerm" {
  subscription_id = var.subscription_id
  features {}
}

module "platform" {
  source = "../../modules/azure"

  name                       = "codexcontinue"
  location                   = var.location
  resource_group_name        = var.resource_group_name
  virtual_network_id         = var.virtual_network_id
  aks_subnet_id              = var.aks_subnet_id
  postgres_subnet_id         = var.postgres_subnet_id
  private_endpoint_subnet_id = var.private_endpoint_subnet_id
  admin_group_object_ids     = var.admin_group_object_ids
}

locals {
  # Local accounts are disabled: kubelogin turns the Azure CLI sign-in into a token for
  # the AKS Entra ID server application (a fixed, well-known ID).
  kubelogin_args = ["get-token", "--login", "azurecli", "--server-id", "6dae42f8-4368-4678-94ff-3960e28e3630"]
}

provider "kubernetes" {
  host                   = module.platform.cluster_endpoint
  cluster_ca_certificate = module.platform.cluster_ca_certificate

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "kubelogin"
    args        = local.kubelogin_args
  }
}

provider "helm" {
  kubernetes = {
    host                   = module.platform.cluster_endpoint
    cluster_ca_certificate = module.platform.cluster_ca_certificate
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "kubelogin"
      args        = local.kubelogin_args
    }
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
  description = "AKS cluster name (az aks get-credentials ...)."
  value       = module.platform.cluster_name
}

output "master_key" {
  description = "The master key: copy it to your secret store (terraform output -raw master_key)."
  value       = module.app.master_key
  sensitive   = true
}
