output "average_precision_before" {
  description = "Average precision of the pre-trained model on the held-out studies."
  value       = clara_training_run.baseline_inference.metrics["average_precision"]
}

output "average_precision_after" {
  description = "Average precision of the fine-tuned, exported model on the same studies."
  value       = clara_training_run.finetuned_inference.metrics["average_precision"]
}

output "exported_model_uri" {
  description = "Datastore URI of the exported model."
  value       = clara_training_run.export.outputs["exported"]
}

output "jupyterlab_url" {
  description = "JupyterLab endpoint of the fine-tune run (null once it has finished)."
  value       = clara_training_run.finetune.jupyterlab_url
}

output "runs" {
  description = "Name, status and studio URL of each run."
  value = {
    for k, r in {
      baseline_inference  = clara_training_run.baseline_inference
      finetune            = clara_training_run.finetune
      export              = clara_training_run.export
      finetuned_inference = clara_training_run.finetuned_inference
    } : k => { name = r.name, status = r.status, studio_url = r.studio_url }
  }
}
