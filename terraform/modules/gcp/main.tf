# CodexContinue on Google Cloud: a private GKE cluster, Cloud SQL for PostgreSQL (vector
# extension) on a private IP and Memorystore for Redis Cluster behind Private Service
# Connect, each accepting TLS only. The pieces live in kubernetes.tf, database.tf and
# redis.tf; this file holds what they share.

locals {
  labels = merge({ "part-of" = "codexcontinue" }, var.labels)
}
