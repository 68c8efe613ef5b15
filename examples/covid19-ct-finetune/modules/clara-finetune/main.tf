# A reusable Clara fine-tuning pipeline on Azure ML: NGC content, a GPU cluster, a Clara
# Train environment and four runs (baseline inference, fine-tune, export, inference with the
# fine-tuned model), each reading the previous one's outputs.

terraform {
  required_providers {
    clara = {
      source = "clara-ml/clara"
    }
  }
}

resource "ngc_asset" "content" {
  provider = clara
  for_each = var.ngc_content

  url            = each.value.url
  unpack         = each.value.unpack
  datastore_path = each.value.datastore_path
}

resource "azureml_gpu_cluster" "this" {
  provider = clara

  name                          = var.cluster.name
  vm_size                       = var.cluster.vm_size
  vm_priority                   = var.cluster.vm_priority
  min_nodes                     = var.cluster.min_nodes
  max_nodes                     = var.cluster.max_nodes
  idle_seconds_before_scaledown = var.cluster.idle_seconds_before_scaledown
}

resource "azureml_environment" "clara" {
  provider = clara

  name           = var.environment.name
  image          = var.environment.image
  conda_packages = var.environment.conda_packages
  pip_packages   = var.environment.pip_packages
  description    = "Clara Train from ${var.environment.image}"
}

locals {
  mmar = ngc_asset.content[var.mmar_key].datastore_uri
}

# Inference with the pre-trained model on the held-out studies: the "before" figure.
resource "clara_training_run" "baseline_inference" {
  experiment_name = var.experiment_name
  display_name    = "baseline inference"
  compute         = azureml_gpu_cluster.this.id
  environment     = azureml_environment.clara.id
  command         = "bash $${{inputs.mmar}}/commands/infer.sh"
  tags            = var.run_tags
  timeout         = var.run_timeouts.inference

  input {
    name = "mmar"
    path = local.mmar
  }
  output {
    name = "predictions"
  }
}

resource "clara_training_run" "finetune" {
  experiment_name = var.experiment_name
  display_name    = "fine-tune"
  compute         = azureml_gpu_cluster.this.id
  environment     = azureml_environment.clara.id
  command         = "bash $${{inputs.mmar}}/commands/train_finetune.sh --epochs ${var.epochs} --learning_rate ${var.learning_rate}"
  tags            = var.run_tags
  timeout         = var.run_timeouts.finetune

  input {
    name = "mmar"
    path = local.mmar
  }
  output {
    name = "model"
  }
  service {
    name = "jupyter"
    type = "JupyterLab"
  }
}

resource "clara_training_run" "export" {
  experiment_name = var.experiment_name
  display_name    = "export"
  compute         = azureml_gpu_cluster.this.id
  environment     = azureml_environment.clara.id
  command         = "bash $${{inputs.mmar}}/commands/export.sh --model $${{inputs.model}}"
  tags            = var.run_tags
  timeout         = var.run_timeouts.export

  input {
    name = "mmar"
    path = local.mmar
  }
  input {
    name = "model"
    path = clara_training_run.finetune.outputs["model"]
  }
  output {
    name = "exported"
  }
}

resource "clara_training_run" "finetuned_inference" {
  experiment_name = var.experiment_name
  display_name    = "fine-tuned inference"
  compute         = azureml_gpu_cluster.this.id
  environment     = azureml_environment.clara.id
  command         = "bash $${{inputs.mmar}}/commands/infer.sh --model $${{inputs.model}}"
  tags            = var.run_tags
  timeout         = var.run_timeouts.inference

  input {
    name = "mmar"
    path = local.mmar
  }
  input {
    name = "model"
    path = clara_training_run.export.outputs["exported"]
  }
  output {
    name = "predictions"
  }
}
