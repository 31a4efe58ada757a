variable "name" {
  description = "Prefix of every resource name (lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "The name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC that holds the cluster, the database and Redis."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (at least two availability zones) for nodes, database and Redis."
  type        = list(string)
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- Kubernetes (EKS) ---

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.33"
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API on a public endpoint too, limited to public_access_cidrs (required then). The private endpoint is always on."
  type        = bool
  default     = false
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public Kubernetes API endpoint, when it is enabled."
  type        = list(string)
  default     = []
}

variable "node_instance_type" {
  description = "Instance type of the general node group."
  type        = string
  default     = "m6i.xlarge"
}

variable "node_count" {
  description = "Nodes in the general node group (it scales between this and twice as many)."
  type        = number
  default     = 2
}

variable "gpu_node_count" {
  description = "Nodes in the GPU node group (tainted nvidia.com/gpu); 0 creates no GPU group."
  type        = number
  default     = 0
}

variable "gpu_instance_type" {
  description = "Instance type of the GPU node group."
  type        = string
  default     = "g5.xlarge"
}

# --- PostgreSQL (RDS) ---

variable "db_engine_version" {
  description = "RDS PostgreSQL major version (16 or later; pgvector ships with it)."
  type        = string
  default     = "18"

  validation {
    condition     = can(regex("^[0-9]+$", var.db_engine_version)) && tonumber(var.db_engine_version) >= 16
    error_message = "Use a PostgreSQL major version of 16 or later, e.g. \"18\"."
  }
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "db_allocated_storage" {
  description = "Initial storage in GiB (autoscaling up to four times as much)."
  type        = number
  default     = 50
}

variable "db_multi_az" {
  description = "Keep a synchronous standby in another availability zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Refuse to delete the database (turn off only to tear an environment down; final snapshots are taken either way)."
  type        = bool
  default     = true
}

# --- Redis (ElastiCache, cluster mode) ---

variable "redis_node_type" {
  description = "ElastiCache node type."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_shards" {
  description = "Node groups (shards) of the Redis cluster."
  type        = number
  default     = 2
}

variable "redis_replicas_per_shard" {
  description = "Replicas per shard (at least 1 for automatic failover)."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_replicas_per_shard >= 1
    error_message = "Automatic failover in cluster mode needs at least one replica per shard."
  }
}
