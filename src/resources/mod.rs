//! One file per resource type: schema + CRUD.
pub mod azureml_gpu_cluster;
