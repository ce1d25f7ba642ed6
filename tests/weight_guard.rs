//! A weight written around `model::params::update_params` would leave a layer's cached copy
//! (`model::ops::weights`) in use: builds with debug assertions (the tests) stop there. Alone in
//! its test binary, because any update elsewhere in the process would make the copy stale in
//! the rules' eyes and hide the write.

use dfdx::prelude::*;
use wgangp_tui::model::kernels::conv::ConvGeom;
use wgangp_tui::model::ops::conv::Conv2d;

#[cfg(debug_assertions)]
#[test]
#[should_panic(expected = "changed without model::params::update_params")]
fn a_weight_written_around_update_params_is_caught() {
    let dev = Cpu::seed_from_u64(25);
    let g = ConvGeom::conv(8, 8, 4, 2, 1);
    let mut layer = Conv2d::<3, 5, f64, Cpu, 4, false>::build(&dev);
    let dy = || dev.ones_like(&(2 * g.out_pixels(), Const::<5>));
    let _ = layer.input_grad(dy(), g);
    let doubled = layer.weight.clone() * 2.0;
    layer.weight.copy_from(&doubled.as_vec());
    let _ = layer.input_grad(dy(), g);
}
