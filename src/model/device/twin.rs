//! The CPU twin of the GPU: device memory is host memory, each kernel is `kernels.cu` itself
//! compiled by g++ (build.rs) and run for every thread index in a shuffled order, so a kernel
//! whose threads depend on each other's order shows it, and `sgemm` is a product with
//! cuBLAS's column-major semantics (operands transposed or not, leading dimensions). It is
//! the device backend of the tests and of `--device twin`.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::{Backend, Buffer, Gemm, Ptr, Transfers};

/// Host memory that the kernels write through raw pointers.
struct Words(Box<[u32]>);

// SAFETY: the words are reached only through the device's pointers, by one launch, copy or
// product at a time (the twin's stream is the calling thread).
unsafe impl Send for Words {}
unsafe impl Sync for Words {}

/// Copies so far, and the bytes allocated now and at most.
#[derive(Default)]
struct Counts {
    transfers: Transfers,
    allocated: u64,
    peak: u64,
}

#[derive(Default)]
pub struct Twin {
    /// Launches so far, from `order_seed`: each launch's thread order is shuffled by it.
    launches: AtomicU64,
    counts: Arc<Mutex<Counts>>,
}

impl Twin {
    pub fn new() -> Self {
        Self::default()
    }

    /// A twin whose launches run their threads in other orders than [`Twin::new`]'s.
    pub fn with_order_seed(seed: u64) -> Self {
        Self {
            launches: AtomicU64::new(seed << 32),
            ..Self::default()
        }
    }
}

impl Backend for Twin {
    fn name(&self) -> &str {
        "twin"
    }

    fn alloc(&self, len: usize) -> Result<Buffer> {
        let mut words = vec![0u32; len.max(1)].into_boxed_slice();
        let ptr = words.as_mut_ptr() as Ptr;
        let mut counts = lock(&self.counts);
        counts.allocated += 4 * words.len() as u64;
        counts.peak = counts.peak.max(counts.allocated);
        let memory = Memory(Words(words), self.counts.clone());
        Ok(Buffer::new(ptr, len, Box::new(memory)))
    }

    fn upload(&self, to: Ptr, words: &[u32]) -> Result<()> {
        // SAFETY: `to` is a device address of at least `words.len()` words (the callers'
        // buffers are sized for what they hold).
        unsafe { std::ptr::copy_nonoverlapping(words.as_ptr(), to as *mut u32, words.len()) };
        let mut counts = lock(&self.counts);
        counts.transfers.to_device_bytes += 4 * words.len() as u64;
        counts.transfers.copies += 1;
        Ok(())
    }

    fn download(&self, from: Ptr, out: &mut [u32]) -> Result<()> {
        // SAFETY: as for upload.
        unsafe { std::ptr::copy_nonoverlapping(from as *const u32, out.as_mut_ptr(), out.len()) };
        let mut counts = lock(&self.counts);
        counts.transfers.from_device_bytes += 4 * out.len() as u64;
        counts.transfers.copies += 1;
        Ok(())
    }

    fn gemm(&self, g: &Gemm) -> Result<()> {
        reference_sgemm(g);
        Ok(())
    }

    fn launch_raw(
        &self,
        _name: &'static str,
        twin: unsafe extern "C" fn(*const c_void, *const u32, u32),
        params: *const c_void,
        n: u32,
    ) -> Result<()> {
        let mut order: Vec<u32> = (0..n).collect();
        let launch = self.launches.fetch_add(1, Ordering::Relaxed);
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(launch));
        // SAFETY: `params` points to the kernel's parameter struct (laid out as in C), whose
        // pointers address buffers that hold every index below n.
        unsafe { twin(params, order.as_ptr(), n) };
        Ok(())
    }

    fn transfers(&self) -> Transfers {
        lock(&self.counts).transfers
    }

    fn peak_bytes(&self) -> u64 {
        lock(&self.counts).peak
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer's words, and the counts that drop them from the bytes allocated.
struct Memory(Words, Arc<Mutex<Counts>>);

impl Drop for Memory {
    fn drop(&mut self) {
        let mut counts = lock(&self.1);
        counts.allocated = counts.allocated.saturating_sub(4 * self.0.0.len() as u64);
    }
}

/// `C = alpha op(A) op(B) + beta C` with cuBLAS's column-major semantics: element (i, j) of a
/// column-major matrix with leading dimension ld is at i + j ld, and op transposes or not.
pub fn reference_sgemm(g: &Gemm) {
    let Gemm {
        trans_a,
        trans_b,
        m,
        n,
        k,
        alpha,
        a,
        lda,
        b,
        ldb,
        beta,
        c,
        ldc,
    } = *g;
    if m == 0 || n == 0 {
        return;
    }
    // (row stride, column stride) of op(X) for a column-major X.
    let strides = |trans: bool, ld: usize| {
        if trans {
            (ld as isize, 1)
        } else {
            (1, ld as isize)
        }
    };
    let (a_rs, a_cs) = strides(trans_a, lda);
    let (b_rs, b_cs) = strides(trans_b, ldb);
    if k == 0 {
        // C = beta C.
        for j in 0..n {
            for i in 0..m {
                // SAFETY: C holds m x n elements at leading dimension ldc.
                unsafe {
                    let at = (c as *mut f32).add(i + j * ldc);
                    *at = if beta == 0.0 { 0.0 } else { beta * *at };
                }
            }
        }
        return;
    }
    // SAFETY: the device addresses hold the matrices the sizes and leading dimensions
    // describe, and C overlaps neither input (cuBLAS's contract too).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c as *mut f32,
            ldc as isize,
            1,
            beta != 0.0,
            a as *const f32,
            a_cs,
            a_rs,
            b as *const f32,
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(rayon::current_num_threads()),
        );
    }
}
