//! `GET /subscriptions/{s}/providers/Microsoft.MachineLearningServices/locations/{loc}/vmSizes`
//! and the VM size table used to validate computes. Every location that hosts a configured
//! workspace offers the same sizes; prices are plausible pay-as-you-go USD/hour figures.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ArmError, ArmResult};
use super::{ArmPath, check_subscription, respond};
use crate::app::AppState;
use crate::pipeline::RouteExt;

pub struct VmSize {
    pub name: &'static str,
    pub family: &'static str,
    pub vcpus: u32,
    pub gpus: u32,
    pub memory_gb: f64,
    pub max_resource_volume_mb: u64,
    pub low_priority_capable: bool,
    pub premium_io: bool,
    /// (Linux Standard, Linux LowPriority, Windows Standard, Windows LowPriority)
    pub prices: (f64, f64, f64, f64),
}

const OS_VHD_SIZE_MB: u64 = 1_047_552;

const fn size(
    name: &'static str,
    family: &'static str,
    vcpus: u32,
    gpus: u32,
    memory_gb: f64,
    max_resource_volume_mb: u64,
    prices: (f64, f64, f64, f64),
) -> VmSize {
    VmSize {
        name,
        family,
        vcpus,
        gpus,
        memory_gb,
        max_resource_volume_mb,
        low_priority_capable: true,
        premium_io: true,
        prices,
    }
}

pub const VM_SIZES: &[VmSize] = &[
    size(
        "Standard_NC6s_v3",
        "standardNCSv3Family",
        6,
        1,
        112.0,
        344_064,
        (3.06, 0.612, 3.244, 0.796),
    ),
    size(
        "Standard_NC12s_v3",
        "standardNCSv3Family",
        12,
        2,
        224.0,
        688_128,
        (6.12, 1.224, 6.488, 1.592),
    ),
    size(
        "Standard_NC24s_v3",
        "standardNCSv3Family",
        24,
        4,
        448.0,
        1_376_256,
        (12.24, 2.448, 12.976, 3.184),
    ),
    size(
        "Standard_ND40rs_v2",
        "standardNDSv2Family",
        40,
        8,
        672.0,
        2_969_600,
        (22.032, 4.406, 23.872, 6.246),
    ),
    size(
        "Standard_NC24ads_A100_v4",
        "StandardNCADSA100v4Family",
        24,
        1,
        220.0,
        65_536,
        (3.673, 0.735, 4.777, 1.839),
    ),
    size(
        "Standard_NC48ads_A100_v4",
        "StandardNCADSA100v4Family",
        48,
        2,
        440.0,
        131_072,
        (7.346, 1.469, 9.554, 3.677),
    ),
    size(
        "Standard_NC96ads_A100_v4",
        "StandardNCADSA100v4Family",
        96,
        4,
        880.0,
        262_144,
        (14.692, 2.938, 19.108, 7.354),
    ),
    size(
        "Standard_DS3_v2",
        "standardDSv2Family",
        4,
        0,
        14.0,
        28_672,
        (0.229, 0.046, 0.458, 0.275),
    ),
    size(
        "Standard_D4s_v3",
        "standardDSv3Family",
        4,
        0,
        16.0,
        32_768,
        (0.192, 0.038, 0.376, 0.222),
    ),
    size(
        "Standard_F4s_v2",
        "standardFSv2Family",
        4,
        0,
        8.0,
        32_768,
        (0.169, 0.034, 0.353, 0.218),
    ),
    size(
        "Standard_E8s_v3",
        "standardESv3Family",
        8,
        0,
        64.0,
        131_072,
        (0.504, 0.101, 0.872, 0.469),
    ),
];

/// Case-insensitive lookup (`STANDARD_NC6S_V3` matches `Standard_NC6s_v3`).
pub fn find(name: &str) -> Option<&'static VmSize> {
    VM_SIZES.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

impl VmSize {
    pub fn to_json(&self) -> Value {
        let (linux, linux_low, windows, windows_low) = self.prices;
        json!({
            "name": self.name,
            "family": self.family,
            "vCPUs": self.vcpus,
            "gpus": self.gpus,
            "osVhdSizeMB": OS_VHD_SIZE_MB,
            "maxResourceVolumeMB": self.max_resource_volume_mb,
            "memoryGB": self.memory_gb,
            "lowPriorityCapable": self.low_priority_capable,
            "premiumIO": self.premium_io,
            "estimatedVMPrices": {
                "billingCurrency": "USD",
                "unitOfMeasure": "OneHour",
                "values": [
                    { "retailPrice": linux, "osType": "Linux", "vmTier": "Standard" },
                    { "retailPrice": linux_low, "osType": "Linux", "vmTier": "LowPriority" },
                    { "retailPrice": windows, "osType": "Windows", "vmTier": "Standard" },
                    { "retailPrice": windows_low, "osType": "Windows", "vmTier": "LowPriority" },
                ]
            },
            "supportedComputeTypes": ["AmlCompute", "ComputeInstance", "MIR"],
        })
    }
}

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new().route(
        "/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}/vmSizes",
        get(list).arm(app, "vmsizes.list"),
    )
}

#[derive(Deserialize)]
struct LocPath {
    sub: String,
    loc: String,
}

async fn list(State(app): State<AppState>, ArmPath(p): ArmPath<LocPath>) -> ArmResult<Response> {
    check_subscription(&app, &p.sub)?;
    check_location(&app, &p.loc)?;
    let value: Vec<Value> = VM_SIZES.iter().map(VmSize::to_json).collect();
    Ok(respond(
        StatusCode::OK,
        Some(json!({ "value": value })),
        &[],
    ))
}

/// Locations other than those of the configured workspaces are not offered.
pub fn check_location(app: &AppState, loc: &str) -> ArmResult<()> {
    if app.config.serves_location(loc) {
        Ok(())
    } else {
        Err(ArmError::not_found(
            "LocationNotAvailableForResourceType",
            format!(
                "The provided location '{loc}' is not available for resource type '{}/locations/vmSizes'. List of available regions for the resource type is '{}'.",
                super::PROVIDER,
                app.config
                    .workspaces
                    .iter()
                    .map(|w| w.location.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ))
    }
}
