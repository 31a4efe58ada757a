# CodexContinue on AWS, in an existing VPC: EKS, RDS PostgreSQL and ElastiCache from the
# aws module, then the chart with its Secrets from the app module. Run it from a machine
# that reaches the private Kubernetes API (see terraform/README.md).

terraform {
  required_version = ">= 1.3"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
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

variable "region" {
  description = "AWS region."
  type        = string
}

variable "vpc_id" {
  description = "Existing VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the VPC in at least two availability zones."
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

provider "aws" {
  region = var.region
}

module "platform" {
  source = "../../modules/aws"

  name               = "codexcontinue"
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
}

data "aws_eks_cluster_auth" "main" {
  name = module.platform.cluster_name
}

provider "kubernetes" {
  host                   = module.platform.cluster_endpoint
  cluster_ca_certificate = module.platform.cluster_ca_certificate
  token                  = data.aws_eks_cluster_auth.main.token
}

provider "helm" {
  kubernetes = {
    host                   = module.platform.cluster_endpoint
    cluster_ca_certificate = module.platform.cluster_ca_certificate
    token                  = data.aws_eks_cluster_auth.main.token
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
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.platform.cluster_name
}

output "master_key" {
  description = "The master key: copy it to your secret store (terraform output -raw master_key)."
  value       = module.app.master_key
  sensitive   = true
}
