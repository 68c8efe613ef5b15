locals {
  # e.g. a URL copied from a toolkit's ngc_config.json
  toolkit_url = "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/versions/1/zip"
  asset       = provider::clara::parse_ngc_url(local.toolkit_url)
}

resource "ngc_asset" "covid_ct" {
  provider = clara

  # "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  source         = "${join("/", compact([local.asset.org, local.asset.team, local.asset.name]))}:${local.asset.version}"
  type           = local.asset.kind
  datastore_path = "mmars/${local.asset.name}/${local.asset.version}"
}
