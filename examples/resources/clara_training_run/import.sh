# A run is imported by its job's Azure Resource Manager id.
terraform import clara_training_run.finetune \
  /subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws/jobs/clara-covid19-ct-0123456789ab
