//! Loading and unloading models at run time, on this replica. Unloading takes the model
//! out of service for new requests; requests already queued are answered before its
//! worker stops. Loading (again) reads, verifies and warms the model up, on the device
//! asked for, before it replaces the entry.

use super::{
    InferenceError, ModelInfo, ModelState, Registry,
    device::DeviceChoice,
    registry::{Entry, load},
};

impl Registry {
    /// Loads (or reloads) `reference` on `device` (default: as configured); blocks while
    /// the model loads, so call it off the async runtime.
    ///
    /// # Errors
    /// [`InferenceError::NotFound`] for an unknown model; a model that fails to load is
    /// returned as failed, not as an error.
    pub fn load_model(
        &self,
        reference: &str,
        device: Option<DeviceChoice>,
    ) -> Result<ModelInfo, InferenceError> {
        let current = self
            .entry(reference)
            .ok_or_else(|| InferenceError::NotFound(reference.to_owned()))?;
        let mut config = self.loader.config.clone();
        if let Some(device) = device {
            config
                .devices
                .insert(current.info.manifest.name.clone(), device);
        }
        let entry = load(
            current.folder.clone(),
            current.info.manifest.clone(),
            &self.snapshot(),
            &config,
            self.loader.cuda,
            &self.loader.metrics,
        );
        let info = entry.info.clone();
        self.replace(entry);
        Ok(info)
    }

    /// Takes `reference` out of service.
    ///
    /// # Errors
    /// [`InferenceError::NotFound`] for an unknown model.
    pub fn unload_model(&self, reference: &str) -> Result<ModelInfo, InferenceError> {
        let current = self
            .entry(reference)
            .ok_or_else(|| InferenceError::NotFound(reference.to_owned()))?;
        let mut info = current.info.clone();
        info.state = ModelState::Unloaded;
        self.replace(Entry::idle(info.clone(), current.folder.clone()));
        tracing::info!(model = %info.id, "model unloaded");
        Ok(info)
    }

    fn replace(&self, entry: Entry) {
        if let Ok(mut models) = self.models.write() {
            models.insert(entry.info.id.clone(), std::sync::Arc::new(entry));
        }
    }
}
