# The walkthrough's GPU cluster: `clara-ct`, Standard_NC12s_v3, 0-1 dedicated nodes,
# released after 300 s idle. Sign-in and the default workspace come from the environment
# (ARM_SUBSCRIPTION_ID, ARM_TENANT_ID, ARM_CLIENT_ID, ARM_CLIENT_SECRET,
# CLARA_RESOURCE_GROUP_NAME, CLARA_WORKSPACE_NAME), so this file runs unchanged against
# Azure or the local emulator.

terraform {
  required_version = ">= 1.11"
  required_providers {
    clara = {
      source = "clara-ml/clara"
    }
  }
}

provider "clara" {}

variable "cluster_name" {
  type    = string
  default = "clara-ct"
}

variable "vm_size" {
  type    = string
  default = "Standard_NC12s_v3"
}

variable "max_nodes" {
  type    = number
  default = 1
}

variable "admin_username" {
  type    = string
  default = null
}

variable "admin_password" {
  description = "Optional node password; write-only, so it never reaches the state."
  type        = string
  default     = null
  sensitive   = true
  ephemeral   = true
}

variable "admin_password_version" {
  description = "Change it to re-create the cluster with the current admin_password."
  type        = number
  default     = null
}

data "azureml_vm_sizes" "gpu" {
  provider = clara
  gpu_only = true
}

resource "azureml_gpu_cluster" "clara_ct" {
  provider = clara

  name                          = var.cluster_name
  vm_size                       = var.vm_size
  vm_priority                   = "Dedicated"
  min_nodes                     = 0
  max_nodes                     = var.max_nodes
  idle_seconds_before_scaledown = 300

  admin_username            = var.admin_username
  admin_password_wo         = var.admin_password
  admin_password_wo_version = var.admin_password_version

  tags = {
    project = "clara-covid19-ct"
  }
}

output "cluster_id" {
  value = azureml_gpu_cluster.clara_ct.id
}

output "gpus_per_node" {
  value = azureml_gpu_cluster.clara_ct.gpus_per_node
}

output "max_hourly_cost" {
  description = "Upper bound of the cluster's hourly cost at the region's list price."
  value = one([
    for s in data.azureml_vm_sizes.gpu.sizes : s.hourly_price * azureml_gpu_cluster.clara_ct.max_nodes
    if lower(s.name) == lower(azureml_gpu_cluster.clara_ct.vm_size)
  ])
}
