# ElastiCache Redis OSS in cluster mode: shards with a replica each across zones, TLS
# required, an AUTH token, encrypted at rest with the module's key.

resource "random_password" "redis_auth" {
  length  = 64
  special = false
}

resource "aws_elasticache_subnet_group" "main" {
  name       = var.name
  subnet_ids = var.private_subnet_ids
  tags       = local.tags
}

resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "Redis, reachable from the EKS cluster only"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "Redis from EKS nodes and pods"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [aws_eks_cluster.main.vpc_config[0].cluster_security_group_id]
  }
}

resource "aws_elasticache_replication_group" "main" {
  replication_group_id = var.name
  description          = "CodexContinue Redis cluster"
  engine               = "redis"
  engine_version       = "7.1"
  node_type            = var.redis_node_type
  port                 = 6379
  parameter_group_name = "default.redis7.cluster.on"

  cluster_mode               = "enabled"
  num_node_groups            = var.redis_shards
  replicas_per_node_group    = var.redis_replicas_per_shard
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.main.name
  security_group_ids = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  transit_encryption_mode    = "required"
  auth_token                 = random_password.redis_auth.result
  auth_token_update_strategy = "ROTATE"

  auto_minor_version_upgrade = true
  snapshot_retention_limit   = 7
  final_snapshot_identifier  = "${var.name}-redis-final"

  tags = local.tags
}
