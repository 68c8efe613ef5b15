resource "clara_training_run" "finetune" {
  experiment_name = "clara-covid19-ct"
  display_name    = "fine-tune"
  compute         = azureml_gpu_cluster.clara_ct.id
  environment     = azureml_environment.clara_env.id
  command         = "bash $${{inputs.mmar}}/commands/train_finetune.sh --epochs 20 --learning_rate 0.0002"

  input {
    name = "mmar"
    path = ngc_asset.covid_mmar.datastore_uri
  }

  output {
    name = "model"
  }

  service {
    name = "jupyter"
    type = "JupyterLab"
  }

  timeout = "4h"
}
