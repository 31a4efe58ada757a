# Memorystore for Redis Cluster: shards with replicas across zones, reached through
# Private Service Connect addresses in the network, TLS only (server authentication with
# a Google-managed CA), RDB snapshots every hour.

resource "google_network_connectivity_service_connection_policy" "redis" {
  project       = var.project_id
  name          = "${var.name}-redis"
  location      = var.region
  service_class = "gcp-memorystore-redis"
  network       = var.network_id
  description   = "Private Service Connect for the CodexContinue Redis cluster"

  psc_config {
    subnetworks = [var.redis_psc_subnetwork_id]
  }
}

resource "google_redis_cluster" "main" {
  project                     = var.project_id
  name                        = var.name
  region                      = var.region
  shard_count                 = var.redis_shards
  replica_count               = var.redis_replicas_per_shard
  node_type                   = var.redis_node_type
  transit_encryption_mode     = "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION"
  deletion_protection_enabled = var.deletion_protection
  # Memorystore's only authentication is IAM (short-lived tokens as passwords), which the
  # server does not speak: access is limited to the PSC addresses in the private network.
  authorization_mode = "AUTH_MODE_DISABLED"

  psc_configs {
    network = var.network_id
  }

  zone_distribution_config {
    mode = "MULTI_ZONE"
  }

  persistence_config {
    mode = "RDB"
    rdb_config {
      rdb_snapshot_period = "ONE_HOUR"
    }
  }

  depends_on = [google_network_connectivity_service_connection_policy.redis]
}
