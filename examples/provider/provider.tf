terraform {
  required_providers {
    clara = {
      source = "clara-ml/clara"
    }
  }
}

# Credentials from ARM_TENANT_ID / ARM_CLIENT_ID / ARM_CLIENT_SECRET (or az login).
provider "clara" {
  subscription_id     = "00000000-0000-0000-0000-000000000000"
  resource_group_name = "rg-clara"
  workspace_name      = "clara-ws"
}
