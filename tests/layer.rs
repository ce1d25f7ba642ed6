//! The fused layer op, `act(x W + b)` in one taped op, against the same layer built from dfdx's
//! own ops in f64: the output, the slopes it reports, and the gradients of the input, the
//! weight and the bias, for every activation and both weight layouts.

use dfdx::prelude::*;
use wgangp_tui::model::kernels::LinearMap;
use wgangp_tui::model::ops::layer::{Activation, layer};

type M = Tensor<(usize, usize), f64, Cpu>;

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn fused_layer_matches_dfdx_ops() {
    let dev = Cpu::seed_from_u64(11);
    let (m, k, n) = (7, 5, 6);
    let slope = 0.2;
    for w_t in [false, true] {
        for kind in ["identity", "relu", "leaky", "sigmoid", "scale"] {
            let x: M = dev.sample_normal_like(&(m, k));
            let w: M = dev.sample_normal_like(&if w_t { (n, k) } else { (k, n) });
            let bias: Tensor<(usize,), f64, Cpu> = dev.sample_normal_like(&(n,));
            let scale: M = dev.sample_normal_like(&(m, n));
            // L = sum(out * r), so that the output's gradient is not all ones.
            let r: M = dev.sample_normal_like(&(m, n));
            let act = match kind {
                "identity" => Activation::Identity,
                "relu" => Activation::Leaky(0.0),
                "leaky" => Activation::Leaky(slope),
                "sigmoid" => Activation::Sigmoid,
                _ => Activation::Scale(scale.as_vec()),
            };

            let grads = Gradients::leaky();
            let (out, slopes) = layer(
                x.clone().traced(grads),
                w.clone().retaped::<OwnedTape<f64, Cpu>>(),
                Some(bias.clone().retaped::<OwnedTape<f64, Cpu>>()),
                LinearMap::Dense { k, n, w_t },
                act,
                true,
            );
            let ours = out.retaped::<NoneTape>().as_vec();
            let g = (out * r.clone()).sum().backward();
            let our_grads = [
                g.get(&x).as_vec(),
                g.get(&w).as_vec(),
                g.get(&bias).as_vec(),
            ];

            let grads = Gradients::leaky();
            let op_w = w.clone().retaped::<OwnedTape<f64, Cpu>>();
            let op_w = if w_t {
                op_w.permute::<(usize, usize), _>()
            } else {
                op_w
            };
            let b = bias.clone().retaped::<OwnedTape<f64, Cpu>>();
            let z = x.clone().traced(grads).matmul(op_w) + b.broadcast_like::<_, Axis<0>>(&(m, n));
            let pre = z.retaped::<NoneTape>().as_vec();
            let y = match kind {
                "identity" => z,
                "relu" => z.relu(),
                "leaky" => z.prelu(slope),
                "sigmoid" => z.sigmoid(),
                _ => z * scale.clone(),
            };
            let want = y.retaped::<NoneTape>().as_vec();
            let g = (y * r).sum().backward();
            let want_grads = [
                g.get(&x).as_vec(),
                g.get(&w).as_vec(),
                g.get(&bias).as_vec(),
            ];

            let case = format!("{kind}, w_t {w_t}");
            assert!(max_diff(&ours, &want) < 1e-12, "{case}: output");
            for (name, (a, b)) in ["x", "w", "bias"]
                .iter()
                .zip(our_grads.iter().zip(&want_grads))
            {
                assert!(max_diff(a, b) < 1e-12, "{case}: gradient of {name}");
                assert!(b.iter().any(|v| v.abs() > 1e-3), "{case}: {name} untouched");
            }
            match kind {
                "relu" | "leaky" => {
                    let s = if kind == "relu" { 0.0 } else { slope };
                    let want: Vec<f64> =
                        pre.iter().map(|&z| if z > 0.0 { 1.0 } else { s }).collect();
                    assert_eq!(slopes.as_deref(), Some(&want[..]), "{case}: slopes");
                    assert!(
                        want.contains(&1.0) && want.contains(&s),
                        "{case}: both signs"
                    );
                }
                _ => assert_eq!(slopes, None, "{case}: no slopes"),
            }
        }
    }
}

/// The MNIST generator (its transposed convs with bias, ReLU and the final sigmoid, all fused
/// layer ops) against central finite differences in f64, on a sample of its parameters.
#[test]
fn mnist_generator_gradients_match_finite_differences() {
    use wgangp_tui::model::Generator;
    use wgangp_tui::model::mnist::{MNIST_NOISE, MNIST_PIXELS, MnistGenerator};
    use wgangp_tui::model::params::{read_grads, read_params, write_params};

    let dev = Cpu::seed_from_u64(3);
    let generator = MnistGenerator::<f64, Cpu>::build(&dev);
    let mut probe = generator.clone();
    let batch = 2;
    let z: Tensor<(usize, Const<MNIST_NOISE>), f64, Cpu> = dev.sample_normal_like(&(batch, Const));
    let r: Tensor<(usize, Const<MNIST_PIXELS>), f64, Cpu> = dev.sample_normal_like(&(batch, Const));
    let loss = |g: &MnistGenerator<f64, Cpu>| -> f64 {
        (g.generate(z.clone()) * r.clone())
            .sum::<Rank0, _>()
            .array()
    };
    let grads = (generator.generate(z.clone().traced(generator.alloc_grads())) * r.clone())
        .sum::<Rank0, _>()
        .backward();
    let analytic = read_grads(&generator, &grads);
    let params = read_params(&generator);
    let h = 1e-6;
    let mut checked = 0;
    for (t, values) in params.iter().enumerate() {
        // A spread of entries of every tensor, the largest gradients among them included.
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| analytic[t][b].abs().total_cmp(&analytic[t][a].abs()));
        let picks = order
            .iter()
            .take(3)
            .chain(order.iter().step_by(values.len() / 3 + 1));
        for &j in picks {
            let mut p = params.clone();
            p[t][j] += h;
            write_params(&mut probe, &p);
            let plus = loss(&probe);
            p[t][j] -= 2.0 * h;
            write_params(&mut probe, &p);
            let minus = loss(&probe);
            let numeric = (plus - minus) / (2.0 * h);
            let a = analytic[t][j];
            let err = (a - numeric).abs() / a.abs().max(numeric.abs()).max(1e-3);
            assert!(err < 1e-4, "tensor {t} entry {j}: {a} vs {numeric}");
            checked += 1;
        }
        assert!(
            analytic[t].iter().any(|g| g.abs() > 1e-4),
            "tensor {t} has no gradient"
        );
    }
    assert!(checked >= 40, "{checked} entries checked");
}

/// Inside `with_frozen_weights` a layer passes gradients to its input as usual and computes
/// none for its weight and bias.
#[test]
fn frozen_weights_get_no_gradient_and_pass_the_same_one_on() {
    use wgangp_tui::model::ops::layer::with_frozen_weights;
    let dev = Cpu::seed_from_u64(12);
    let (m, k, n) = (6, 5, 4);
    let x: M = dev.sample_normal_like(&(m, k));
    let w: M = dev.sample_normal_like(&(n, k));
    let bias: Tensor<(usize,), f64, Cpu> = dev.sample_normal_like(&(n,));
    let r: M = dev.sample_normal_like(&(m, n));
    let run = || {
        let (out, _) = layer(
            x.clone().traced(Gradients::leaky()),
            w.clone().retaped::<OwnedTape<f64, Cpu>>(),
            Some(bias.clone().retaped::<OwnedTape<f64, Cpu>>()),
            LinearMap::Dense { k, n, w_t: true },
            Activation::Leaky(0.2),
            false,
        );
        (out * r.clone()).sum().backward()
    };
    let trained = run();
    let mut frozen = with_frozen_weights(run);
    assert!(max_diff(&trained.get(&x).as_vec(), &frozen.get(&x).as_vec()) < 1e-15);
    assert!(trained.get(&w).as_vec().iter().any(|g| *g != 0.0));
    for g in [
        frozen.get_or_alloc_mut(&w).unwrap().to_vec(),
        frozen.get_or_alloc_mut(&bias).unwrap().to_vec(),
    ] {
        assert!(
            g.iter().all(|g| *g == 0.0),
            "a frozen parameter got a gradient"
        );
    }
}
