# `terraform test` for the clara-finetune module against the local stack (make test starts
# Azurite and clara-emulator and exports the provider's environment).

provider "clara" {}

variables {
  cluster = {
    name      = "tftest-ct"
    vm_size   = "Standard_NC6s_v3"
    max_nodes = 1
  }
  environment = {
    name           = "tftest_env"
    image          = "nvcr.io/nvidia/clara-train-sdk:v3.0"
    conda_packages = ["matplotlib"]
  }
  experiment_name = "tftest"
  ngc_content = {
    mmar = {
      url            = "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/versions/1/zip"
      datastore_path = "tftest/mmar"
    }
  }
  mmar_key = "mmar"
  epochs   = 2
}

run "plan_knows_the_shape_before_any_gpu_time" {
  command = plan

  module {
    source = "./modules/clara-finetune"
  }

  assert {
    condition     = azureml_gpu_cluster.this.gpus_per_node == 1
    error_message = "gpus_per_node should be known at plan time from the region's VM sizes."
  }
  assert {
    condition     = startswith(azureml_environment.clara.asset_id, "azureml:tftest_env:c-")
    error_message = "The environment version should be derived from its content at plan time."
  }
}

run "fine_tuning_improves_average_precision" {
  module {
    source = "./modules/clara-finetune"
  }

  assert {
    condition     = abs(output.average_precision_before - 0.8333) < 0.001
    error_message = "Baseline inference should reproduce the walkthrough's 0.833."
  }
  assert {
    condition     = output.average_precision_after > output.average_precision_before
    error_message = "The fine-tuned model should score higher than the pre-trained one."
  }
  assert {
    condition     = alltrue([for r in output.runs : r.status == "Completed"])
    error_message = "Every run should complete."
  }
  assert {
    condition     = startswith(output.exported_model_uri, "azureml://datastores/workspaceblobstore/paths/azureml/")
    error_message = "The exported model should land in the workspace datastore."
  }
}
