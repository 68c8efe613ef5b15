variable "cluster" {
  description = "The GPU cluster (azure_config.json's aml_compute)."
  type = object({
    name                          = string
    vm_size                       = string
    vm_priority                   = optional(string, "Dedicated")
    min_nodes                     = optional(number, 0)
    max_nodes                     = number
    idle_seconds_before_scaledown = optional(number, 300)
  })
}

variable "environment" {
  description = "The Clara Train environment: base image and packages."
  type = object({
    name           = string
    image          = string
    conda_packages = optional(list(string), [])
    pip_packages   = optional(list(string), [])
  })
}

variable "experiment_name" {
  description = "Azure ML experiment of all runs."
  type        = string
}

variable "ngc_content" {
  description = "NGC content to bring into the workspace, keyed by a stable name."
  type = map(object({
    url            = string
    datastore_path = string
    unpack         = optional(bool, true)
  }))
}

variable "mmar_key" {
  description = "Key in ngc_content of the pre-trained MMAR the runs use."
  type        = string
  validation {
    condition     = length(var.mmar_key) > 0
    error_message = "mmar_key must name an entry of ngc_content."
  }
}

variable "epochs" {
  description = "Fine-tuning epochs."
  type        = number
  default     = 5
}

variable "learning_rate" {
  description = "Fine-tuning learning rate."
  type        = number
  default     = 0.0001
}

variable "run_tags" {
  description = "Tags of every run (update in place; never re-run a job)."
  type        = map(string)
  default     = {}
}

variable "run_timeouts" {
  description = "Longest each kind of run may take; Azure cancels it after that. They also bound each run's estimated_max_cost_usd, shown at plan time."
  type = object({
    inference = optional(string, "1h")
    finetune  = optional(string, "4h")
    export    = optional(string, "1h")
  })
  default = {}
}
