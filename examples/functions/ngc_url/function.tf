terraform {
  required_providers {
    # The local name must be "clara": functions are called as provider::clara::<name>.
    clara = { source = "clara-ml/clara" }
  }
}

locals {
  # The URL the Clara Train toolkit's ngc_config.json lists for the COVID-19 classifier.
  covid_ct_url = provider::clara::ngc_url("model", "nvidia", "med", "clara_train_covid19_3d_ct_classification", "1")
  # An org-level asset: team "" or null.
  org_level_url = provider::clara::ngc_url("resource", "nvidia", null, "clara_mmars", "4.1")
}

output "covid_ct_url" {
  value = local.covid_ct_url
}
