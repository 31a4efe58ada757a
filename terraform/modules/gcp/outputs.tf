output "cluster_name" {
  description = "GKE cluster name."
  value       = google_container_cluster.main.name
}

output "cluster_endpoint" {
  description = "Kubernetes API URL (the private address when enable_private_endpoint is set)."
  value       = "https://${google_container_cluster.main.endpoint}"
}

output "cluster_ca_certificate" {
  description = "PEM of the Kubernetes API's CA."
  value       = base64decode(google_container_cluster.main.master_auth[0].cluster_ca_certificate)
}

output "database" {
  description = "Where the database is and who owns it (the owner role runs the migrations)."
  value = {
    host           = google_sql_database_instance.main.private_ip_address
    port           = 5432
    name           = google_sql_database.main.name
    owner_username = google_sql_user.owner.name
  }
}

output "database_owner_password" {
  description = "Password of the database owner role."
  value       = random_password.db_owner.result
  sensitive   = true
}

output "redis" {
  description = "Discovery endpoint of the Redis cluster (TLS)."
  value = {
    host = google_redis_cluster.main.discovery_endpoints[0].address
    port = google_redis_cluster.main.discovery_endpoints[0].port
  }
}

output "redis_password" {
  description = "Always null: Memorystore Redis Cluster has no password authentication (see redis.tf)."
  value       = null
  sensitive   = true
}
