//! `azureml_vm_sizes`: the VM sizes Azure ML offers in a region, with GPUs and prices.

use clara_framework::model::encode;
use clara_framework::{
    AttrPath, Attribute, Block, DataSource, Diagnostics, Schema, Type, Value, async_trait,
};
use serde::Serialize;

use crate::azureml::{vm_sizes, vm_sizes_for, workspace_location};
use crate::client::ClaraClient;

pub struct VmSizes;

#[derive(Serialize)]
struct Out {
    id: String,
    workspace_id: String,
    location: String,
    gpu_only: bool,
    sizes: Vec<Size>,
}

#[derive(Serialize)]
struct Size {
    name: String,
    family: String,
    vcpus: i64,
    gpus: i64,
    memory_gb: f64,
    low_priority_capable: bool,
    hourly_price: Option<f64>,
    low_priority_hourly_price: Option<f64>,
    currency: Option<String>,
}

#[async_trait]
impl DataSource<ClaraClient> for VmSizes {
    fn type_name(&self) -> &'static str {
        "azureml_vm_sizes"
    }

    fn schema(&self) -> Schema {
        let size = Block::new("One VM size.")
            .attribute(
                Attribute::string("name")
                    .computed()
                    .describe("Size name, e.g. `Standard_NC12s_v3`."),
            )
            .attribute(
                Attribute::string("family")
                    .computed()
                    .describe("Quota family."),
            )
            .attribute(
                Attribute::number("vcpus")
                    .computed()
                    .describe("Virtual CPUs."),
            )
            .attribute(
                Attribute::number("gpus")
                    .computed()
                    .describe("GPUs per VM."),
            )
            .attribute(
                Attribute::number("memory_gb")
                    .computed()
                    .describe("Memory in GB."),
            )
            .attribute(
                Attribute::bool("low_priority_capable")
                    .computed()
                    .describe("Whether LowPriority nodes are offered."),
            )
            .attribute(
                Attribute::number("hourly_price")
                    .computed()
                    .describe("Estimated Linux dedicated price per hour."),
            )
            .attribute(
                Attribute::number("low_priority_hourly_price")
                    .computed()
                    .describe("Estimated Linux low-priority price per hour."),
            )
            .attribute(
                Attribute::string("currency")
                    .computed()
                    .describe("Currency of the prices, e.g. `USD`."),
            );
        Schema::new(
            0,
            Block::new("Lists the VM sizes Azure ML offers in a region, optionally only those with GPUs, with estimated hourly prices.")
                .attribute(Attribute::string("id").computed().describe("Region-scoped id of the list."))
                .attribute(Attribute::string("workspace_id").optional().computed().describe("Workspace whose subscription is asked. Defaults to the provider's workspace."))
                .attribute(Attribute::string("location").optional().computed().describe("Azure region. Defaults to the workspace's region."))
                .attribute(Attribute::bool("gpu_only").optional().computed().describe("Only sizes with at least one GPU (default `false`)."))
                .attribute(Attribute::new("sizes", Type::List(Box::new(size.object_type()))).computed().describe("The sizes, sorted by name. Each has `name`, `family`, `vcpus`, `gpus`, `memory_gb`, `low_priority_capable`, `hourly_price`, `low_priority_hourly_price` and `currency`.")),
        )
    }

    async fn read(&self, client: &ClaraClient, config: &Value, diags: &mut Diagnostics) -> Value {
        let Some(ws) = client.workspace(config.get("workspace_id"), diags) else {
            return Value::Null;
        };
        let location = match config.get("location").as_str() {
            Some(l) => l.to_string(),
            None => match workspace_location(client, &ws, diags).await {
                Some(l) => l,
                None => return Value::Null,
            },
        };
        let gpu_only = config.get("gpu_only").as_bool().unwrap_or(false);
        // A location the user wrote is named in the diagnostic when Azure ML does not serve it.
        let attr = config
            .get("location")
            .as_str()
            .map(|_| AttrPath::root("location"));
        let found = match attr {
            Some(attr) => vm_sizes_for(client, &ws, &location, Some(attr), diags).await,
            None => vm_sizes(client, &ws, &location, diags).await,
        };
        let Some(all) = found else {
            return Value::Null;
        };
        let mut sizes: Vec<Size> = all
            .into_iter()
            .filter(|s| !gpu_only || s.gpus > 0)
            .map(|s| Size {
                hourly_price: s.hourly_price("Standard"),
                low_priority_hourly_price: s.hourly_price("LowPriority"),
                currency: s
                    .estimated_vm_prices
                    .as_ref()
                    .map(|p| p.billing_currency.clone()),
                name: s.name,
                family: s.family,
                vcpus: s.vcpus,
                gpus: s.gpus,
                memory_gb: s.memory_gb,
                low_priority_capable: s.low_priority_capable,
            })
            .collect();
        sizes.sort_by(|a, b| a.name.cmp(&b.name));
        let out = Out {
            id: format!("{}/vmSizes", ws.location_path(&location)),
            workspace_id: ws.to_string(),
            location,
            gpu_only,
            sizes,
        };
        encode(&out, &self.schema().block.object_type()).unwrap_or_else(|d| {
            diags.extend(d);
            Value::Null
        })
    }
}
