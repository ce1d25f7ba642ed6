//! `--device`: where the layers' products run. The CPU kernels always exist; with the `cuda`
//! feature and a GPU, the products go to it (see `offload`).

use std::sync::Arc;

use anyhow::Result;
use clap::ValueEnum;

use crate::config::CPU_DEVICE;
use crate::model::offload::{self, Offload};
use crate::util::say;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Cuda,
}

/// Installs the device `choice` names (`None`: CUDA when this build has it and a GPU is
/// there, else the CPU, saying why) and returns its name for the status line: "cpu" or, e.g.,
/// "cuda:0 NVIDIA H100 80GB HBM3". Asking for CUDA where it cannot run is an error that says
/// why. (A build with CUDA needs the driver's and CUDA's libraries to start at all.)
pub fn select(choice: Option<DeviceChoice>) -> Result<String> {
    let gpu = match choice {
        Some(DeviceChoice::Cpu) => None,
        Some(DeviceChoice::Cuda) => Some(open_cuda()?),
        None => match open_cuda() {
            Ok(gpu) => Some(gpu),
            Err(e) => {
                // A build with CUDA says why it does not use it; one without has no GPU to miss.
                if cfg!(feature = "cuda") {
                    say(format_args!("no GPU used: {e:#}; training on the CPU"));
                }
                None
            }
        },
    };
    let name = gpu
        .as_ref()
        .map_or(CPU_DEVICE.to_string(), |o| o.name().to_string());
    offload::install(gpu);
    Ok(name)
}

/// The `--device` value that selects the device a name came from (for a run that goes on in
/// another process).
pub fn flag_value(name: &str) -> &'static str {
    if name.starts_with("cuda") {
        "cuda"
    } else {
        "cpu"
    }
}

#[cfg(feature = "cuda")]
fn open_cuda() -> Result<Arc<dyn Offload>> {
    Ok(Arc::new(crate::model::offload::cuda::offload(0)?))
}

#[cfg(not(feature = "cuda"))]
fn open_cuda() -> Result<Arc<dyn Offload>> {
    anyhow::bail!(
        "--device cuda: this wgangp-tui was built without CUDA; build it with --features cuda \
         (README: Building with CUDA)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_back_to_their_choice() {
        for (name, flag) in [("cpu", "cpu"), ("cuda:0 NVIDIA H100", "cuda")] {
            let value = flag_value(name);
            assert_eq!(value, flag);
            assert!(
                DeviceChoice::from_str(value, false).is_ok(),
                "{value} is not a --device"
            );
        }
    }
}
