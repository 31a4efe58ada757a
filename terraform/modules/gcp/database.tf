# Cloud SQL for PostgreSQL with the vector extension (supported on Cloud SQL; the
# migrations create it as the owner role). Private IP only, TLS required, point-in-time
# recovery, encrypted at rest (Google-managed keys unless kms_key_name is set).

resource "google_compute_global_address" "private_services" {
  count         = var.create_private_service_access ? 1 : 0
  project       = var.project_id
  name          = "${var.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = var.network_id
}

resource "google_service_networking_connection" "private_services" {
  count                   = var.create_private_service_access ? 1 : 0
  network                 = var.network_id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services[0].name]
}

resource "random_password" "db_owner" {
  length  = 40
  special = false
}

resource "google_sql_database_instance" "main" {
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY refuses every connection without TLS; the check only accepts TRUSTED_CLIENT_CERTIFICATE_REQUIRED (client certificates), which the chart does not mount.
  #checkov:skip=CKV_GCP_108:Clients are pod IPs without reverse DNS; log_hostname would add a DNS lookup per connection and log nothing readable.
  #checkov:skip=CKV_GCP_111:log_statement = ddl would log ALTER ROLE ... PASSWORD in clear; pgAudit's ddl class records schema changes instead.
  #checkov:skip=CKV2_GCP_13:log_duration writes a line per statement; Query Insights (enabled) covers latency.
  project             = var.project_id
  name                = "${var.name}-postgres"
  region              = var.region
  database_version    = var.db_version
  deletion_protection = var.deletion_protection
  encryption_key_name = var.kms_key_name

  settings {
    tier                        = var.db_tier
    edition                     = "ENTERPRISE"
    availability_type           = var.db_high_availability ? "REGIONAL" : "ZONAL"
    disk_type                   = "PD_SSD"
    disk_size                   = var.db_disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = local.labels

    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
      transaction_log_retention_days = 7
      backup_retention_settings {
        retained_backups = var.db_backup_retention_days
        retention_unit   = "COUNT"
      }
    }

    insights_config {
      query_insights_enabled  = true
      record_application_tags = false
      record_client_address   = false
    }

    # Connections, locks, errors and schema changes (pgAudit's ddl class) are logged;
    # statements are not: their text and parameters carry tenant data, and `log_statement =
    # ddl` would also log ALTER ROLE ... PASSWORD.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_temp_files"
      value = "0"
    }
    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }
    database_flags {
      name  = "log_statement"
      value = "none"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "pgaudit.log"
      value = "ddl"
    }
  }

  depends_on = [google_service_networking_connection.private_services]
}

resource "google_sql_database" "main" {
  project  = var.project_id
  name     = "codexcontinue"
  instance = google_sql_database_instance.main.name
}

# The owner role: runs the migrations (CREATE EXTENSION vector, table ownership). The
# server itself logs in as a separate, unprivileged role (see the README).
resource "google_sql_user" "owner" {
  project  = var.project_id
  name     = "codexcontinue_owner"
  instance = google_sql_database_instance.main.name
  password = random_password.db_owner.result
  # It owns the tables: dropping it would fail, so Terraform only forgets it.
  deletion_policy = "ABANDON"
}
