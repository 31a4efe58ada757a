//! Which device a model runs on. libtorch's CUDA part is a separate library that the
//! linker drops when nothing names it, so at start the server loads it by hand (when it
//! is there) before asking libtorch whether CUDA is available; a host without it, or
//! without a GPU, runs everything on the CPU.

use std::sync::OnceLock;

use crate::config::DeviceChoice;

use tch::Device;

/// Whether this process can run models on a GPU (checked once).
pub fn cuda_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let loaded = load_libtorch_cuda();
        let available = loaded && tch::Cuda::is_available();
        tracing::info!(
            libtorch_cuda = loaded,
            gpus = if available {
                tch::Cuda::device_count()
            } else {
                0
            },
            "inference devices"
        );
        available
    })
}

/// Loads `libtorch_cuda.so` into the process so that libtorch registers its CUDA
/// backend; `false` when the library is not there (CPU-only libtorch). The one place the
/// server uses `unsafe`: there is no safe way to call `dlopen`.
#[allow(unsafe_code)]
fn load_libtorch_cuda() -> bool {
    // SAFETY: dlopen with a constant, NUL-terminated name; the handle is kept for the
    // life of the process on purpose (the backend must stay registered).
    let handle = unsafe {
        libc::dlopen(
            c"libtorch_cuda.so".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_GLOBAL,
        )
    };
    !handle.is_null()
}

/// The device for `choice`, given whether CUDA is available.
///
/// # Errors
/// A message when `choice` is [`DeviceChoice::Cuda`] and there is no GPU.
pub fn resolve(choice: DeviceChoice, cuda: bool) -> Result<Device, String> {
    match (choice, cuda) {
        (DeviceChoice::Cpu, _) | (DeviceChoice::Auto, false) => Ok(Device::Cpu),
        (DeviceChoice::Auto | DeviceChoice::Cuda, true) => Ok(Device::Cuda(0)),
        (DeviceChoice::Cuda, false) => Err(
            "the model asks for CUDA but this host has no usable GPU (libtorch_cuda.so or a \
             CUDA device is missing); set device = \"auto\" or \"cpu\""
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_follow_the_choice_and_what_the_host_has() {
        assert_eq!(resolve(DeviceChoice::Auto, false), Ok(Device::Cpu));
        assert_eq!(resolve(DeviceChoice::Auto, true), Ok(Device::Cuda(0)));
        assert_eq!(resolve(DeviceChoice::Cpu, true), Ok(Device::Cpu));
        assert_eq!(resolve(DeviceChoice::Cuda, true), Ok(Device::Cuda(0)));
        assert!(resolve(DeviceChoice::Cuda, false).is_err());
    }

    #[test]
    fn this_host_is_probed_without_failing() {
        // CI hosts have no GPU: the probe must answer, not crash, and CPU must work.
        let cuda = cuda_available();
        assert_eq!(
            resolve(DeviceChoice::Auto, cuda).unwrap() == Device::Cpu,
            !cuda
        );
    }
}
