# PostgreSQL Flexible Server in a delegated subnet (no public access), with the vector
# extension allow-listed (azure.extensions) for the migrations to create as the owner
# role, TLS 1.2+ required, zone-redundant standby and geo-redundant backups. Storage is
# encrypted at rest by the service.

resource "random_password" "db_owner" {
  length  = 40
  special = false
}

resource "azurerm_private_dns_zone" "postgres" {
  name                = "${var.name}.private.postgres.database.azure.com"
  resource_group_name = var.resource_group_name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "postgres" {
  name                  = "${var.name}-postgres"
  resource_group_name   = var.resource_group_name
  private_dns_zone_name = azurerm_private_dns_zone.postgres.name
  virtual_network_id    = var.virtual_network_id
  tags                  = local.tags
}

resource "azurerm_postgresql_flexible_server" "main" {
  #checkov:skip=CKV2_AZURE_57:The server is VNet-integrated (delegated subnet, public access off), the other private networking model; a private endpoint cannot be added to such a server.
  name                          = "${var.name}-postgres"
  resource_group_name           = var.resource_group_name
  location                      = var.location
  version                       = var.db_version
  sku_name                      = var.db_sku
  storage_mb                    = var.db_storage_mb
  auto_grow_enabled             = true
  zone                          = "1"
  delegated_subnet_id           = var.postgres_subnet_id
  private_dns_zone_id           = azurerm_private_dns_zone.postgres.id
  public_network_access_enabled = false
  backup_retention_days         = var.db_backup_retention_days
  geo_redundant_backup_enabled  = var.db_geo_redundant_backup
  # The owner role: runs the migrations (CREATE EXTENSION vector, table ownership). The
  # server itself logs in as a separate, unprivileged role (see the README).
  administrator_login    = "codexcontinue_owner"
  administrator_password = random_password.db_owner.result
  tags                   = local.tags

  authentication {
    password_auth_enabled         = true
    active_directory_auth_enabled = false
  }

  dynamic "high_availability" {
    for_each = var.db_high_availability ? [1] : []
    content {
      mode                      = "ZoneRedundant"
      standby_availability_zone = "2"
    }
  }

  # Azure swaps the zones on failover.
  lifecycle {
    ignore_changes = [zone, high_availability[0].standby_availability_zone]
  }

  depends_on = [azurerm_private_dns_zone_virtual_network_link.postgres]
}

resource "azurerm_postgresql_flexible_server_configuration" "main" {
  for_each = {
    "azure.extensions"         = "VECTOR"
    "require_secure_transport" = "on"
    "ssl_min_protocol_version" = "TLSv1.2"
    "log_checkpoints"          = "on"
    "log_connections"          = "on"
    "log_disconnections"       = "on"
  }
  server_id = azurerm_postgresql_flexible_server.main.id
  name      = each.key
  value     = each.value
}

resource "azurerm_postgresql_flexible_server_database" "main" {
  name      = "codexcontinue"
  server_id = azurerm_postgresql_flexible_server.main.id
  charset   = "UTF8"
  collation = "en_US.utf8"
}

resource "azurerm_management_lock" "postgres" {
  count      = var.deletion_protection ? 1 : 0
  name       = "${var.name}-postgres"
  scope      = azurerm_postgresql_flexible_server.main.id
  lock_level = "CanNotDelete"
  notes      = "CodexContinue data: set deletion_protection = false to remove."
}
