# A private, VPC-native GKE cluster: nodes without public addresses, the API behind
# authorized networks (private endpoint by default), Workload Identity, Dataplane V2
# (network policies enforced), shielded nodes on a dedicated service account.

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${var.name}-nodes"
  display_name = "CodexContinue GKE nodes"
}

resource "google_project_iam_member" "nodes" {
  for_each = toset(["roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_cluster" "main" {
  #checkov:skip=CKV_GCP_12:Dataplane V2 (ADVANCED_DATAPATH) enforces network policies; the check only sees a network_policy block, which Dataplane V2 must not enable.
  #checkov:skip=CKV_GCP_69:The default node pool is removed at creation; both node pools below set GKE_METADATA (the check reads the cluster's own node_config).
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs the operator's Workspace group (gke-security-groups@<domain>); add authenticator_groups_config where one exists.
  #checkov:skip=CKV_GCP_66:Binary Authorization is only meaningful with an attestation policy for the operator's own images; enabling it with the default allow-all policy would protect nothing.
  project             = var.project_id
  name                = var.name
  location            = var.region
  network             = var.network_id
  subnetwork          = var.subnetwork_id
  deletion_protection = var.deletion_protection
  resource_labels     = local.labels

  # Node pools are managed below; the default one only bootstraps the cluster.
  remove_default_node_pool = true
  initial_node_count       = 1

  networking_mode             = "VPC_NATIVE"
  datapath_provider           = "ADVANCED_DATAPATH"
  enable_intranode_visibility = true
  enable_shielded_nodes       = true

  ip_allocation_policy {
    cluster_secondary_range_name  = var.pods_range_name
    services_secondary_range_name = var.services_range_name
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.enable_private_endpoint
    master_ipv4_cidr_block  = var.master_ipv4_cidr_block
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_cidrs
      content {
        cidr_block = cidr_blocks.value
      }
    }
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  release_channel {
    channel = var.release_channel
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  dynamic "database_encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      state    = "ENCRYPTED"
      key_name = database_encryption.value
    }
  }
}

resource "google_container_node_pool" "general" {
  project            = var.project_id
  name               = "general"
  location           = var.region
  cluster            = google_container_cluster.main.name
  initial_node_count = var.node_count

  autoscaling {
    min_node_count = var.node_count
    max_node_count = var.node_count * 2
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.node_machine_type
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    resource_labels = local.labels
    metadata        = { disable-legacy-endpoints = "true" }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# GPU nodes for local inference. GKE installs the driver and taints the nodes
# nvidia.com/gpu=present:NoSchedule; they carry the label cloud.google.com/gke-accelerator.
resource "google_container_node_pool" "gpu" {
  count      = var.gpu_node_count > 0 ? 1 : 0
  project    = var.project_id
  name       = "gpu"
  location   = var.region
  cluster    = google_container_cluster.main.name
  node_count = var.gpu_node_count

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.gpu_machine_type
    image_type      = "COS_CONTAINERD"
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    resource_labels = local.labels
    metadata        = { disable-legacy-endpoints = "true" }

    guest_accelerator {
      type  = var.gpu_type
      count = 1
      gpu_driver_installation_config {
        gpu_driver_version = "LATEST"
      }
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}
