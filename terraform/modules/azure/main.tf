# CodexContinue on Azure: a private AKS cluster, PostgreSQL Flexible Server with the
# vector extension allow-listed and Azure Managed Redis in OSS cluster mode behind a
# private endpoint, each accepting TLS only. The pieces live in kubernetes.tf,
# database.tf and redis.tf; this file holds what they share.

locals {
  tags = merge({ "app.kubernetes.io/part-of" = "codexcontinue" }, var.tags)
}
