//! Conv and transposed conv (the gather route, im2col / col2im + matmul, and the fused ops)
//! against naive loops in f64 on random
//! shapes: forward, the input gradient and the weight gradient; and the MNIST layers.

mod common;

use common::{max_err, random};
use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use wgangp_tui::model::kernels::conv::ConvGeom;
use wgangp_tui::model::ops::conv::{Conv2d, ConvTranspose2d, col2im, conv, conv_t, im2col};

type Rows = Tensor<(usize, usize), f64, Cpu>;

/// Input pixel of output pixel (oh, ow) at kernel offset (kh, kw), if inside.
fn src(g: &ConvGeom, oh: usize, ow: usize, kh: usize, kw: usize) -> Option<(usize, usize)> {
    let ih = (oh * g.stride + kh) as isize - g.pad as isize;
    let iw = (ow * g.stride + kw) as isize - g.pad as isize;
    (ih >= 0 && iw >= 0 && (ih as usize) < g.in_h && (iw as usize) < g.in_w)
        .then(|| (ih as usize, iw as usize))
}

/// Every (b, oh, ow, kh, kw, ih, iw) of a conv.
fn taps(g: &ConvGeom, batch: usize) -> Vec<[usize; 7]> {
    let mut out = Vec::new();
    for b in 0..batch {
        for oh in 0..g.out_h {
            for ow in 0..g.out_w {
                for kh in 0..g.kernel {
                    for kw in 0..g.kernel {
                        if let Some((ih, iw)) = src(g, oh, ow, kh, kw) {
                            out.push([b, oh, ow, kh, kw, ih, iw]);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Naive conv: x (B,H,W,CI), w (K,K,CI,CO) -> y (B,OH,OW,CO); and its two gradients for dy.
fn naive_conv(
    g: &ConvGeom,
    batch: usize,
    ci: usize,
    co: usize,
    x: &[f64],
    w: &[f64],
    dy: &[f64],
) -> [Vec<f64>; 3] {
    let k = g.kernel;
    let mut y = vec![0.0; batch * g.out_pixels() * co];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    for [b, oh, ow, kh, kw, ih, iw] in taps(g, batch) {
        for c in 0..ci {
            for o in 0..co {
                let xi = ((b * g.in_h + ih) * g.in_w + iw) * ci + c;
                let wi = ((kh * k + kw) * ci + c) * co + o;
                let yi = ((b * g.out_h + oh) * g.out_w + ow) * co + o;
                y[yi] += x[xi] * w[wi];
                dx[xi] += dy[yi] * w[wi];
                dw[wi] += dy[yi] * x[xi];
            }
        }
    }
    [y, dx, dw]
}

/// Naive transposed conv (the adjoint of conv `g`): x (B,OH,OW,CI), w (CI,K,K,CO) ->
/// y (B,H,W,CO): y[b, oh*s-p+kh, ow*s-p+kw, o] += x[b, oh, ow, c] * w[c, kh, kw, o].
fn naive_conv_t(
    g: &ConvGeom,
    batch: usize,
    ci: usize,
    co: usize,
    x: &[f64],
    w: &[f64],
    dy: &[f64],
) -> [Vec<f64>; 3] {
    let k = g.kernel;
    let mut y = vec![0.0; batch * g.in_pixels() * co];
    let mut dx = vec![0.0; x.len()];
    let mut dw = vec![0.0; w.len()];
    for [b, oh, ow, kh, kw, ih, iw] in taps(g, batch) {
        for c in 0..ci {
            for o in 0..co {
                let xi = ((b * g.out_h + oh) * g.out_w + ow) * ci + c;
                let wi = ((c * k + kh) * k + kw) * co + o;
                let yi = ((b * g.in_h + ih) * g.in_w + iw) * co + o;
                y[yi] += x[xi] * w[wi];
                dx[xi] += dy[yi] * w[wi];
                dw[wi] += dy[yi] * x[xi];
            }
        }
    }
    [y, dx, dw]
}

fn random_geom(rng: &mut ChaCha8Rng) -> ConvGeom {
    loop {
        let (k, s, p) = (
            rng.gen_range(1..=5),
            rng.gen_range(1..=3),
            rng.gen_range(0..=2),
        );
        let (h, w) = (rng.gen_range(1..=9), rng.gen_range(1..=9));
        if h + 2 * p >= k && w + 2 * p >= k {
            return ConvGeom::conv(h, w, k, s, p);
        }
    }
}

/// Runs `f` on taped x and w, backpropagates sum(y * dy), returns (y, dx, dw).
fn run(
    dev: &Cpu,
    x: (&[f64], (usize, usize)),
    w: (&[f64], (usize, usize)),
    dy: &[f64],
    f: impl Fn(
        Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>,
        Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>,
    ) -> Tensor<(usize, usize), f64, Cpu, OwnedTape<f64, Cpu>>,
) -> [Vec<f64>; 3] {
    let xt: Rows = dev.tensor_from_vec(x.0.to_vec(), x.1);
    let wt: Rows = dev.tensor_from_vec(w.0.to_vec(), w.1);
    let y = f(xt.leaky_trace(), wt.leaky_trace());
    let y_v = y.retaped::<NoneTape>().as_vec();
    let shape = *y.shape();
    let dyt: Rows = dev.tensor_from_vec(dy.to_vec(), shape);
    let grads = (y * dyt).sum::<Rank0, _>().backward();
    [y_v, grads.get(&xt).as_vec(), grads.get(&wt).as_vec()]
}

/// Each route's (y, dx, dw) equals the naive loops' to 1e-12.
fn assert_close(case: &str, routes: [(&str, [Vec<f64>; 3]); 2], want: &[Vec<f64>; 3]) {
    for (route, got) in routes {
        for (name, a, e) in [
            ("y", &got[0], &want[0]),
            ("dx", &got[1], &want[1]),
            ("dw", &got[2], &want[2]),
        ] {
            let err = max_err(a, e);
            assert!(err < 1e-12, "{route} {case}: {name} differs by {err}");
        }
    }
}

#[test]
fn conv_and_its_gradients_match_naive_loops_on_random_shapes() {
    let dev = Cpu::default();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..30 {
        let g = random_geom(&mut rng);
        let (b, ci, co) = (
            rng.gen_range(1..=3),
            rng.gen_range(1..=4),
            rng.gen_range(1..=4),
        );
        let kk = g.kernel * g.kernel;
        let x = random(&mut rng, b * g.in_pixels() * ci);
        let w = random(&mut rng, kk * ci * co);
        let dy = random(&mut rng, b * g.out_pixels() * co);
        let want = naive_conv(&g, b, ci, co, &x, &w, &dy);
        let x = (&x[..], (b * g.in_pixels(), ci));
        let w = (&w[..], (kk * ci, co));
        // The gather route (im2col, then a product) and the fused, blocked op.
        let gathered = run(&dev, x, w, &dy, |x, w| im2col(x, g).matmul(w));
        let fused = run(&dev, x, w, &dy, |x, w| conv(x, w, g, co, false));
        let case = format!("{g:?} b{b} ci{ci} co{co}");
        assert_close(&case, [("im2col", gathered), ("fused", fused)], &want);
    }
}

#[test]
fn transposed_conv_and_its_gradients_match_naive_loops_on_random_shapes() {
    let dev = Cpu::default();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for _ in 0..30 {
        let g = random_geom(&mut rng);
        let (b, ci, co) = (
            rng.gen_range(1..=3),
            rng.gen_range(1..=4),
            rng.gen_range(1..=4),
        );
        let kk = g.kernel * g.kernel;
        let x = random(&mut rng, b * g.out_pixels() * ci);
        let w = random(&mut rng, ci * kk * co);
        let dy = random(&mut rng, b * g.in_pixels() * co);
        let want = naive_conv_t(&g, b, ci, co, &x, &w, &dy);
        let x = (&x[..], (b * g.out_pixels(), ci));
        let w = (&w[..], (ci, kk * co));
        let gathered = run(&dev, x, w, &dy, |x, w| col2im(x.matmul(w), g, co));
        // The weight (ci, k*k*co) is the transpose of the conv's (k*k*co, ci).
        let fused = run(&dev, x, w, &dy, |x, w| conv_t(x, w, g, co, true));
        let case = format!("{g:?} b{b} ci{ci} co{co}");
        assert_close(&case, [("col2im", gathered), ("fused", fused)], &want);
    }
}

/// The MNIST layers (k5 s2 p2, bias, the generator's 4 -> 7 cropped transposed conv), and the
/// conv's input gradient, which the penalty differentiates again w.r.t. the weight.
#[test]
fn mnist_layers_match_naive_loops() {
    let dev = Cpu::seed_from_u64(13);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let b = 2;

    let conv = Conv2d::<3, 4, f64, Cpu>::build(&dev);
    let g = ConvGeom::mnist(7);
    assert_eq!((g.out_h, g.out_w), (4, 4));
    let x = random(&mut rng, b * 49 * 3);
    let (w, bias) = (conv.weight.as_vec(), conv.bias.as_ref().unwrap().as_vec());
    let y = conv
        .forward(dev.tensor_from_vec(x.clone(), (b * 49, Const::<3>)), g)
        .as_vec();
    let dy = random(&mut rng, b * 16 * 4);
    let [mut want, dx, _] = naive_conv(&g, b, 3, 4, &x, &w, &dy);
    want.iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v += bias[i % 4]);
    assert!(max_err(&y, &want) < 1e-12, "conv forward");
    let got_dx = conv
        .input_grad(dev.tensor_from_vec(dy.clone(), (b * 16, Const::<4>)), g)
        .as_vec();
    assert!(max_err(&got_dx, &dx) < 1e-12, "conv input gradient");

    // Gradient of sum(input_grad(dy) * r) w.r.t. the weight: d/dw of sum dy*w*r = naive dw of
    // the conv with input r and output gradient dy.
    let r = random(&mut rng, b * 49 * 3);
    let grads = conv.alloc_grads();
    let dyt = dev
        .tensor_from_vec(dy.clone(), (b * 16, Const::<4>))
        .traced(grads);
    let rt = dev.tensor_from_vec(r.clone(), (b * 49, Const::<3>));
    let grads = (conv.input_grad(dyt, g) * rt).sum::<Rank0, _>().backward();
    let [_, _, want_dw] = naive_conv(&g, b, 3, 4, &r, &w, &dy);
    assert!(
        max_err(&grads.get(&conv.weight).as_vec(), &want_dw) < 1e-12,
        "double-backward weight gradient"
    );

    let deconv = ConvTranspose2d::<4, 3, f64, Cpu>::build(&dev);
    let x = random(&mut rng, b * 16 * 4);
    let y = deconv
        .forward(dev.tensor_from_vec(x.clone(), (b * 16, Const::<4>)), g)
        .as_vec();
    let (w, bias) = (
        deconv.weight.as_vec(),
        deconv.bias.as_ref().unwrap().as_vec(),
    );
    let [mut want, _, _] = naive_conv_t(&g, b, 4, 3, &x, &w, &vec![0.0; b * 49 * 3]);
    want.iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v += bias[i % 3]);
    assert!(max_err(&y, &want) < 1e-12, "transposed conv forward");

    // 4 -> 7 is PyTorch's ConvTranspose2d(k5, s2, p2, output_padding=1) (4 -> 8) cropped to
    // 7x7. By PyTorch's own definition: input pixel (i, j) adds its kernel, times the pixel,
    // onto output (2i - 2 + kh, 2j - 2 + kw), wherever that lies in the 8x8 output. Weight
    // layout (in_channel, kh, kw, out_channel).
    let mut pytorch = vec![0.0; b * 64 * 3];
    for bi in 0..b {
        for (i, j, c) in
            (0..4).flat_map(|i| (0..4).flat_map(move |j| (0..4).map(move |c| (i, j, c))))
        {
            let v = x[((bi * 4 + i) * 4 + j) * 4 + c];
            for (kh, kw, o) in
                (0..5).flat_map(|kh| (0..5).flat_map(move |kw| (0..3).map(move |o| (kh, kw, o))))
            {
                let (oh, ow) = ((2 * i + kh) as isize - 2, (2 * j + kw) as isize - 2);
                if (0..8).contains(&oh) && (0..8).contains(&ow) {
                    let at = ((bi * 8 + oh as usize) * 8 + ow as usize) * 3 + o;
                    pytorch[at] += v * w[((c * 5 + kh) * 5 + kw) * 3 + o];
                }
            }
        }
    }
    for bi in 0..b {
        for h in 0..7 {
            for wi in 0..7 {
                for o in 0..3 {
                    let got = y[((bi * 7 + h) * 7 + wi) * 3 + o] - bias[o];
                    let e = pytorch[((bi * 8 + h) * 8 + wi) * 3 + o];
                    assert!((got - e).abs() < 1e-12, "crop differs at {bi},{h},{wi},{o}");
                }
            }
        }
    }
}

/// gan-zoo's layers (k4 s2 p1, no bias, N(0, 0.02) weights) by PyTorch's own definitions: a
/// conv reads input (2o - 1 + k), a transposed conv adds onto output (2i - 1 + k).
#[test]
fn dcgan_layers_match_pytorchs_definitions() {
    let dev = Cpu::seed_from_u64(15);
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let (b, side, cin, cout) = (2, 8, 3, 5);
    let g = ConvGeom::conv(side, side, 4, 2, 1);
    assert_eq!((g.out_h, g.out_w), (4, 4));
    let at = |bi: usize, h: usize, w: usize, c: usize, s: usize, ch: usize| {
        ((bi * s + h) * s + w) * ch + c
    };
    let taps = |o: usize, k: usize| (2 * o + k).checked_sub(1).filter(|&i| i < side);

    let conv = Conv2d::<3, 5, f64, Cpu, 4, false>::build(&dev);
    assert!(conv.bias.is_none());
    let w = conv.weight.as_vec();
    let std = (w.iter().map(|v| v * v).sum::<f64>() / w.len() as f64).sqrt();
    assert!(
        (0.015..0.025).contains(&std),
        "weights' std {std}, not 0.02"
    );
    let x = random(&mut rng, b * side * side * cin);
    let y = conv
        .forward(
            dev.tensor_from_vec(x.clone(), (b * side * side, Const::<3>)),
            g,
        )
        .as_vec();
    let mut want = vec![0.0; b * 16 * cout];
    for bi in 0..b {
        for (oh, ow, o) in
            (0..4).flat_map(|h| (0..4).flat_map(move |w| (0..cout).map(move |o| (h, w, o))))
        {
            for (kh, kw, c) in
                (0..4).flat_map(|kh| (0..4).flat_map(move |kw| (0..cin).map(move |c| (kh, kw, c))))
            {
                if let (Some(ih), Some(iw)) = (taps(oh, kh), taps(ow, kw)) {
                    // Weight layout (kh, kw, in, out).
                    want[at(bi, oh, ow, o, 4, cout)] +=
                        x[at(bi, ih, iw, c, side, cin)] * w[((kh * 4 + kw) * cin + c) * cout + o];
                }
            }
        }
    }
    assert!(max_err(&y, &want) < 1e-12, "k4 s2 p1 conv");

    let deconv = ConvTranspose2d::<5, 3, f64, Cpu, 4, false>::build(&dev);
    assert!(deconv.bias.is_none());
    let w = deconv.weight.as_vec();
    let x = random(&mut rng, b * 16 * cout);
    let y = deconv
        .forward(dev.tensor_from_vec(x.clone(), (b * 16, Const::<5>)), g)
        .as_vec();
    let mut want = vec![0.0; b * side * side * cin];
    for bi in 0..b {
        for (i, j, c) in
            (0..4).flat_map(|i| (0..4).flat_map(move |j| (0..cout).map(move |c| (i, j, c))))
        {
            for (kh, kw, o) in
                (0..4).flat_map(|kh| (0..4).flat_map(move |kw| (0..cin).map(move |o| (kh, kw, o))))
            {
                if let (Some(oh), Some(ow)) = (taps(i, kh), taps(j, kw)) {
                    // Weight layout (in, kh, kw, out).
                    want[at(bi, oh, ow, o, side, cin)] +=
                        x[at(bi, i, j, c, 4, cout)] * w[((c * 4 + kh) * 4 + kw) * cin + o];
                }
            }
        }
    }
    assert!(max_err(&y, &want) < 1e-12, "k4 s2 p1 transposed conv");
}
