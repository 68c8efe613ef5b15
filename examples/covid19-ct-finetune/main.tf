# The NVIDIA/Microsoft COVID-19 CT walkthrough as one `terraform apply`, read from the
# toolkit's own two JSON files (azureml-ngc-tools' --login and --app configs):
#
#   NGC content → GPU cluster → Clara Train environment → baseline inference →
#   fine-tune → export → inference with the fine-tuned model
#
# The plan shows exactly which GPU jobs a change re-runs: change the fine-tune's
# hyper-parameters and only the fine-tune, export and fine-tuned inference are replaced.

terraform {
  required_version = ">= 1.11"
  required_providers {
    clara = {
      source = "clara-ml/clara"
    }
  }
}

locals {
  azure = jsondecode(file("${path.module}/azure_config.json"))
  ngc   = jsondecode(file("${path.module}/ngc_config.json"))
}

# Sign-in from ARM_* variables (or az login); the workspace from azure_config.json.
provider "clara" {
  subscription_id     = local.azure.azureml_user.subscription_id
  resource_group_name = local.azure.azureml_user.resource_group
  workspace_name      = local.azure.azureml_user.workspace_name
}

variable "epochs" {
  description = "Fine-tuning epochs."
  type        = number
  default     = 5
}

variable "learning_rate" {
  description = "Fine-tuning learning rate."
  type        = number
  default     = 0.0001
}

variable "run_tags" {
  description = "Tags on every run, e.g. a cost centre. They update in place: no job re-runs."
  type        = map(string)
  default     = {}
}

module "covid19_ct" {
  source = "./modules/clara-finetune"

  cluster = {
    name                          = local.azure.aml_compute.ct_name
    vm_size                       = local.azure.aml_compute.vm_name
    vm_priority                   = lower(local.azure.aml_compute.vm_priority) == "lowpriority" ? "LowPriority" : "Dedicated"
    min_nodes                     = local.azure.aml_compute.min_nodes
    max_nodes                     = local.azure.aml_compute.max_nodes
    idle_seconds_before_scaledown = local.azure.aml_compute.idle_seconds_before_scaledown
  }

  environment = {
    name           = local.azure.aml_compute.environment_name
    image          = local.ngc.base_dockerfile
    conda_packages = local.azure.aml_compute.conda_packages
    pip_packages   = local.azure.aml_compute.pip_packages
  }

  experiment_name = local.azure.aml_compute.exp_name

  # ngc_config.json's list, keyed by its computedirectory; the first entry is the MMAR.
  ngc_content = {
    for item in local.ngc.additional_content.list : item.computedirectory => {
      url            = item.url
      datastore_path = item.computedirectory
      unpack         = local.ngc.additional_content.unzip_content && item.zipped
    }
  }
  mmar_key = local.ngc.additional_content.list[0].computedirectory

  epochs        = var.epochs
  learning_rate = var.learning_rate
  run_tags      = var.run_tags
}

output "average_precision_before" {
  description = "Baseline inference on the 3 held-out studies with the pre-trained model."
  value       = module.covid19_ct.average_precision_before
}

output "average_precision_after" {
  description = "The same inference with the fine-tuned, exported model."
  value       = module.covid19_ct.average_precision_after
}

output "exported_model_uri" {
  value = module.covid19_ct.exported_model_uri
}

output "jupyterlab_url" {
  description = "JupyterLab on the fine-tune's node (while it runs), as the walkthrough used."
  value       = module.covid19_ct.jupyterlab_url
}
