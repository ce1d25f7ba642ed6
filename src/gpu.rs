//! `wgangp-tui gpu-check`: does dfdx's CUDA backend work on this machine? Builds the device,
//! then runs the same small graph (products, the critic's leaky ReLU, sums and their backward
//! pass) on the GPU and the CPU and compares values and gradients. The first step of moving
//! training onto the GPU, and the first command to run on a GPU machine (see
//! scripts/gpu-check.sh).

use anyhow::{Result, bail};

/// The figures of one check.
#[derive(Debug, serde::Serialize)]
pub struct GpuCheck {
    pub device: String,
    pub loss_cpu: f64,
    pub loss_gpu: f64,
    /// Largest relative error of the GPU's gradients against the CPU's.
    pub grad_rel_err: f64,
}

#[cfg(not(feature = "cuda"))]
pub fn run(_seed: u64) -> Result<GpuCheck> {
    bail!(
        "this wgangp-tui was built without CUDA; build it with --features cuda (README: Building with CUDA)"
    )
}

/// The inputs of the check graph: `x (n, i)`, `w (i, h)`, `v (h,)`, fixed values.
const SIZES: (usize, usize, usize) = (64, 256, 128);

fn inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, i, h) = SIZES;
    let fill = |len: usize, a: usize, scale: f32, shift: f32| -> Vec<f32> {
        (0..len)
            .map(|k| (k * a % 1000) as f32 * scale - shift)
            .collect()
    };
    (
        fill(n * i, 7919, 1.0 / 500.0, 1.0),
        fill(i * h, 104_729, 1.0 / 5000.0, 0.1),
        fill(h, 31, 1.0 / 50.0, 1.0),
    )
}

/// `mean((lrelu(x w) v)^2)` on `dev` with `w` replaced by `w`: the loss and its gradients
/// w.r.t. `w` and `v`. Products, the critic's leaky ReLU, a square, a mean, and their backward
/// passes: the kinds of kernel training uses.
pub fn check_graph<D: dfdx::prelude::Device<f32>>(dev: &D, w: &[f32]) -> (f32, Vec<f32>, Vec<f32>) {
    use dfdx::prelude::*;
    let (n, i, h) = SIZES;
    let (x, _, v) = inputs();
    let x = dev.tensor_from_vec(x, (n, i));
    let w = dev.tensor_from_vec(w.to_vec(), (i, h));
    let v = dev.tensor_from_vec(v, (h,));
    let z = x.leaky_trace().matmul(w.leaky_trace());
    // The critic's leaky ReLU (slope 0.2) as 0.8 relu(z) + 0.2 z.
    let a = z.with_empty_tape().relu() * 0.8 + z * 0.2;
    let s = a
        .matmul(v.leaky_trace().reshape_like(&(h, 1)))
        .square()
        .mean::<Rank0, _>();
    let loss = s.as_vec()[0];
    let grads = s.backward();
    (loss, grads.get(&w).as_vec(), grads.get(&v).as_vec())
}

#[cfg(feature = "cuda")]
pub fn run(seed: u64) -> Result<GpuCheck> {
    use dfdx::prelude::*;

    // cudarc 0.9 unwraps cuInit and panics without a driver: make that an error (quietly).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let built = std::panic::catch_unwind(|| Cuda::try_build(0, seed));
    std::panic::set_hook(hook);
    let gpu = match built {
        Ok(Ok(dev)) => dev,
        Ok(Err(e)) => bail!("CUDA device 0 is not usable: {e:?}"),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            bail!("CUDA device not available (no driver or no GPU): {why}")
        }
    };
    let cpu = Cpu::seed_from_u64(seed);
    let (_, w, _) = inputs();
    let (lc, wc, vc) = check_graph(&cpu, &w);
    let (lg, wg, vg) = check_graph(&gpu, &w);
    let scale = wc
        .iter()
        .chain(&vc)
        .fold(0f32, |m, g| m.max(g.abs()))
        .max(1e-12);
    let err = wc
        .iter()
        .zip(&wg)
        .chain(vc.iter().zip(&vg))
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0f32, f32::max);
    Ok(GpuCheck {
        device: "cuda:0".into(),
        loss_cpu: lc as f64,
        loss_gpu: lg as f64,
        grad_rel_err: err as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check graph's gradient is right on the CPU (central differences), so that the GPU
    /// is compared against a correct reference.
    #[test]
    fn check_graph_gradient_matches_finite_differences() {
        let cpu = dfdx::prelude::Cpu::default();
        let (_, w, _) = inputs();
        let (loss, dw, dv) = check_graph(&cpu, &w);
        assert!(loss.is_finite() && loss > 0.0);
        assert!(dv.iter().any(|g| *g != 0.0));
        for k in [0, 1000, 20_000] {
            let eps = 1e-2;
            let mut plus = w.clone();
            plus[k] += eps;
            let mut minus = w.clone();
            minus[k] -= eps;
            let fd = (check_graph(&cpu, &plus).0 - check_graph(&cpu, &minus).0) / (2.0 * eps);
            let tol = 2e-2 * dw[k].abs().max(1e-2);
            assert!((fd - dw[k]).abs() < tol, "w[{k}]: {fd} vs {}", dw[k]);
        }
    }
}
