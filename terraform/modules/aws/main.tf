# CodexContinue on AWS: an EKS cluster, RDS PostgreSQL (pgvector) and ElastiCache Redis in
# cluster mode, all in private subnets, encrypted at rest with one customer-managed key and
# reachable only over TLS from the cluster. The pieces live in kubernetes.tf, database.tf
# and redis.tf; this file holds what they share.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  tags      = merge({ "app.kubernetes.io/part-of" = "codexcontinue" }, var.tags)
  partition = data.aws_partition.current.partition
}

# One key for the database, its Performance Insights, Redis and the Kubernetes secrets. The
# services use it through grants made on behalf of the account, so the policy only names the
# account (the same as the AWS default policy, written out).
resource "aws_kms_key" "main" {
  description             = "${var.name}: CodexContinue data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  tags                    = local.tags

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:${local.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}
