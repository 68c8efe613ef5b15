resource "azureml_environment" "clara_env" {
  provider = clara

  name           = "clara_env"
  image          = "nvcr.io/nvidia/clara-train-sdk:v3.0"
  conda_packages = ["matplotlib"]
  pip_packages   = ["jupyterlab"]
  description    = "Clara Train SDK v3.0 with JupyterLab"
}
