//! The conv layers keep their weight transposed for the products that read it so
//! (`model::ops::weights`): the products come out as from the weight read afresh, and a copy
//! made before the weights change is not used after.

mod common;

use common::{max_err, random};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use wgangp_tui::model::kernels::conv::ConvGeom;
use wgangp_tui::model::ops::conv::{Conv2d, ConvTranspose2d, conv, conv_t};
use wgangp_tui::model::params::update_params;

type Rows<T = NoneTape> = Tensor<(usize, usize), f64, Cpu, T>;

const B: usize = 2;
const SIDE: usize = 8;
/// gan-zoo's k4 s2 p1 convs, 8x8 <-> 4x4.
fn geom() -> ConvGeom {
    ConvGeom::conv(SIDE, SIDE, 4, 2, 1)
}

/// `y = f(x)` and the gradients of `sum(y * r)` w.r.t. `x` and the weight tensor `w`, which `f`
/// uses.
fn products<S: Shape>(
    dev: &Cpu,
    x: &[f64],
    x_shape: (usize, usize),
    r: &[f64],
    w: &Tensor<S, f64, Cpu>,
    f: impl FnOnce(Rows<OwnedTape<f64, Cpu>>) -> Rows<OwnedTape<f64, Cpu>>,
) -> [Vec<f64>; 3] {
    let xt: Rows = dev.tensor_from_vec(x.to_vec(), x_shape);
    let (y, tape) = f(xt.clone().traced(Gradients::leaky())).split_tape();
    let rt: Rows = dev.tensor_from_vec(r.to_vec(), *y.shape());
    let grads = (y.clone().put_tape(tape) * rt).sum::<Rank0, _>().backward();
    [y.as_vec(), grads.get(&xt).as_vec(), grads.get(w).as_vec()]
}

fn assert_same(what: &str, got: &[Vec<f64>; 3], want: &[Vec<f64>; 3]) {
    for (i, product) in ["output", "input gradient", "weight gradient"]
        .iter()
        .enumerate()
    {
        let err = max_err(&got[i], &want[i]);
        assert!(err < 1e-12, "{what}: {product} off by {err}");
    }
}

/// The layer's cache after its first pass (filling it) and its second (the same weights): the
/// copy was made in the first, not made again in the second, and read there.
fn assert_cache_read_again(what: &str, uses: &[(u64, u64)]) {
    let [(made, reused), (made_again, reused_again)] = uses[..2] else {
        panic!("two passes");
    };
    assert!(made >= 1, "{what}: the cache was never filled");
    assert_eq!(made_again, made, "{what}: the copy was made anew");
    assert!(
        reused_again > reused,
        "{what}: the second pass did not read the cached copy"
    );
}

/// A conv layer's forward pass and both gradients against the same products on its weight
/// read afresh (the plain ops, which keep no copy), twice: once filling the layer's cache, once
/// from it; then the products after an update of the weights.
#[test]
fn conv_layers_give_the_products_of_their_weights_read_afresh() {
    let dev = Cpu::seed_from_u64(21);
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let g = geom();
    let (cin, cout) = (3, 5);
    let (image_rows, patch_rows) = (B * g.in_pixels(), B * g.out_pixels());

    let layer = Conv2d::<3, 5, f64, Cpu, 4, false>::build(&dev);
    let x = random(&mut rng, image_rows * cin);
    let r = random(&mut rng, patch_rows * cout);
    let w: Rows = dev.tensor_from_vec(layer.weight.as_vec(), (16 * cin, cout));
    let want = products(&dev, &x, (image_rows, cin), &r, &w, |x| {
        conv(x, w.retaped::<OwnedTape<f64, Cpu>>(), g, cout, false)
    });
    let mut uses = Vec::new();
    for pass in ["conv, filling the cache", "conv, from the cache"] {
        let got = products(&dev, &x, (image_rows, cin), &r, &layer.weight, |x| {
            let y = layer.forward(x.reshape_like(&(image_rows, Const::<3>)), g);
            y.reshape_like(&(patch_rows, cout))
        });
        assert_same(pass, &got, &want);
        uses.push(layer.layouts.uses());
    }
    assert_cache_read_again("conv", &uses);

    let layer = ConvTranspose2d::<5, 3, f64, Cpu, 4, false>::build(&dev);
    let x = random(&mut rng, patch_rows * cout);
    let r = random(&mut rng, image_rows * cin);
    let w: Rows = dev.tensor_from_vec(layer.weight.as_vec(), (cout, 16 * cin));
    let want = products(&dev, &x, (patch_rows, cout), &r, &w, |x| {
        conv_t(x, w.retaped::<OwnedTape<f64, Cpu>>(), g, cin, true)
    });
    for pass in [
        "transposed conv, filling the cache",
        "transposed conv, from the cache",
    ] {
        let got = products(&dev, &x, (patch_rows, cout), &r, &layer.weight, |x| {
            let y = layer.forward(x.reshape_like(&(patch_rows, Const::<5>)), g);
            y.reshape_like(&(image_rows, cin))
        });
        assert_same(pass, &got, &want);
        uses.push(layer.layouts.uses());
    }
    assert_cache_read_again("transposed conv", &uses[2..]);

    a_layer_reads_its_new_weights_after_an_update();
}

/// The input gradient of a conv (a product that reads the weight transposed, from the cache)
/// after the weights were rewritten the way the optimizers do: it is that of the new weights.
/// Called from the one test of this file, so that no other test's update runs meanwhile.
fn a_layer_reads_its_new_weights_after_an_update() {
    let dev = Cpu::seed_from_u64(23);
    let mut rng = ChaCha8Rng::seed_from_u64(24);
    let g = geom();
    let mut layer = Conv2d::<3, 5, f64, Cpu, 4, false>::build(&dev);
    let dy = random(&mut rng, B * g.out_pixels() * 5);
    let input_grad = |layer: &Conv2d<3, 5, f64, Cpu, 4, false>| {
        let dyt = dev.tensor_from_vec(dy.clone(), (B * g.out_pixels(), Const::<5>));
        layer.input_grad(dyt, g).as_vec()
    };
    let before = input_grad(&layer);
    update_params(&mut layer, None, |_, w, _| {
        w.iter_mut().for_each(|v| *v = 3.0 * *v + 0.01)
    });
    let after = input_grad(&layer);
    // The same weights in a new layer, whose cache is empty.
    let mut fresh = Conv2d::<3, 5, f64, Cpu, 4, false>::build(&dev);
    let new_weights = layer.weight.as_vec();
    update_params(&mut fresh, None, |_, w, _| w.copy_from_slice(&new_weights));
    let want = input_grad(&fresh);
    assert!(max_err(&after, &want) < 1e-12, "the old weights were used");
    assert!(max_err(&before, &want) > 0.1, "the update changed nothing");
}
