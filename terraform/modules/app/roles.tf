# The server's database role: LOGIN, neither SUPERUSER nor BYPASSRLS (row-level security
# keeps tenants apart only for such a role), a member of codexcontinue_app, the group role
# the migrations grant table privileges to. A Job run as the owner role creates it before
# the release installs, and resets its password when that changes. Idempotent; the same
# SQL is in the README for those who create the role themselves.

locals {
  app_role_sql = <<-EOT
    \set ON_ERROR_STOP on
    \getenv app_user APP_DB_USER
    \getenv app_password APP_DB_PASSWORD
    SELECT 'CREATE ROLE codexcontinue_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'
      WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'codexcontinue_app') \gexec
    SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE IN ROLE codexcontinue_app', :'app_user')
      WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') \gexec
    ALTER ROLE :"app_user" WITH LOGIN PASSWORD :'app_password';
  EOT
}

resource "kubernetes_config_map_v1" "app_role" {
  count = var.manage_app_role ? 1 : 0

  metadata {
    name      = "${var.release_name}-app-role"
    namespace = kubernetes_namespace_v1.main.metadata[0].name
  }

  data = {
    "app-role.sql" = local.app_role_sql
  }
}

resource "kubernetes_job_v1" "app_role" {
  count               = var.manage_app_role ? 1 : 0
  wait_for_completion = true

  metadata {
    name      = "${var.release_name}-app-role"
    namespace = kubernetes_namespace_v1.main.metadata[0].name
  }

  spec {
    backoff_limit           = 3
    active_deadline_seconds = 300

    template {
      metadata {
        # A new owner Secret (e.g. a new app password) replaces the Job, so it runs again.
        annotations = {
          "codexcontinue.io/owner-secret-version" = kubernetes_secret_v1.owner.metadata[0].resource_version
        }
      }

      spec {
        restart_policy                  = "Never"
        automount_service_account_token = false

        security_context {
          run_as_non_root = true
          run_as_user     = 70
          run_as_group    = 70
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name              = "psql"
          image             = var.psql_image
          image_pull_policy = "Always"
          command           = ["psql", "--no-psqlrc", "--file=/sql/app-role.sql", "$(DATABASE_URL)"]

          dynamic "env" {
            for_each = toset([local.secret_keys.database_url, "APP_DB_USER", "APP_DB_PASSWORD"])
            content {
              name = env.value
              value_from {
                secret_key_ref {
                  name = kubernetes_secret_v1.owner.metadata[0].name
                  key  = env.value
                }
              }
            }
          }

          volume_mount {
            name       = "sql"
            mount_path = "/sql"
            read_only  = true
          }

          resources {
            requests = { cpu = "50m", memory = "64Mi" }
            limits   = { cpu = "500m", memory = "128Mi" }
          }

          security_context {
            allow_privilege_escalation = false
            privileged                 = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }
        }

        volume {
          name = "sql"
          config_map {
            name = kubernetes_config_map_v1.app_role[0].metadata[0].name
          }
        }
      }
    }
  }

  timeouts {
    create = "5m"
    update = "5m"
  }
}
