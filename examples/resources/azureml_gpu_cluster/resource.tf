resource "azureml_gpu_cluster" "clara_ct" {
  provider = clara

  name                          = "clara-ct"
  vm_size                       = "Standard_NC12s_v3"
  vm_priority                   = "Dedicated"
  min_nodes                     = 0
  max_nodes                     = 1
  idle_seconds_before_scaledown = 300

  tags = {
    project = "clara-covid19-ct"
  }

  timeouts {
    create = "45m"
  }
}
