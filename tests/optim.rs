//! Our Adam (whose state can be saved) against dfdx's Adam: the same parameters after the same
//! updates.

use dfdx::optim::{Adam, AdamConfig, Optimizer as _};
use dfdx::prelude::*;
use wgangp_tui::config::OptimizerKind;
use wgangp_tui::model::params::{read_grads, read_params};
use wgangp_tui::train::optim::{ADAM_BETAS, EPS, Optimizer};

type Net = (Linear<5, 8>, Tanh, Linear<8, 3>);

fn loss<
    M: Module<
            Tensor<Rank2<4, 5>, f64, Cpu, OwnedTape<f64, Cpu>>,
            Output = Tensor<Rank2<4, 3>, f64, Cpu, OwnedTape<f64, Cpu>>,
        >,
>(
    model: &M,
    x: &Tensor<Rank2<4, 5>, f64, Cpu>,
    grads: Gradients<f64, Cpu>,
) -> Gradients<f64, Cpu> {
    let y = model.forward(x.clone().traced(grads));
    (y.square().sum() + 0.5).backward()
}

#[test]
fn our_adam_matches_dfdx_adam() {
    // The paper's betas, and gan-zoo's (PyTorch's defaults).
    for betas in [ADAM_BETAS, [0.9, 0.999]] {
        adam_matches(betas);
    }
}

fn adam_matches(betas: [f64; 2]) {
    let dev = Cpu::seed_from_u64(4);
    let mut theirs = dev.build_module::<Net, f64>();
    let mut ours = theirs.clone();
    let lr = 3e-3;
    let mut their_opt = Adam::new(
        &theirs,
        AdamConfig {
            lr,
            betas,
            eps: EPS,
            weight_decay: None,
        },
    );
    let mut our_opt = Optimizer::<f64>::new(OptimizerKind::Adam, lr, betas);
    for step in 0..20 {
        let x: Tensor<Rank2<4, 5>, f64, _> = dev.sample_normal();
        let g = loss(&theirs, &x, theirs.alloc_grads());
        their_opt.update(&mut theirs, &g).unwrap();
        let g = loss(&ours, &x, ours.alloc_grads());
        let grads = read_grads(&ours, &g);
        our_opt.step(&mut ours, &grads);
        let (a, b) = (read_params(&theirs), read_params(&ours));
        let worst = a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-12,
            "betas {betas:?}, step {step}: parameters differ by {worst}"
        );
    }
    // And the parameters did move.
    let start = read_params(&dev_clone_start());
    assert_ne!(start, read_params(&ours));
}

fn dev_clone_start() -> Net2 {
    Cpu::seed_from_u64(4).build_module::<Net, f64>()
}

type Net2 = <Net as BuildOnDevice<Cpu, f64>>::Built;
