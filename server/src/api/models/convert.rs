//! ModelService conversions: models to proto.

use super::manifest::manifest_to_pb;
use crate::{
    api::convert::timestamp,
    inference::{ModelInfo, ModelState},
    pb::v1 as pb,
};

fn device_of(device: tch::Device) -> pb::Device {
    if device.is_cuda() {
        pb::Device::Cuda
    } else {
        pb::Device::Cpu
    }
}

impl From<ModelInfo> for pb::Model {
    fn from(info: ModelInfo) -> Self {
        let (state, device, error) = match &info.state {
            ModelState::Ready(device) => (pb::ModelState::Ready, device_of(*device), String::new()),
            ModelState::Failed(reason) => (
                pb::ModelState::Failed,
                pb::Device::Unspecified,
                reason.clone(),
            ),
            ModelState::Unloaded => (
                pb::ModelState::Registered,
                pb::Device::Unspecified,
                String::new(),
            ),
        };
        Self {
            id: info.id.clone(),
            manifest: Some(manifest_to_pb(&info.manifest)),
            state: state.into(),
            device: device.into(),
            error,
            tenant_private: info.owner.is_some(),
            size_bytes: i64::try_from(info.size_bytes).unwrap_or(i64::MAX),
            create_time: Some(timestamp(info.created)),
        }
    }
}
