resource "ngc_asset" "covid_mmar" {
  provider = clara

  source         = "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  datastore_path = "mmars/clara_train_covid19_3d_ct_classification"

  data_asset {
    name        = "clara-covid19-ct-mmar"
    description = "Pre-trained Clara COVID-19 3D CT classification MMAR"
  }
}
