data "azureml_vm_sizes" "gpu" {
  provider = clara
  gpu_only = true
}

output "cheapest_gpu_size" {
  value = [for s in data.azureml_vm_sizes.gpu.sizes : s.name if s.hourly_price == min([for t in data.azureml_vm_sizes.gpu.sizes : t.hourly_price]...)][0]
}
