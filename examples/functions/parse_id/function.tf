locals {
  env = provider::clara::parse_id(azureml_environment.clara_train.id)
}

output "environment_reference" {
  # e.g. "clara-train:4", the name:version form a job's environment takes
  value = "${local.env.name}:${local.env.version}"
}
