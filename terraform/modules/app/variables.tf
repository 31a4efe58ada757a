variable "chart_path" {
  description = "Path of the CodexContinue Helm chart (the repository's helm/codexcontinue)."
  type        = string
}

variable "namespace" {
  description = "Namespace created for the release."
  type        = string
  default     = "codexcontinue"
}

variable "release_name" {
  description = "Helm release name."
  type        = string
  default     = "codexcontinue"
}

variable "image_repository" {
  description = "Container image repository of the server."
  type        = string
}

variable "image_tag" {
  description = "Container image tag of the server (pin a version, not latest)."
  type        = string
}

variable "api_replicas" {
  description = "Replicas serving the API on CPU nodes."
  type        = number
  default     = 2
}

variable "worker_replicas" {
  description = "Replicas of the separate background-work Deployment; 0 leaves that work to the API replicas."
  type        = number
  default     = 0
}

variable "gpu_replicas" {
  description = "API replicas on GPU nodes (CUDA image); 0 runs none."
  type        = number
  default     = 0
}

variable "gpu_node_selector" {
  description = "Labels of the GPU node pool the GPU replicas are placed on."
  type        = map(string)
  default     = {}
}

variable "extra_values" {
  description = "More chart values as YAML, applied after the module's own (e.g. resources, GPU node selector)."
  type        = string
  default     = ""
}

# --- PostgreSQL ---

variable "manage_app_role" {
  description = "Create the server's database role (and keep its password in step) with a Job run as the owner role before each release; false if you create it yourself (see the README)."
  type        = bool
  default     = true
}

variable "psql_image" {
  description = "Image with psql 15 or later for the role Job (runs as UID 70, the postgres user of the Alpine images)."
  type        = string
  default     = "postgres:17-alpine"
}

variable "database" {
  description = "The database from a cloud module: host, port, name and the owner role's user name."
  type = object({
    host           = string
    port           = number
    name           = string
    owner_username = string
  })
}

variable "database_owner_password" {
  description = "Password of the owner role (used only by the migration job)."
  type        = string
  sensitive   = true
}

variable "app_db_username" {
  description = "Login role the server uses: NOSUPERUSER NOBYPASSRLS, member of codexcontinue_app (see the README)."
  type        = string
  default     = "cc_app"
}

variable "app_db_password" {
  description = "Password of app_db_username; null generates one (read it from the app_db_password output to create the role)."
  type        = string
  default     = null
  sensitive   = true
}

variable "db_sslmode" {
  description = "libpq sslmode of both database URLs: require, verify-ca or verify-full (the last two also need db_sslrootcert)."
  type        = string
  default     = "require"

  validation {
    condition     = contains(["require", "verify-ca", "verify-full"], var.db_sslmode)
    error_message = "Only TLS modes are allowed: require, verify-ca or verify-full."
  }
}

variable "db_sslrootcert" {
  description = "Path, inside the containers, of the CA bundle that signs the database certificate; empty for none. The role Job uses the same URL, so psql_image needs the bundle there too (or set manage_app_role = false)."
  type        = string
  default     = ""
}

# --- Redis ---

variable "redis" {
  description = "The Redis cluster's TLS endpoint from a cloud module."
  type = object({
    host = string
    port = number
  })
}

variable "redis_password" {
  description = "Redis AUTH password; null when the cluster has none."
  type        = string
  default     = null
  sensitive   = true
}

# --- Encryption at rest ---

variable "master_key" {
  description = "Base64 of 32 random bytes wrapping every tenant's data keys; null generates one. Losing it loses all sealed data: back it up outside the database backups."
  type        = string
  default     = null
  sensitive   = true
}
