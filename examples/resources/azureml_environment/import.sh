# An environment version is imported by its Azure Resource Manager id.
terraform import azureml_environment.clara_env \
  /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws/environments/clara_env/versions/1
