# The walkthrough's ngc_config.json in HCL: the NGC content azureml-ngc-tools downloaded,
# unzipped and uploaded to the workspace's default datastore — now verified (SHA-256 per
# file), resumable, safely unpacked, and tracked in state.
#
#   toolkit key            here
#   url                    url (NGC /zip URLs are fetched file by file through the manifest)
#   localdirectory         local_directory
#   computedirectory       datastore_path
#   zipped + unzip_content unpack (archives are detected; on by default)

terraform {
  required_version = ">= 1.11"
  required_providers {
    clara = {
      source = "clara-ml/clara"
    }
  }
}

provider "clara" {}

variable "local_copies" {
  description = "Also keep unpacked copies under this folder, as the toolkit's additional_content/ did (null: none)."
  type        = string
  default     = null
}

locals {
  # The three entries of ngc_config.json's additional_content.list.
  ngc_content = {
    covid_mmar = {
      url              = "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/versions/1/zip"
      localdirectory   = "clara_train_covid19_3d_ct_classification"
      computedirectory = "clara_train_covid19_3d_ct_classification"
    }
    getting_started = {
      url              = "https://api.ngc.nvidia.com/v2/resources/nvidia/med/getting_started/versions/1/zip"
      localdirectory   = "getting_started"
      computedirectory = "getting_started"
    }
    covid_mmar_pt = {
      url              = "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_pt_covid19_3d_ct_classification/versions/1/zip"
      localdirectory   = "clara_pt_covid19_3d_ct_classification"
      computedirectory = "clara_pt_covid19_3d_ct_classification"
    }
  }
}

resource "ngc_asset" "content" {
  provider = clara
  for_each = local.ngc_content

  url             = each.value.url
  datastore_path  = each.value.computedirectory
  local_directory = var.local_copies == null ? null : "${var.local_copies}/${each.value.localdirectory}"

  data_asset {
    name        = replace(each.key, "_", "-")
    description = "NGC content from ${each.value.url}"
  }
}

output "datastore_uris" {
  value = { for k, a in ngc_asset.content : k => a.datastore_uri }
}

output "file_counts" {
  value = { for k, a in ngc_asset.content : k => a.file_count }
}
