variable "name" {
  description = "Prefix of every resource name (lowercase letters, digits and dashes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "The name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "location" {
  description = "Azure region."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group that receives every resource."
  type        = string
}

variable "virtual_network_id" {
  description = "Virtual network the private DNS zones are linked to."
  type        = string
}

variable "aks_subnet_id" {
  description = "Subnet of the AKS nodes."
  type        = string
}

variable "postgres_subnet_id" {
  description = "Subnet delegated to Microsoft.DBforPostgreSQL/flexibleServers."
  type        = string
}

variable "private_endpoint_subnet_id" {
  description = "Subnet of the Redis private endpoint."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- Kubernetes (AKS) ---

variable "kubernetes_version" {
  description = "AKS Kubernetes version; null takes the region's default."
  type        = string
  default     = null
}

variable "admin_group_object_ids" {
  description = "Entra ID groups that administer the cluster (local accounts are disabled)."
  type        = list(string)
}

variable "system_node_vm_size" {
  description = "VM size of the system node pool (AKS add-ons only; its temp disk must hold a 64 GB ephemeral OS disk)."
  type        = string
  default     = "Standard_D2ds_v5"
}

variable "system_node_count" {
  description = "Nodes in the system node pool (spread over zones 1-3)."
  type        = number
  default     = 2
}

variable "node_vm_size" {
  description = "VM size of the apps node pool, where CodexContinue runs (its temp disk must hold a 100 GB ephemeral OS disk)."
  type        = string
  default     = "Standard_D4ds_v5"
}

variable "node_count" {
  description = "Nodes in the apps node pool (spread over zones 1-3)."
  type        = number
  default     = 3
}

variable "gpu_node_count" {
  description = "Nodes in the GPU node pool (tainted nvidia.com/gpu); 0 creates no GPU pool."
  type        = number
  default     = 0
}

variable "gpu_vm_size" {
  description = "VM size of the GPU node pool."
  type        = string
  default     = "Standard_NC4as_T4_v3"
}

variable "host_encryption_enabled" {
  description = "Encrypt node temp disks and caches at the host (needs the EncryptionAtHost feature registered on the subscription)."
  type        = bool
  default     = true
}

# --- PostgreSQL (Flexible Server) ---

variable "db_version" {
  description = "PostgreSQL major version (16 or later)."
  type        = string
  default     = "18"

  validation {
    condition     = can(regex("^[0-9]+$", var.db_version)) && tonumber(var.db_version) >= 16
    error_message = "Use a PostgreSQL major version of 16 or later, e.g. \"18\"."
  }
}

variable "db_sku" {
  description = "Flexible Server SKU."
  type        = string
  default     = "GP_Standard_D2ds_v5"
}

variable "db_storage_mb" {
  description = "Initial storage in MB (grows automatically)."
  type        = number
  default     = 65536
}

variable "db_high_availability" {
  description = "Keep a zone-redundant standby."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (7 to 35)."
  type        = number
  default     = 14
}

variable "db_geo_redundant_backup" {
  description = "Copy backups to the paired region."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Lock the database against deletion (remove only to tear an environment down)."
  type        = bool
  default     = true
}

# --- Redis (Azure Managed Redis) ---

variable "redis_sku" {
  description = "Azure Managed Redis SKU."
  type        = string
  default     = "Balanced_B3"
}
