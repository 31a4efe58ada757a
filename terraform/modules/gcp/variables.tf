variable "name" {
  description = "Prefix of every resource name (lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,24}$", var.name))
    error_message = "The name must be 2-25 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "project_id" {
  description = "Google Cloud project."
  type        = string
}

variable "region" {
  description = "Region of the cluster, the database and Redis."
  type        = string
}

variable "network_id" {
  description = "VPC network (projects/P/global/networks/N)."
  type        = string
}

variable "subnetwork_id" {
  description = "Subnetwork of the GKE nodes, with secondary ranges for pods and services."
  type        = string
}

variable "pods_range_name" {
  description = "Secondary range of the subnetwork for pods."
  type        = string
}

variable "services_range_name" {
  description = "Secondary range of the subnetwork for services."
  type        = string
}

variable "redis_psc_subnetwork_id" {
  description = "Subnetwork where Private Service Connect gives the Redis cluster its addresses."
  type        = string
}

variable "kms_key_name" {
  description = "Cloud KMS key (projects/.../cryptoKeys/K) that encrypts Kubernetes Secrets and the database instead of Google-managed keys; the GKE and Cloud SQL service agents need encrypt/decrypt on it. null: Google-managed keys."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels added to every resource that takes them."
  type        = map(string)
  default     = {}
}

# --- Kubernetes (GKE) ---

variable "master_ipv4_cidr_block" {
  description = "/28 range for the GKE control plane's private endpoint."
  type        = string
  default     = "172.16.0.0/28"
}

variable "master_authorized_cidrs" {
  description = "CIDRs allowed to reach the Kubernetes API (e.g. the network Terraform runs from)."
  type        = list(string)
  default     = []
}

variable "enable_private_endpoint" {
  description = "Serve the Kubernetes API on its private address only."
  type        = bool
  default     = true
}

variable "release_channel" {
  description = "GKE release channel."
  type        = string
  default     = "REGULAR"
}

variable "node_machine_type" {
  description = "Machine type of the general node pool."
  type        = string
  default     = "e2-standard-4"
}

variable "node_count" {
  description = "Nodes per zone in the general node pool."
  type        = number
  default     = 1
}

variable "gpu_node_count" {
  description = "Nodes per zone in the GPU node pool; 0 creates no GPU pool."
  type        = number
  default     = 0
}

variable "gpu_machine_type" {
  description = "Machine type of the GPU node pool."
  type        = string
  default     = "g2-standard-8"
}

variable "gpu_type" {
  description = "Accelerator type of the GPU node pool."
  type        = string
  default     = "nvidia-l4"
}

# --- PostgreSQL (Cloud SQL) ---

variable "db_version" {
  description = "Cloud SQL PostgreSQL version (16 or later; the vector extension is supported)."
  type        = string
  default     = "POSTGRES_18"

  validation {
    condition     = can(regex("^POSTGRES_[0-9]+$", var.db_version)) && tonumber(trimprefix(var.db_version, "POSTGRES_")) >= 16
    error_message = "Use POSTGRES_16 or later."
  }
}

variable "db_tier" {
  description = "Cloud SQL machine tier."
  type        = string
  default     = "db-custom-2-8192"
}

variable "db_disk_size_gb" {
  description = "Initial disk size in GB (grows automatically)."
  type        = number
  default     = 50
}

variable "db_high_availability" {
  description = "REGIONAL (a standby in another zone) rather than ZONAL."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups kept."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Refuse to delete the database, Redis and the cluster (turn off only to tear an environment down)."
  type        = bool
  default     = true
}

variable "create_private_service_access" {
  description = "Reserve a range and peer the network with Google services for Cloud SQL's private IP; false if the network already has it."
  type        = bool
  default     = true
}

# --- Redis (Memorystore for Redis Cluster) ---

variable "redis_node_type" {
  description = "Memorystore Redis Cluster node type."
  type        = string
  default     = "REDIS_HIGHMEM_MEDIUM"
}

variable "redis_shards" {
  description = "Shards of the Redis cluster."
  type        = number
  default     = 3
}

variable "redis_replicas_per_shard" {
  description = "Replicas per shard."
  type        = number
  default     = 1
}
