# CodexContinue on a cluster made by one of the cloud modules: a namespace, the two Secrets
# the chart reads (the serving pods' and the migration Job's), a Job that creates the
# server's unprivileged database role, and the Helm release of the chart.

resource "random_password" "app_db" {
  length  = 40
  special = false
}

resource "random_bytes" "master_key" {
  length = 32
}

locals {
  app_db_password = coalesce(var.app_db_password, random_password.app_db.result)
  master_key      = coalesce(var.master_key, random_bytes.master_key.base64)

  db_tls     = var.db_sslrootcert == "" ? "sslmode=${var.db_sslmode}" : "sslmode=${var.db_sslmode}&sslrootcert=${urlencode(var.db_sslrootcert)}"
  db_address = "${var.database.host}:${var.database.port}/${var.database.name}?${local.db_tls}"
  redis_auth = var.redis_password == null ? "" : ":${urlencode(var.redis_password)}@"

  # Key names inside the Secrets: the variables the server reads.
  secret_keys = {
    database_url = "DATABASE_URL"
    redis_url    = "REDIS_URL"
    master_key   = "CODEXCONTINUE_CRYPTO__MASTER_KEY"
  }

  # Every chart value this module sets, in one place (see helm/codexcontinue/values.yaml).
  chart_values = {
    image = {
      repository = var.image_repository
      tag        = var.image_tag
    }
    existingSecret = {
      name = kubernetes_secret_v1.app.metadata[0].name
      keys = {
        databaseUrl = local.secret_keys.database_url
        redisUrl    = local.secret_keys.redis_url
        masterKey   = local.secret_keys.master_key
      }
    }
    migrations = {
      existingSecret = {
        name = kubernetes_secret_v1.owner.metadata[0].name
        key  = local.secret_keys.database_url
      }
    }
    redis = {
      cluster = true
    }
    api = {
      replicas = var.api_replicas
    }
    worker = {
      enabled  = var.worker_replicas > 0
      replicas = var.worker_replicas
    }
    gpu = {
      enabled      = var.gpu_replicas > 0
      replicas     = var.gpu_replicas
      nodeSelector = var.gpu_node_selector
    }
  }
}

resource "kubernetes_namespace_v1" "main" {
  metadata {
    name = var.namespace
    labels = {
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

# What the serving pods read. The database URL names the unprivileged app role.
resource "kubernetes_secret_v1" "app" {
  metadata {
    name      = var.release_name
    namespace = kubernetes_namespace_v1.main.metadata[0].name
  }

  data = {
    (local.secret_keys.database_url) = "postgres://${urlencode(var.app_db_username)}:${urlencode(local.app_db_password)}@${local.db_address}"
    (local.secret_keys.redis_url)    = "rediss://${local.redis_auth}${var.redis.host}:${var.redis.port}"
    (local.secret_keys.master_key)   = local.master_key
  }
}

# What only the migration Job (and the role Job below) reads: the owner role's URL.
resource "kubernetes_secret_v1" "owner" {
  metadata {
    name      = "${var.release_name}-migrations"
    namespace = kubernetes_namespace_v1.main.metadata[0].name
  }

  data = {
    (local.secret_keys.database_url) = "postgres://${urlencode(var.database.owner_username)}:${urlencode(var.database_owner_password)}@${local.db_address}"
    APP_DB_USER                      = var.app_db_username
    APP_DB_PASSWORD                  = local.app_db_password
  }
}

resource "helm_release" "main" {
  name      = var.release_name
  namespace = kubernetes_namespace_v1.main.metadata[0].name
  chart     = var.chart_path
  values    = compact([yamlencode(local.chart_values), var.extra_values])
  # The pre-install hook migrates the database before the pods roll.
  timeout = 900

  depends_on = [kubernetes_job_v1.app_role]
}
