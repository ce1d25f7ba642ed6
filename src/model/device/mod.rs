//! The GPU: the project's own device buffers, one kernel source (`kernels.cu`) and the matrix
//! products (cuBLAS's `sgemm`), behind one small [`Backend`] with two implementations: CUDA
//! (`cuda.rs`, feature `cuda`: cudarc, NVRTC compiling `kernels.cu` at start-up, cuBLAS) and
//! the CPU twin (`twin.rs`: the same `kernels.cu` compiled by g++, every thread index run in
//! a shuffled order, and a product with cuBLAS's column-major semantics). What runs on it is
//! in `net.rs` (a family's layers, forward and backward, and the penalty's input-gradient
//! graph) and `train::device` (whole training steps).
//!
//! `--device` chooses: the CPU (dfdx, the tensors in host memory), `cuda`, or `twin` (the
//! device code on the CPU: slow, for checking by hand what CI checks).

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod kernels;
pub mod net;
pub mod twin;

use std::any::Any;
use std::ffi::c_void;
use std::sync::{Arc, RwLock};

use anyhow::Result;

pub use kernels::{Kernel, NULL, Ptr};

/// One kernel source for both compilers: the GPU's launch wrappers, then the kernels.
pub const KERNELS_CU: &str = include_str!("kernels.cu");
pub const GPU_PRELUDE: &str = include_str!("gpu_prelude.h");

/// Bytes and copies between host and device so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    pub to_device_bytes: u64,
    pub from_device_bytes: u64,
    pub copies: u64,
}

impl Transfers {
    /// What moved between `before` and `self`.
    pub fn since(self, before: Transfers) -> Transfers {
        Transfers {
            to_device_bytes: self.to_device_bytes - before.to_device_bytes,
            from_device_bytes: self.from_device_bytes - before.from_device_bytes,
            copies: self.copies - before.copies,
        }
    }
}

/// `C = alpha op(A) op(B) + beta C`, column-major, as `cublasSgemm` takes it: `op(A)` is
/// `m x k`, `op(B)` `k x n`, `C` `m x n`, each with its leading dimension.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub a: Ptr,
    pub lda: usize,
    pub b: Ptr,
    pub ldb: usize,
    pub beta: f32,
    pub c: Ptr,
    pub ldc: usize,
}

/// A device's memory, products and kernels. All work goes to one stream in order; only
/// [`Backend::download`] waits for it.
pub trait Backend: Send + Sync {
    /// For the status line and config.json: "twin", or e.g. "cuda:0 NVIDIA H200".
    fn name(&self) -> &str;
    /// A buffer of `len` 4-byte words, zeroed.
    fn alloc(&self, len: usize) -> Result<Buffer>;
    /// Copies `words` to the device at `to`.
    fn upload(&self, to: Ptr, words: &[u32]) -> Result<()>;
    /// Waits for the work so far and copies `out.len()` words from `from`.
    fn download(&self, from: Ptr, out: &mut [u32]) -> Result<()>;
    fn gemm(&self, g: &Gemm) -> Result<()>;
    /// Runs kernel `name` (its twin: `twin`) for threads `0..n` with the parameter struct at
    /// `params`.
    fn launch_raw(
        &self,
        name: &'static str,
        twin: unsafe extern "C" fn(*const c_void, *const u32, u32),
        params: *const c_void,
        n: u32,
    ) -> Result<()>;
    fn transfers(&self) -> Transfers;
    /// The most device memory in use so far, in bytes (as far as the backend knows).
    fn peak_bytes(&self) -> u64;
}

/// A device allocation of 4-byte words; freed when dropped.
pub struct Buffer {
    ptr: Ptr,
    len: usize,
    _memory: Box<dyn Any + Send + Sync>,
}

impl Buffer {
    pub fn new(ptr: Ptr, len: usize, memory: Box<dyn Any + Send + Sync>) -> Self {
        Self {
            ptr,
            len,
            _memory: memory,
        }
    }

    pub fn ptr(&self) -> Ptr {
        self.ptr
    }

    /// The address of word `offset`.
    pub fn at(&self, offset: usize) -> Ptr {
        assert!(
            offset <= self.len,
            "offset {offset} past a buffer of {}",
            self.len
        );
        self.ptr + 4 * offset as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// What the device code calls on a backend.
impl dyn Backend + '_ {
    /// Kernel `K` for threads `0..n` (nothing for none).
    pub fn launch<K: Kernel>(&self, params: K, n: usize) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        let n = u32::try_from(n).map_err(|_| anyhow::anyhow!("{}: {n} threads", K::NAME))?;
        self.launch_raw(K::NAME, K::TWIN, (&params as *const K).cast(), n)
    }

    pub fn upload_f32(&self, to: Ptr, values: &[f32]) -> Result<()> {
        self.upload(to, bytemuck::cast_slice(values))
    }

    /// A new buffer holding `values`.
    pub fn buffer_from(&self, values: &[f32]) -> Result<Buffer> {
        let buf = self.alloc(values.len())?;
        self.upload_f32(buf.ptr(), values)?;
        Ok(buf)
    }

    pub fn buffer_from_u32(&self, values: &[u32]) -> Result<Buffer> {
        let buf = self.alloc(values.len())?;
        self.upload(buf.ptr(), values)?;
        Ok(buf)
    }

    /// `len` floats from `from`, after the work so far.
    pub fn read(&self, from: Ptr, len: usize) -> Result<Vec<f32>> {
        let mut out = vec![0u32; len];
        self.download(from, &mut out)?;
        Ok(bytemuck::cast_vec(out))
    }
}

/// The device training runs on from now on (`None`: the CPU): one per process, like the GPU
/// it stands for.
static INSTALLED: RwLock<Option<Arc<dyn Backend>>> = RwLock::new(None);

pub fn install(backend: Option<Arc<dyn Backend>>) {
    *INSTALLED.write().unwrap_or_else(|e| e.into_inner()) = backend;
}

/// The installed device, if training runs on one.
pub fn installed() -> Option<Arc<dyn Backend>> {
    INSTALLED.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Everything the installed device has copied between host and device (nothing without one).
pub fn transfers() -> Transfers {
    installed().map(|b| b.transfers()).unwrap_or_default()
}

/// Where training runs (`--device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Cuda,
    /// The device code on the CPU (the kernels compiled by g++): slow, for checking.
    Twin,
}

/// Installs the device `choice` names for training (`None`: CUDA when this build has it and a
/// GPU is there, else the CPU, saying why) and returns its name for the status line: "cpu",
/// "twin" or, e.g., "cuda:0 NVIDIA H200". Asking for a device that is not there is an error
/// that says why.
pub fn select(choice: Option<DeviceChoice>) -> Result<String> {
    let backend: Option<Arc<dyn Backend>> = match choice {
        Some(DeviceChoice::Cpu) => None,
        Some(DeviceChoice::Twin) => Some(Arc::new(twin::Twin::new())),
        Some(DeviceChoice::Cuda) => Some(open_cuda()?),
        None => match open_cuda() {
            Ok(gpu) => Some(gpu),
            Err(e) => {
                // A build with CUDA says why it does not use it; one without has no GPU to miss.
                if cfg!(feature = "cuda") {
                    crate::util::say(format_args!("no GPU used: {e:#}; training on the CPU"));
                }
                None
            }
        },
    };
    let name = backend
        .as_ref()
        .map_or(crate::config::CPU_DEVICE.to_string(), |b| {
            b.name().to_string()
        });
    install(backend);
    Ok(name)
}

/// The `--device` value that selects the device a name came from (for a run that goes on in
/// another process).
pub fn flag_value(name: &str) -> &'static str {
    if name.starts_with("cuda") {
        "cuda"
    } else if name == "twin" {
        "twin"
    } else {
        "cpu"
    }
}

/// The first GPU, opened once per process (NVRTC compiles the kernels at the first call).
#[cfg(feature = "cuda")]
pub fn open_cuda() -> Result<Arc<dyn Backend>> {
    static OPENED: std::sync::Mutex<Option<Arc<dyn Backend>>> = std::sync::Mutex::new(None);
    let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(gpu) = opened.as_ref() {
        return Ok(gpu.clone());
    }
    let gpu: Arc<dyn Backend> = Arc::new(cuda::Cuda::open(0)?);
    *opened = Some(gpu.clone());
    Ok(gpu)
}

#[cfg(not(feature = "cuda"))]
pub fn open_cuda() -> Result<Arc<dyn Backend>> {
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
        for (name, flag) in [
            ("cpu", "cpu"),
            ("twin", "twin"),
            ("cuda:0 NVIDIA H100", "cuda"),
        ] {
            let value = flag_value(name);
            assert_eq!(value, flag);
            assert!(
                <DeviceChoice as clap::ValueEnum>::from_str(value, false).is_ok(),
                "{value} is not a --device"
            );
        }
    }
}
