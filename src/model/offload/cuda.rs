//! The CUDA backend of [`offload`](super::offload): buffers through cudarc's driver API,
//! products through cuBLAS, the index kernels compiled from [`KERNELS_CU`] by NVRTC when the
//! device is opened (no nvcc needed, at build time or at run time).

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
use cudarc::driver::{CudaDevice, CudaFunction, CudaSlice, DeviceSlice, LaunchAsync, LaunchConfig};

use super::plan::{Backend, ConvShape, KERNELS_CU, Op, Plan, Sgemm};

pub struct CudaBackend {
    dev: Arc<CudaDevice>,
    blas: CudaBlas,
    im2col: CudaFunction,
    col2im_add: CudaFunction,
}

/// A CUDA call failed in the middle of training: nothing sensible goes on from there, so the
/// training thread panics with what failed (and the front end says so).
fn ok<T, E: std::fmt::Debug>(result: Result<T, E>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("CUDA {what} failed: {e:?}"))
}

/// A device buffer that, dropped while its thread unwinds from a CUDA failure, is leaked
/// rather than freed: cudarc 0.9 unwraps the free, which fails too on a device in an error
/// state, and a second panic during unwinding would abort the process (and leave the
/// terminal in raw mode).
pub struct DeviceBuf(Option<CudaSlice<f32>>);

impl DeviceBuf {
    fn slice(&self) -> &CudaSlice<f32> {
        self.0.as_ref().expect("a live buffer")
    }

    fn slice_mut(&mut self) -> &mut CudaSlice<f32> {
        self.0.as_mut().expect("a live buffer")
    }
}

impl Drop for DeviceBuf {
    fn drop(&mut self) {
        // Taken out either way: freed at the end of this block, or leaked.
        if let Some(slice) = self.0.take()
            && std::thread::panicking()
        {
            let _ = slice.leak();
        }
    }
}

/// Opens CUDA device `ordinal`. cudarc 0.9 panics (unwraps cuInit) where there is no driver:
/// that becomes an error, quietly.
fn open(ordinal: usize) -> Result<Arc<CudaDevice>> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| CudaDevice::new(ordinal));
    std::panic::set_hook(hook);
    match opened {
        Ok(Ok(dev)) => Ok(dev),
        Ok(Err(e)) => bail!("CUDA device {ordinal} is not usable: {e:?}"),
        Err(panic) => bail!(
            "no CUDA device (no driver or no GPU): {}",
            crate::util::panic_message(panic.as_ref())
        ),
    }
}

fn device_name(dev: &CudaDevice) -> String {
    let mut name = [0 as std::ffi::c_char; 256];
    // SAFETY: the buffer is as long as we say, and the driver writes a NUL-terminated string.
    let ok = unsafe {
        cudarc::driver::sys::cuDeviceGetName(name.as_mut_ptr(), name.len() as i32, *dev.cu_device())
    };
    if ok != cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        return String::new();
    }
    // SAFETY: NUL-terminated within the buffer (above).
    unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

impl CudaBackend {
    /// Opens device `ordinal` and compiles the kernels. The name is e.g. "cuda:0 NVIDIA H100".
    pub fn open(ordinal: usize) -> Result<(Self, String)> {
        let dev = open(ordinal)?;
        let name = format!("cuda:{ordinal} {}", device_name(&dev));
        let ptx = cudarc::nvrtc::compile_ptx(KERNELS_CU)
            .map_err(|e| anyhow!("NVRTC cannot compile the conv kernels: {e:?}"))?;
        dev.load_ptx(ptx, "wgangp", &["im2col", "col2im_add"])
            .map_err(|e| anyhow!("cannot load the conv kernels: {e:?}"))?;
        let im2col = dev.get_func("wgangp", "im2col").context("im2col kernel")?;
        let col2im_add = dev
            .get_func("wgangp", "col2im_add")
            .context("col2im_add kernel")?;
        let blas = CudaBlas::new(dev.clone()).map_err(|e| anyhow!("cuBLAS: {e:?}"))?;
        let backend = Self {
            dev,
            blas,
            im2col,
            col2im_add,
        };
        Ok((backend, name))
    }

    /// Runs an index kernel with one thread per element of `to`.
    fn launch(&self, f: &CudaFunction, s: ConvShape, from: &DeviceBuf, to: &mut DeviceBuf) {
        // The kernels index both sides with 32-bit integers.
        let fits = |n: usize| u32::try_from(n).is_ok();
        assert!(
            fits(s.cols_len()) && fits(s.image_len()),
            "a conv of more than 2^32 floats: use a smaller batch"
        );
        let (from, to) = (from.slice(), to.slice_mut());
        let total = to.len() as u32;
        let g = s.g;
        let dims = [
            s.c, g.in_h, g.in_w, g.out_h, g.out_w, g.kernel, g.stride, g.pad,
        ];
        let dims = dims.map(|d| d as u32);
        let [c, in_h, in_w, out_h, out_w, k, stride, pad] = dims;
        let params = (from, to, total, c, in_h, in_w, out_h, out_w, k, stride, pad);
        // SAFETY: the kernels read `from` and write `to` within the sizes `s` gives, which
        // Plan sized both buffers by.
        let launched = unsafe { f.clone().launch(LaunchConfig::for_num_elems(total), params) };
        ok(launched, "kernel launch");
    }
}

impl Backend for CudaBackend {
    type Buf = DeviceBuf;

    fn upload(&self, data: &[f32]) -> DeviceBuf {
        DeviceBuf(Some(ok(self.dev.htod_sync_copy(data), "copy to the GPU")))
    }

    fn scratch(&self, len: usize) -> DeviceBuf {
        // SAFETY: Plan writes a scratch buffer before reading it.
        DeviceBuf(Some(ok(
            unsafe { self.dev.alloc::<f32>(len) },
            "allocation",
        )))
    }

    fn zeros(&self, len: usize) -> DeviceBuf {
        DeviceBuf(Some(ok(self.dev.alloc_zeros::<f32>(len), "allocation")))
    }

    fn download(&self, buf: &DeviceBuf, out: &mut [f32]) {
        ok(
            self.dev.dtoh_sync_copy_into(buf.slice(), out),
            "copy from the GPU",
        );
    }

    fn sgemm(&self, g: Sgemm, a: &DeviceBuf, b: &DeviceBuf, c: &mut DeviceBuf) {
        let op = |o: Op| match o {
            Op::N => cublasOperation_t::CUBLAS_OP_N,
            Op::T => cublasOperation_t::CUBLAS_OP_T,
        };
        let int = |v: usize| i32::try_from(v).expect("a product side of more than 2^31");
        let cfg = GemmConfig {
            transa: op(g.op_a),
            transb: op(g.op_b),
            m: int(g.m),
            n: int(g.n),
            k: int(g.k),
            alpha: g.alpha,
            lda: int(g.lda),
            ldb: int(g.ldb),
            beta: g.beta,
            ldc: int(g.ldc),
        };
        // cuBLAS runs in the calling thread's current context: the shards call from the
        // kernel pool's threads.
        ok(self.dev.bind_to_thread(), "context binding");
        // SAFETY: Plan derives the sizes and leading dimensions from buffers it sized.
        let (a, b, c) = (a.slice(), b.slice(), c.slice_mut());
        ok(unsafe { self.blas.gemm(cfg, a, b, c) }, "cuBLAS sgemm");
    }

    fn im2col(&self, s: ConvShape, x: &DeviceBuf, cols: &mut DeviceBuf) {
        self.launch(&self.im2col, s, x, cols);
    }

    fn col2im_add(&self, s: ConvShape, cols: &DeviceBuf, x: &mut DeviceBuf) {
        self.launch(&self.col2im_add, s, cols, x);
    }
}

/// The offload for CUDA device `ordinal`, and its name.
pub fn offload(ordinal: usize) -> Result<Plan<CudaBackend>> {
    let (backend, name) = CudaBackend::open(ordinal)?;
    Ok(Plan::new(backend, name))
}
