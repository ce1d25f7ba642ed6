//! The layers' products handed to an offload (the path `--device cuda` takes), here to the
//! host twin of the CUDA backend: the training gradients (penalty included) must come out as
//! on the CPU kernels. `gpu-check` runs the same comparison with the real GPU.
//!
//! One test in this binary: installing an offload is process-wide.

use std::sync::Arc;

use wgangp_tui::cmd::gpu_check::{TOLERANCE, compare};
use wgangp_tui::model::kernels::LinearMap;
use wgangp_tui::model::kernels::conv::{ConvGeom, FusedConv};
use wgangp_tui::model::kernels::gemm::flops;
use wgangp_tui::model::offload::{
    HostBackend, Offload, Plan, Transfers, install, installed_name, transfers,
};

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

    // The copies are counted: a layer's product sends its three operands (the output too, as it
    // is added to) to the device and brings the output back, whatever the map.
    let plan = Arc::new(Plan::new(HostBackend, "host twin"));
    install(Some(plan.clone()));
    let kn = FusedConv::new(ConvGeom::conv(8, 8, 4, 2, 1), 3, 5, false);
    let (x, w) = (vec![0.5f32; 2 * 64 * 3], vec![0.25f32; 48 * 5]);
    let mut y = vec![0f32; 2 * 16 * 5];
    let before = transfers();
    wgangp_tui::model::offload::apply(&LinearMap::Conv(kn), &x, &w, &mut y);
    let moved = transfers().since(before);
    install(None);
    assert!(y.iter().all(|&v| v != 0.0), "the product did not run");
    assert_eq!(
        moved,
        Transfers {
            to_device_bytes: 4 * (x.len() + w.len() + y.len()) as u64,
            from_device_bytes: 4 * y.len() as u64,
            copies: 4,
        }
    );
    assert_eq!(plan.transfers(), moved);
    assert_eq!(transfers(), Transfers::default(), "no offload, no copies");
}
