output "covid_model_folder" {
  # "azureml://datastores/workspaceblobstore/paths/clara/models/covid/"
  value = provider::clara::datastore_uri("workspaceblobstore", "clara/models/covid")
}
