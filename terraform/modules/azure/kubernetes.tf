# A private AKS cluster: API on a private address, Entra ID with Azure RBAC (no local
# accounts), Azure CNI overlay with Cilium network policies, automatic patch upgrades,
# host encryption and ephemeral OS disks on the nodes.

resource "azurerm_kubernetes_cluster" "main" {
  #checkov:skip=CKV_AZURE_4:Monitoring (Container Insights or managed Prometheus) needs a Log Analytics workspace whose retention and cost the operator decides; the module does not pick one.
  #checkov:skip=CKV_AZURE_117:OS disks are ephemeral and host encryption covers temp disks and caches; customer-managed keys need a Key Vault and disk encryption set the operator owns.
  #checkov:skip=CKV_AZURE_172:The Secrets Store CSI driver is not used: the app module writes Kubernetes Secrets, encrypted at rest by AKS.
  name                      = var.name
  location                  = var.location
  resource_group_name       = var.resource_group_name
  dns_prefix                = var.name
  kubernetes_version        = var.kubernetes_version
  sku_tier                  = "Standard"
  private_cluster_enabled   = true
  local_account_disabled    = true
  azure_policy_enabled      = true
  oidc_issuer_enabled       = true
  workload_identity_enabled = true
  automatic_upgrade_channel = "patch"
  node_os_upgrade_channel   = "NodeImage"
  tags                      = local.tags

  identity {
    type = "SystemAssigned"
  }

  azure_active_directory_role_based_access_control {
    azure_rbac_enabled     = true
    admin_group_object_ids = var.admin_group_object_ids
  }

  # System add-ons only; CodexContinue runs in the apps pool below.
  default_node_pool {
    name                         = "system"
    vm_size                      = var.system_node_vm_size
    node_count                   = var.system_node_count
    only_critical_addons_enabled = true
    vnet_subnet_id               = var.aks_subnet_id
    zones                        = ["1", "2", "3"]
    max_pods                     = 110
    os_disk_type                 = "Ephemeral"
    os_disk_size_gb              = 64
    host_encryption_enabled      = var.host_encryption_enabled
    tags                         = local.tags

    upgrade_settings {
      max_surge = "10%"
    }
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
  }
}

resource "azurerm_kubernetes_cluster_node_pool" "apps" {
  name                    = "apps"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.main.id
  vm_size                 = var.node_vm_size
  node_count              = var.node_count
  vnet_subnet_id          = var.aks_subnet_id
  zones                   = ["1", "2", "3"]
  max_pods                = 110
  os_disk_type            = "Ephemeral"
  os_disk_size_gb         = 100
  host_encryption_enabled = var.host_encryption_enabled
  tags                    = local.tags

  upgrade_settings {
    max_surge = "10%"
  }
}

# GPU nodes for local inference: only pods that tolerate the taint land here. AKS installs
# the NVIDIA driver; the NVIDIA device plugin still has to be installed in the cluster.
resource "azurerm_kubernetes_cluster_node_pool" "gpu" {
  count                   = var.gpu_node_count > 0 ? 1 : 0
  name                    = "gpu"
  kubernetes_cluster_id   = azurerm_kubernetes_cluster.main.id
  vm_size                 = var.gpu_vm_size
  node_count              = var.gpu_node_count
  vnet_subnet_id          = var.aks_subnet_id
  max_pods                = 110
  os_disk_type            = "Ephemeral"
  os_disk_size_gb         = 100
  host_encryption_enabled = var.host_encryption_enabled
  node_labels             = { "codexcontinue.io/gpu" = "true" }
  node_taints             = ["nvidia.com/gpu=present:NoSchedule"]
  tags                    = local.tags

  upgrade_settings {
    max_surge = "10%"
  }
}

# The cluster's identity manages load balancers and addresses in the nodes' subnet.
resource "azurerm_role_assignment" "aks_network" {
  scope                = var.aks_subnet_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_kubernetes_cluster.main.identity[0].principal_id
}
