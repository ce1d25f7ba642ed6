//! The gemm-backed matmul op against dfdx's own matmul in f64: the product and both gradients,
//! with and without the transposed right-hand side.

use dfdx::prelude::*;
use wgangp_tui::model::ops::matmul::{matmul, matmul_bias};

type M = Tensor<(usize, usize), f64, Cpu>;

fn max_diff(a: &M, b: &M) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.as_vec()
        .iter()
        .zip(b.as_vec())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn t(x: &M) -> M {
    x.clone().permute::<(usize, usize), _>().contiguous()
}

#[test]
fn matmul_and_its_gradients_match_dfdx() {
    let dev = Cpu::seed_from_u64(7);
    for (m, k, n) in [
        (1, 1, 1),
        (3, 5, 2),
        (17, 64, 9),
        (70, 33, 130),
        // Short sides: the plain-loop products (dot form, row form, and both remainders).
        (50, 43, 3),
        (40, 2, 30),
        (2, 50, 30),
        (37, 513, 1),
    ] {
        for transpose in [false, true] {
            let a: M = dev.sample_normal_like(&(m, k));
            let b: M = dev.sample_normal_like(&if transpose { (n, k) } else { (k, n) });
            // L = sum(C * w): dC = w, not all ones.
            let w: M = dev.sample_normal_like(&(m, n));
            let op_b = if transpose { t(&b) } else { b.clone() };

            let grads = Gradients::leaky();
            let c = matmul(
                a.clone().traced(grads),
                b.clone().retaped::<OwnedTape<f64, Cpu>>(),
                transpose,
            );
            let product = c.retaped::<NoneTape>();
            let grads = (c * w.clone()).sum().backward();

            let at = format!("{m}x{k}x{n}, transposed rhs: {transpose}");
            assert!(
                max_diff(&product, &a.clone().matmul(op_b.clone())) < 1e-12,
                "{at}: product"
            );
            // dA = dC op(B)^T; d op(B) = A^T dC, transposed back to b's layout when needed.
            let da = w.clone().matmul(t(&op_b));
            let d_op_b = t(&a).matmul(w.clone());
            let db = if transpose { t(&d_op_b) } else { d_op_b };
            assert!(max_diff(&grads.get(&a), &da) < 1e-12, "{at}: dA");
            assert!(max_diff(&grads.get(&b), &db) < 1e-12, "{at}: dB");
        }
    }
}

/// The bias-fused product: `op(a b) + bias` per row, and the bias's gradient is the column sums
/// of dC; a and b's gradients as without the bias.
#[test]
fn matmul_bias_and_its_gradients_match_dfdx() {
    let dev = Cpu::seed_from_u64(8);
    for (m, k, n) in [(1, 1, 1), (3, 5, 2), (70, 33, 130)] {
        for transpose in [false, true] {
            let a: M = dev.sample_normal_like(&(m, k));
            let b: M = dev.sample_normal_like(&if transpose { (n, k) } else { (k, n) });
            let bias: Tensor<(usize,), f64, Cpu> = dev.sample_normal_like(&(n,));
            let w: M = dev.sample_normal_like(&(m, n));
            let op_b = if transpose { t(&b) } else { b.clone() };

            let grads = Gradients::leaky();
            let c = matmul_bias(
                a.clone().traced(grads),
                b.clone().retaped::<OwnedTape<f64, Cpu>>(),
                bias.clone().retaped::<OwnedTape<f64, Cpu>>(),
                transpose,
            );
            let product = c.retaped::<NoneTape>();
            let grads = (c * w.clone()).sum().backward();

            let at = format!("{m}x{k}x{n}, transposed rhs: {transpose}");
            let want = a.clone().matmul(op_b.clone())
                + bias
                    .clone()
                    .broadcast_like::<(usize, usize), Axis<0>>(&(m, n));
            assert!(max_diff(&product, &want) < 1e-12, "{at}: product");
            let da = w.clone().matmul(t(&op_b));
            let d_op_b = t(&a).matmul(w.clone());
            let db = if transpose { t(&d_op_b) } else { d_op_b };
            assert!(max_diff(&grads.get(&a), &da) < 1e-12, "{at}: dA");
            assert!(max_diff(&grads.get(&b), &db) < 1e-12, "{at}: dB");
            let dbias = w.clone().sum::<(usize,), Axis<0>>().reshape_like(&(n, 1));
            let got = grads.get(&bias).reshape_like(&(n, 1));
            assert!(max_diff(&got, &dbias) < 1e-12, "{at}: dbias");
        }
    }
}
