//! Azure ML lookups shared by several resources: the workspace and its region's VM sizes.

use serde::Deserialize;

use clara_framework::Diagnostics;

use crate::client::ClaraClient;
use crate::ids::WorkspaceId;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmSize {
    pub name: String,
    #[serde(default)]
    pub family: String,
    #[serde(rename = "vCPUs", default)]
    pub vcpus: i64,
    #[serde(default)]
    pub gpus: i64,
    #[serde(rename = "memoryGB", default)]
    pub memory_gb: f64,
    #[serde(default)]
    pub low_priority_capable: bool,
    #[serde(rename = "estimatedVMPrices", default)]
    pub estimated_vm_prices: Option<VmPrices>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmPrices {
    #[serde(default)]
    pub billing_currency: String,
    #[serde(default)]
    pub values: Vec<VmPrice>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmPrice {
    pub retail_price: f64,
    pub os_type: String,
    pub vm_tier: String,
}

impl VmSize {
    /// Linux hourly price for a tier ("Standard" for dedicated, "LowPriority").
    pub fn hourly_price(&self, tier: &str) -> Option<f64> {
        self.estimated_vm_prices
            .as_ref()?
            .values
            .iter()
            .find(|p| p.os_type == "Linux" && p.vm_tier == tier)
            .map(|p| p.retail_price)
    }
}

/// The workspace's ARM body (asked once per provider process, i.e. one Terraform walk):
/// its region for plan-time checks and its MLflow endpoint for run metrics.
pub async fn workspace(
    client: &ClaraClient,
    ws: &WorkspaceId,
) -> Result<Option<serde_json::Value>, clara_azure::ArmError> {
    let key = ws.to_string().to_lowercase();
    let mut cache = client.lookups.workspaces.lock().await;
    if let Some(body) = cache.get(&key) {
        return Ok(Some(body.clone()));
    }
    let found = client.arm.get_json(&ws.to_string()).await?;
    if let Some(body) = &found {
        cache.insert(key, body.clone());
    }
    Ok(found)
}

/// The workspace's region.
pub async fn workspace_location(
    client: &ClaraClient,
    ws: &WorkspaceId,
    diags: &mut Diagnostics,
) -> Option<String> {
    match workspace(client, ws).await {
        Ok(Some(body)) => body
            .get("location")
            .and_then(|l| l.as_str())
            .map(str::to_string),
        Ok(None) => {
            diags.error(
                "Workspace not found",
                format!(
                    "Azure ML workspace {ws} does not exist or is not visible to this identity."
                ),
            );
            None
        }
        Err(e) => {
            diags.error("Cannot read the Azure ML workspace", e.to_string());
            None
        }
    }
}

pub async fn vm_sizes(
    client: &ClaraClient,
    ws: &WorkspaceId,
    location: &str,
    diags: &mut Diagnostics,
) -> Option<Vec<VmSize>> {
    vm_sizes_for(client, ws, location, None, diags).await
}

/// The region's VM sizes; a region Azure ML does not serve is an error on `attr` (when
/// given), never an empty list.
pub async fn vm_sizes_for(
    client: &ClaraClient,
    ws: &WorkspaceId,
    location: &str,
    attr: Option<clara_framework::AttrPath>,
    diags: &mut Diagnostics,
) -> Option<Vec<VmSize>> {
    // Asked once per provider process (one Terraform walk).
    let path = format!("{}/vmSizes", ws.location_path(location));
    let mut cache = client.lookups.vm_sizes.lock().await;
    if let Some(sizes) = cache.get(&path.to_lowercase()) {
        return Some(sizes.clone());
    }
    let found = match client.arm.get_json(&path).await {
        Ok(Some(body)) => match serde_json::from_value::<Vec<VmSize>>(
            body.get("value").cloned().unwrap_or_default(),
        ) {
            Ok(v) => Some(v),
            Err(e) => {
                diags.error("Unexpected VM size list", e.to_string());
                None
            }
        },
        Ok(None) => {
            unknown_location(location, attr, String::new(), diags);
            None
        }
        Err(e)
            if e.code == "LocationNotAvailableForResourceType"
                || e.code == "NoRegisteredProviderFound" =>
        {
            unknown_location(location, attr, format!(" ({e})"), diags);
            None
        }
        Err(e) => {
            diags.error(
                "Cannot list VM sizes",
                format!("Listing VM sizes in {location}: {e}"),
            );
            None
        }
    };
    if let Some(sizes) = &found {
        cache.insert(path.to_lowercase(), sizes.clone());
    }
    found
}

fn unknown_location(
    location: &str,
    attr: Option<clara_framework::AttrPath>,
    detail: String,
    diags: &mut Diagnostics,
) {
    let summary = "Unknown location";
    let text = format!(
        "Azure ML offers no VM sizes in location \"{location}\": it is not a region where Azure Machine Learning runs for this subscription. Use a region name such as \"eastus\" or \"westeurope\"{detail}."
    );
    match attr {
        Some(path) => diags.attr_error(path, summary, text),
        None => diags.error(summary, text),
    }
}

/// Read-only lookups shared by the resources of one provider process (one Terraform walk),
/// so a plan asks Azure once rather than once per resource and data source.
#[derive(Default)]
pub struct Lookups {
    workspaces: tokio::sync::Mutex<std::collections::HashMap<String, serde_json::Value>>,
    vm_sizes: tokio::sync::Mutex<std::collections::HashMap<String, Vec<VmSize>>>,
}
