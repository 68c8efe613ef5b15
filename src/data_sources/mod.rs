//! One file per data source.
pub mod azureml_vm_sizes;
