//! The layers' products handed to an offload (the path `--device cuda` takes), here to the
//! host twin of the CUDA backend: the training gradients (penalty included) must come out as
//! on the CPU kernels. `gpu-check` runs the same comparison with the real GPU.
//!
//! One test in this binary: installing an offload is process-wide.

use std::sync::Arc;

use dfdx::prelude::*;

use wgangp_tui::cmd::gpu_check::{TOLERANCE, compare};
use wgangp_tui::model::kernels::LinearMap;
use wgangp_tui::model::kernels::conv::{ConvGeom, FusedConv};
use wgangp_tui::model::kernels::gemm::flops;
use wgangp_tui::model::offload::{
    HostBackend, Offload, Plan, Transfers, install, installed_name, transfers,
};
use wgangp_tui::model::ops::conv::Conv2d;
use wgangp_tui::model::params::update_params;

#[test]
fn gradients_through_the_offload_match_the_cpu_kernels() {
    let plan = Arc::new(Plan::new(HostBackend, "host twin"));
    let before = flops();
    // Small batches: the host twin multiplies element by element.
    let check = compare(plan.clone(), Some(4), &[3, 4, 5]).expect("both configs run");
    // compare runs the same work once on the CPU kernels and once through the plan: the plan
    // ran half of all the products counted, so none of its work fell back to the CPU.
    let total = flops() - before;
    assert!(plan.flops() > 0, "nothing ran on the offload");
    assert_eq!(
        2 * plan.flops(),
        total,
        "the offload ran only part of the work"
    );
    assert_eq!(installed_name(), None, "compare left the offload installed");
    assert_eq!(check.device, "host twin");
    assert_eq!(check.configs.len(), 2);
    for c in &check.configs {
        assert!(
            c.critic_loss_cpu.is_finite() && c.penalty_cpu > 0.0,
            "{c:?}"
        );
        assert!(
            (c.critic_loss_cpu - c.critic_loss_gpu).abs()
                <= 1e-4 * c.critic_loss_cpu.abs().max(1.0),
            "{c:?}"
        );
        assert!(
            (c.penalty_cpu - c.penalty_gpu).abs() <= 1e-4 * c.penalty_cpu.max(1.0),
            "{c:?}"
        );
        // f32 sums in another order: far below what gpu-check accepts.
        assert_eq!(c.critic_grad_rel_errs.len(), 3);
        assert!(c.critic_grad_rel_err < 1e-4, "{c:?}");
        assert!(c.generator_grad_rel_err < 1e-4, "{c:?}");
    }
    assert!(check.ok && check.grad_rel_err <= TOLERANCE);

    // The copies are counted: a product sends its input and its weight to the device and
    // brings the output back (added to the host's there), whatever the map.
    let plan = Arc::new(Plan::new(HostBackend, "host twin"));
    install(Some(plan.clone()));
    let kn = FusedConv::new(ConvGeom::conv(8, 8, 4, 2, 1), 3, 5, false);
    let (x, w) = (vec![0.5f32; 2 * 64 * 3], vec![0.25f32; 48 * 5]);
    let mut y = vec![1f32; 2 * 16 * 5];
    let before = transfers();
    wgangp_tui::model::offload::apply(&LinearMap::Conv(kn), &x, &w, None, &mut y);
    let moved = transfers().since(before);
    install(None);
    // 1 + 16 taps (corners: 9) of 0.5 * 0.25 over 3 channels, added to the 1 already there.
    assert!(y.iter().all(|&v| v > 1.0), "the product was not added");
    assert_eq!(
        moved,
        Transfers {
            to_device_bytes: 4 * (x.len() + w.len()) as u64,
            from_device_bytes: 4 * y.len() as u64,
            copies: 3,
        }
    );
    assert_eq!(plan.transfers(), moved);
    assert_eq!(transfers(), Transfers::default(), "no offload, no copies");

    a_layers_weight_stays_on_the_device_until_the_weights_change();
}

/// A conv layer's weight crosses to the device once, then stays there for its products until
/// the weights are written.
fn a_layers_weight_stays_on_the_device_until_the_weights_change() {
    let dev = Cpu::seed_from_u64(3);
    let mut layer = Conv2d::<3, 5, f32, Cpu, 4, false>::build(&dev);
    let g = ConvGeom::conv(8, 8, 4, 2, 1);
    let dy = vec![1f32; 2 * g.out_pixels() * 5];
    let weight_bytes = 4 * layer.weight.shape().num_elements() as u64;
    let dy_bytes = 4 * dy.len() as u64;
    let plan = Arc::new(Plan::new(HostBackend, "host twin"));
    install(Some(plan.clone()));
    let input_grad = |layer: &Conv2d<3, 5, f32, Cpu, 4, false>| {
        let before = transfers();
        let dyt = dev.tensor_from_vec(dy.clone(), (dy.len() / 5, Const::<5>));
        let dx = layer.input_grad(dyt, g).as_vec();
        (dx, transfers().since(before).to_device_bytes)
    };
    let (first, first_sent) = input_grad(&layer);
    let (again, again_sent) = input_grad(&layer);
    update_params(&mut layer, None, |_, w, _| {
        w.iter_mut().for_each(|v| *v *= 2.0)
    });
    let (updated, updated_sent) = input_grad(&layer);
    install(None);
    assert_eq!(first_sent, dy_bytes + weight_bytes, "the first product");
    assert_eq!(again_sent, dy_bytes, "the weight was sent again unchanged");
    assert_eq!(again, first);
    assert_eq!(
        updated_sent,
        dy_bytes + weight_bytes,
        "the new weight was not sent"
    );
    let doubled: Vec<f32> = first.iter().map(|v| 2.0 * v).collect();
    assert!(
        updated
            .iter()
            .zip(&doubled)
            .all(|(a, b)| (a - b).abs() <= 1e-5 * b.abs().max(1.0)),
        "the old weight was used"
    );
}
