output "cluster_name" {
  description = "EKS cluster name."
  value       = aws_eks_cluster.main.name
}

output "cluster_endpoint" {
  description = "Kubernetes API URL."
  value       = aws_eks_cluster.main.endpoint
}

output "cluster_ca_certificate" {
  description = "PEM of the Kubernetes API's CA."
  value       = base64decode(aws_eks_cluster.main.certificate_authority[0].data)
}

output "database" {
  description = "Where the database is and who owns it (the owner role runs the migrations)."
  value = {
    host           = aws_db_instance.main.address
    port           = aws_db_instance.main.port
    name           = aws_db_instance.main.db_name
    owner_username = aws_db_instance.main.username
  }
}

output "database_owner_password" {
  description = "Password of the database owner role."
  value       = random_password.db_owner.result
  sensitive   = true
}

output "redis" {
  description = "Configuration endpoint of the Redis cluster (TLS)."
  value = {
    host = aws_elasticache_replication_group.main.configuration_endpoint_address
    port = aws_elasticache_replication_group.main.port
  }
}

output "redis_password" {
  description = "Redis AUTH token."
  value       = random_password.redis_auth.result
  sensitive   = true
}

output "kms_key_arn" {
  description = "Key that encrypts the database, Redis and Kubernetes secrets."
  value       = aws_kms_key.main.arn
}
