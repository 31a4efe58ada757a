output "cluster_name" {
  description = "AKS cluster name."
  value       = azurerm_kubernetes_cluster.main.name
}

output "cluster_endpoint" {
  description = "Kubernetes API URL (private)."
  value       = "https://${azurerm_kubernetes_cluster.main.private_fqdn}:443"
}

output "cluster_ca_certificate" {
  description = "PEM of the Kubernetes API's CA."
  value       = base64decode(azurerm_kubernetes_cluster.main.kube_config[0].cluster_ca_certificate)
  sensitive   = true
}

output "database" {
  description = "Where the database is and who owns it (the owner role runs the migrations)."
  value = {
    host           = azurerm_postgresql_flexible_server.main.fqdn
    port           = 5432
    name           = azurerm_postgresql_flexible_server_database.main.name
    owner_username = azurerm_postgresql_flexible_server.main.administrator_login
  }
}

output "database_owner_password" {
  description = "Password of the database owner role."
  value       = random_password.db_owner.result
  sensitive   = true
}

output "redis" {
  description = "TLS endpoint of the Redis cluster (through the private endpoint)."
  value = {
    host = azurerm_managed_redis.main.hostname
    port = azurerm_managed_redis.main.default_database[0].port
  }
}

output "redis_password" {
  description = "Redis access key."
  value       = azurerm_managed_redis.main.default_database[0].primary_access_key
  sensitive   = true
}
