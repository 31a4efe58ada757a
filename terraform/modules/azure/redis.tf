# Azure Managed Redis (the successor of Azure Cache for Redis Enterprise) with the OSS
# cluster policy, TLS only, reachable only through a private endpoint, access-key
# authentication (the server sends the key as its Redis password), hourly RDB snapshots.

resource "azurerm_managed_redis" "main" {
  name                      = var.name
  resource_group_name       = var.resource_group_name
  location                  = var.location
  sku_name                  = var.redis_sku
  high_availability_enabled = true
  public_network_access     = "Disabled"
  tags                      = local.tags

  default_database {
    clustering_policy                           = "OSSCluster"
    client_protocol                             = "Encrypted"
    access_keys_authentication_enabled          = true
    persistence_redis_database_backup_frequency = "1h"
  }
}

resource "azurerm_private_dns_zone" "redis" {
  name                = "privatelink.redis.azure.net"
  resource_group_name = var.resource_group_name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "redis" {
  name                  = "${var.name}-redis"
  resource_group_name   = var.resource_group_name
  private_dns_zone_name = azurerm_private_dns_zone.redis.name
  virtual_network_id    = var.virtual_network_id
  tags                  = local.tags
}

resource "azurerm_private_endpoint" "redis" {
  name                = "${var.name}-redis"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = local.tags

  private_service_connection {
    name                           = "${var.name}-redis"
    private_connection_resource_id = azurerm_managed_redis.main.id
    subresource_names              = ["redisEnterprise"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "redis"
    private_dns_zone_ids = [azurerm_private_dns_zone.redis.id]
  }
}
