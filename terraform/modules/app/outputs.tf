output "namespace" {
  description = "Namespace of the release."
  value       = kubernetes_namespace_v1.main.metadata[0].name
}

output "release_name" {
  description = "Helm release name."
  value       = helm_release.main.name
}

output "app_db_username" {
  description = "Login role the server uses."
  value       = var.app_db_username
}

output "app_db_password" {
  description = "Password of the server's login role (needed only when creating the role yourself)."
  value       = local.app_db_password
  sensitive   = true
}

output "master_key" {
  description = "The master key (base64). Keep a copy outside Terraform state and the database backups."
  value       = local.master_key
  sensitive   = true
}
