//! The CUDA backend (feature `cuda`): cudarc 0.19, which loads the driver, NVRTC and cuBLAS
//! libraries when the GPU is opened (nothing of CUDA is needed to build). One stream; device
//! memory from the stream-ordered allocator; `kernels.cu` compiled by NVRTC for the card's
//! architecture at start-up; products by `cublasSgemm`. This is the only device code that the
//! CPU twin does not run: it forwards each call to CUDA and turns CUDA's errors into ours.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use cudarc::cublas::{CudaBlas, result as blas, sys as blas_sys};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, result, sys};
use cudarc::nvrtc::{CompileOptions, compile_ptx_with_opts};

use super::{Backend, Buffer, GPU_PRELUDE, Gemm, KERNELS_CU, Ptr, Transfers};

/// Threads a block.
const BLOCK: u32 = 256;

pub struct Cuda {
    name: String,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    _module: Arc<CudaModule>,
    functions: Vec<(&'static str, CudaFunction)>,
    transfers: Mutex<Transfers>,
    allocated: Arc<AtomicU64>,
    peak: AtomicU64,
}

impl Cuda {
    /// GPU `ordinal`, with the kernels compiled for it. Any failure (no driver, no GPU, a
    /// missing library, a kernel that does not compile) is an error that says which.
    pub fn open(ordinal: usize) -> Result<Self> {
        // cudarc panics on a library it cannot find or a symbol missing from one: check the
        // libraries first, and catch what remains.
        // SAFETY: these only try to load the libraries.
        let present = unsafe {
            [
                ("the CUDA driver (libcuda.so.1)", sys::is_culib_present()),
                (
                    "NVRTC (libnvrtc.so.13)",
                    cudarc::nvrtc::sys::is_culib_present(),
                ),
                ("cuBLAS (libcublas.so.13)", blas_sys::is_culib_present()),
            ]
        };
        if let Some((what, _)) = present.iter().find(|(_, here)| !here) {
            bail!("{what} was not found");
        }
        std::panic::catch_unwind(|| Self::open_unchecked(ordinal))
            .map_err(|_| anyhow!("CUDA failed to start (see the message above)"))?
    }

    fn open_unchecked(ordinal: usize) -> Result<Self> {
        let ctx = CudaContext::new(ordinal).context("no usable GPU")?;
        let (major, minor) = ctx.compute_capability()?;
        let name = format!("cuda:{ordinal} {}", ctx.name()?);
        let stream = ctx.default_stream();
        let source = format!("{GPU_PRELUDE}\n{KERNELS_CU}");
        let options = CompileOptions {
            // Products and sums rounded as written, as the twin's g++ does.
            fmad: Some(false),
            options: vec![format!("--gpu-architecture=sm_{major}{minor}")],
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(source, options)
            .map_err(|e| anyhow!("the kernels did not compile for sm_{major}{minor}: {e:?}"))?;
        let module = ctx.load_module(ptx).context("loading the kernels")?;
        let functions = super::kernels::layouts()
            .into_iter()
            .map(|(name, ..)| Ok((name, module.load_function(name)?)))
            .collect::<Result<Vec<_>>>()
            .context("finding the kernels")?;
        let blas = CudaBlas::new(stream.clone()).context("starting cuBLAS")?;
        Ok(Self {
            name,
            stream,
            blas,
            _module: module,
            functions,
            transfers: Mutex::default(),
            allocated: Arc::default(),
            peak: AtomicU64::new(0),
        })
    }

    fn count(&self, up: u64, down: u64) {
        let mut t = self.transfers.lock().unwrap_or_else(|e| e.into_inner());
        t.to_device_bytes += up;
        t.from_device_bytes += down;
        t.copies += 1;
    }
}

/// Device memory, freed on its stream when dropped.
struct Memory {
    ptr: sys::CUdeviceptr,
    bytes: u64,
    stream: Arc<CudaStream>,
    allocated: Arc<AtomicU64>,
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: the pointer came from malloc_async on this stream; work that uses it was
        // queued on the same stream before.
        let _ = unsafe { result::free_async(self.ptr, self.stream.cu_stream()) };
        self.allocated.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

impl Backend for Cuda {
    fn name(&self) -> &str {
        &self.name
    }

    fn alloc(&self, len: usize) -> Result<Buffer> {
        let bytes = 4 * len.max(1);
        let s = self.stream.cu_stream();
        // SAFETY: a fresh allocation on our stream, zeroed before anything reads it.
        let ptr = unsafe {
            let ptr = result::malloc_async(s, bytes)
                .map_err(|e| anyhow!("out of GPU memory? allocating {bytes} bytes: {e}"))?;
            result::memset_d8_async(ptr, 0, bytes, s)?;
            ptr
        };
        let now = self.allocated.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
        self.peak.fetch_max(now, Ordering::Relaxed);
        let memory = Memory {
            ptr,
            bytes: bytes as u64,
            stream: self.stream.clone(),
            allocated: self.allocated.clone(),
        };
        Ok(Buffer::new(ptr, len, Box::new(memory)))
    }

    fn upload(&self, to: Ptr, words: &[u32]) -> Result<()> {
        // SAFETY: `to` addresses at least `words.len()` words of our memory; the copy is
        // complete before the call returns for pageable host memory (CUDA's rule).
        unsafe { result::memcpy_htod_async(to, words, self.stream.cu_stream())? };
        self.count(4 * words.len() as u64, 0);
        Ok(())
    }

    fn download(&self, from: Ptr, out: &mut [u32]) -> Result<()> {
        // SAFETY: as for upload; the synchronisation makes the copy complete.
        unsafe { result::memcpy_dtoh_async(out, from, self.stream.cu_stream())? };
        self.stream.synchronize().context("the GPU failed")?;
        self.count(0, 4 * out.len() as u64);
        Ok(())
    }

    fn gemm(&self, g: &Gemm) -> Result<()> {
        let op = |t: bool| {
            if t {
                blas_sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                blas_sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        let int = |v: usize| i32::try_from(v).map_err(|_| anyhow!("a product of size {v}"));
        // SAFETY: the addresses hold the matrices the sizes describe (the callers' buffers).
        unsafe {
            blas::sgemm(
                *self.blas.handle(),
                op(g.trans_a),
                op(g.trans_b),
                int(g.m)?,
                int(g.n)?,
                int(g.k)?,
                &g.alpha,
                g.a as *const f32,
                int(g.lda.max(1))?,
                g.b as *const f32,
                int(g.ldb.max(1))?,
                &g.beta,
                g.c as *mut f32,
                int(g.ldc.max(1))?,
            )
        }
        .map_err(|e| anyhow!("cuBLAS: {e:?}"))
    }

    fn launch_raw(
        &self,
        name: &'static str,
        _twin: unsafe extern "C" fn(*const c_void, *const u32, u32),
        params: *const c_void,
        n: u32,
    ) -> Result<()> {
        let (_, f) = self
            .functions
            .iter()
            .find(|(k, _)| *k == name)
            .ok_or_else(|| anyhow!("no kernel {name}"))?;
        let mut n = n;
        let mut args = [params as *mut c_void, (&mut n as *mut u32).cast()];
        // SAFETY: the kernel takes (NAME_params by value, unsigned n), which `args` points to.
        unsafe {
            result::launch_kernel(
                f.cu_function(),
                (n.div_ceil(BLOCK), 1, 1),
                (BLOCK, 1, 1),
                0,
                self.stream.cu_stream(),
                &mut args,
            )
        }
        .map_err(|e| anyhow!("launching {name}: {e}"))
    }

    fn transfers(&self) -> Transfers {
        *self.transfers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn peak_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}
