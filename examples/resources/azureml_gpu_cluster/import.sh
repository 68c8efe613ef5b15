# A cluster is imported by its Azure Resource Manager id.
terraform import azureml_gpu_cluster.clara_ct \
  /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws/computes/clara-ct
