//! Convolution kernels on plain slices: the geometry, the index operations `im2col` and
//! `col2im` (each other's adjoint), and [`FusedConv`], the three products of a convolution
//! with its patch matrix built a block of images at a time.
//!
//! Activations are *rows*: a batch of `B` images of `H x W` pixels with `C` channels is a
//! `(B*H*W, C)` slice, pixels in row-major order (channels last).

use rayon::prelude::*;

use super::Float;
use super::gemm::{gemm_add, gemm_set};

/// Side of every kernel in the MNIST nets (k5 s2 p2, as in the paper's code).
pub const KERNEL: usize = 5;
pub const STRIDE: usize = 2;
pub const PAD: usize = 2;

/// The geometry of a convolution from an `in_h x in_w` image to an `out_h x out_w` one.
///
/// A transposed conv uses the geometry of the conv it is the adjoint of: its *output* is the
/// conv's input. That also expresses TF's "SAME" transposed conv followed by a crop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvGeom {
    /// The conv of an `in_h x in_w` image with the given kernel, stride and zero padding.
    pub fn conv(in_h: usize, in_w: usize, kernel: usize, stride: usize, pad: usize) -> Self {
        assert!(
            stride > 0 && kernel > 0,
            "kernel and stride must be positive"
        );
        assert!(
            in_h + 2 * pad >= kernel && in_w + 2 * pad >= kernel,
            "kernel larger than input"
        );
        Self {
            in_h,
            in_w,
            out_h: (in_h + 2 * pad - kernel) / stride + 1,
            out_w: (in_w + 2 * pad - kernel) / stride + 1,
            kernel,
            stride,
            pad,
        }
    }

    /// The k5 s2 p2 conv of a square image of side `side`, as used by the MNIST nets.
    pub fn mnist(side: usize) -> Self {
        Self::conv(side, side, KERNEL, STRIDE, PAD)
    }

    pub fn in_pixels(&self) -> usize {
        self.in_h * self.in_w
    }

    pub fn out_pixels(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Length of one patch row of `im2col` for `c` channels.
    pub fn patch_len(&self, c: usize) -> usize {
        self.kernel * self.kernel * c
    }

    /// The input pixel under kernel offset `(kh, kw)` of output pixel `(oh, ow)`, if inside.
    #[inline]
    fn source(&self, oh: usize, ow: usize, kh: usize, kw: usize) -> Option<usize> {
        let ih = (oh * self.stride + kh).checked_sub(self.pad)?;
        let iw = (ow * self.stride + kw).checked_sub(self.pad)?;
        (ih < self.in_h && iw < self.in_w).then_some(ih * self.in_w + iw)
    }
}

/// For one image, each entry block of its patch matrix with the input pixel under it:
/// `tap(dst, Some(pixel))`, or `tap(dst, None)` where the kernel hangs over the padding. `x` is
/// `(in_h*in_w, c)`, `cols` `(out_h*out_w, k*k*c)`; `dst` and `pixel` are `c` long.
fn patches<E: Float>(
    g: &ConvGeom,
    c: usize,
    x: &[E],
    cols: &mut [E],
    tap: impl Fn(&mut [E], Option<&[E]>),
) {
    let k = g.kernel;
    let row_len = g.patch_len(c);
    for oh in 0..g.out_h {
        for ow in 0..g.out_w {
            let row = &mut cols[(oh * g.out_w + ow) * row_len..][..row_len];
            for kh in 0..k {
                for kw in 0..k {
                    let dst = &mut row[(kh * k + kw) * c..][..c];
                    tap(dst, g.source(oh, ow, kh, kw).map(|src| &x[src * c..][..c]));
                }
            }
        }
    }
}

/// `cols += im2col(x)` for one image.
fn im2col_add_image<E: Float>(g: &ConvGeom, c: usize, x: &[E], cols: &mut [E]) {
    patches(g, c, x, cols, |dst, pixel| {
        if let Some(pixel) = pixel {
            dst.iter_mut().zip(pixel).for_each(|(d, s)| *d += *s);
        }
    });
}

/// `cols = im2col(x)` for one image: every entry written, zeros where the kernel hangs over
/// the padding (so `cols` may hold anything before).
fn im2col_image<E: Float>(g: &ConvGeom, c: usize, x: &[E], cols: &mut [E]) {
    patches(g, c, x, cols, |dst, pixel| match pixel {
        Some(pixel) => dst.copy_from_slice(pixel),
        None => dst.fill(E::zero()),
    });
}

/// `x += col2im(cols)` for one image (the adjoint of [`im2col_add_image`]).
fn col2im_add_image<E: Float>(g: &ConvGeom, c: usize, cols: &[E], x: &mut [E]) {
    let k = g.kernel;
    let row_len = g.patch_len(c);
    for oh in 0..g.out_h {
        for ow in 0..g.out_w {
            let row = &cols[(oh * g.out_w + ow) * row_len..][..row_len];
            for kh in 0..k {
                for kw in 0..k {
                    if let Some(dst) = g.source(oh, ow, kh, kw) {
                        let src = &row[(kh * k + kw) * c..][..c];
                        for (d, s) in x[dst * c..][..c].iter_mut().zip(src) {
                            *d += *s;
                        }
                    }
                }
            }
        }
    }
}

/// `per_image(g, c, x, cols)` for each image of a batch, one image per task.
fn im2col_batch<E: Float>(
    g: &ConvGeom,
    c: usize,
    x: &[E],
    cols: &mut [E],
    per_image: fn(&ConvGeom, usize, &[E], &mut [E]),
) {
    let (x_len, col_len) = (g.in_pixels() * c, g.out_pixels() * g.patch_len(c));
    assert_eq!(
        x.len() / x_len,
        cols.len() / col_len,
        "batch mismatch in im2col"
    );
    cols.par_chunks_mut(col_len)
        .zip(x.par_chunks(x_len))
        .for_each(|(cols, x)| per_image(g, c, x, cols));
}

/// `cols += im2col(x)` over a batch.
pub fn im2col_add<E: Float>(g: &ConvGeom, c: usize, x: &[E], cols: &mut [E]) {
    im2col_batch(g, c, x, cols, im2col_add_image);
}

/// `cols = im2col(x)` over a batch.
pub fn im2col<E: Float>(g: &ConvGeom, c: usize, x: &[E], cols: &mut [E]) {
    im2col_batch(g, c, x, cols, im2col_image);
}

/// `x += col2im(cols)` over a batch, one image per task.
pub fn col2im_add<E: Float>(g: &ConvGeom, c: usize, cols: &[E], x: &mut [E]) {
    let (x_len, col_len) = (g.in_pixels() * c, g.out_pixels() * g.patch_len(c));
    assert_eq!(
        x.len() / x_len,
        cols.len() / col_len,
        "batch mismatch in col2im"
    );
    x.par_chunks_mut(x_len)
        .zip(cols.par_chunks(col_len))
        .for_each(|(x, cols)| col2im_add_image(g, c, cols, x));
}

// ---------------------------------------------------------------------------------------------
// Fused convolutions: the patch matrix of `im2col` is built a block of images at a time, used,
// and rebuilt in the backward pass instead of being kept. Same arithmetic as im2col + matmul
// (+ col2im), with a bounded scratch buffer instead of a patch matrix of the whole batch (the
// largest buffers of a training step: 25/4 times the input's size for a k5 s2 conv).
//
// Notation: an image side `x` of `c` channels (`(B*in_pixels, c)`), a patch side `y` of `n`
// channels (`(B*out_pixels, n)`), and a weight `W` of `(k*k*c, n)`, stored as is or, with
// `w_t`, transposed as `(n, k*k*c)` (the transposed conv layer's layout). Three kernels:
//   conv:   y += im2col(x) W
//   conv_t: x += col2im(y W^T)
//   wgrad:  W += im2col(x)^T y
// conv's backward pass is conv_t and wgrad; conv_t's is conv and wgrad.

/// Floats of patches built at a time (4 MB of f32).
const PATCH_BLOCK: usize = 1 << 20;

/// The shapes of a fused op: geometry, image-side channels `c`, patch-side channels `n`, the
/// weight's layout, and the floats of patches built at a time.
#[derive(Clone, Copy, Debug)]
pub struct FusedConv {
    pub g: ConvGeom,
    pub c: usize,
    pub n: usize,
    pub w_t: bool,
    pub block: usize,
}

impl FusedConv {
    /// The kernels of geometry `g` between `c` image-side and `n` patch-side channels.
    pub fn new(g: ConvGeom, c: usize, n: usize, w_t: bool) -> Self {
        Self {
            g,
            c,
            n,
            w_t,
            block: PATCH_BLOCK,
        }
    }

    /// The weight's shape: `(k*k*c, n)`, or `(n, k*k*c)` when `w_t`.
    pub fn w_shape(&self) -> (usize, usize) {
        if self.w_t {
            (self.n, self.kkc())
        } else {
            (self.kkc(), self.n)
        }
    }

    fn kkc(&self) -> usize {
        self.g.patch_len(self.c)
    }

    /// Floats of one image on the image side and on the patch side.
    fn image_len(&self) -> usize {
        self.g.in_pixels() * self.c
    }

    fn patch_side_len(&self) -> usize {
        self.g.out_pixels() * self.n
    }

    /// W's strides as the `(k*k*c) x n` matrix.
    fn w_strides(&self) -> (isize, isize) {
        if self.w_t {
            (1, self.kkc() as isize)
        } else {
            (self.n as isize, 1)
        }
    }

    /// For each block of images (`images` of them from `first`), with a scratch buffer for
    /// their patch matrix that holds anything (each use overwrites it whole): `f(first,
    /// images, cols)`.
    fn for_blocks<E: Float>(&self, batch: usize, mut f: impl FnMut(usize, usize, &mut [E])) {
        let per_image = self.g.out_pixels() * self.kkc();
        let step = (self.block / per_image).max(1);
        let mut cols = Vec::new();
        for first in (0..batch).step_by(step) {
            let images = step.min(batch - first);
            cols.resize(images * per_image, E::zero());
            f(first, images, &mut cols[..images * per_image]);
        }
    }

    /// `y += im2col(x) W`.
    pub fn conv<E: Float>(&self, x: &[E], w: &[E], y: &mut [E]) {
        let (xl, yl, kkc) = (self.image_len(), self.patch_side_len(), self.kkc());
        self.for_blocks(x.len() / xl, |b, images, cols| {
            im2col(&self.g, self.c, &x[b * xl..][..images * xl], cols);
            let y = &mut y[b * yl..][..images * yl];
            let rows = images * self.g.out_pixels();
            gemm_add(
                (rows, self.n, kkc),
                y,
                cols,
                (kkc as isize, 1),
                w,
                self.w_strides(),
            );
        });
    }

    /// `x += col2im(y W^T)`.
    pub fn conv_t<E: Float>(&self, y: &[E], w: &[E], x: &mut [E]) {
        let (xl, yl, kkc, n) = (self.image_len(), self.patch_side_len(), self.kkc(), self.n);
        // W^T as an n x kkc matrix: W's strides swapped.
        let (rs, cs) = self.w_strides();
        self.for_blocks(y.len() / yl, |b, images, cols| {
            let y = &y[b * yl..][..images * yl];
            let rows = images * self.g.out_pixels();
            gemm_set((rows, kkc, n), cols, y, (n as isize, 1), w, (cs, rs));
            col2im_add(&self.g, self.c, cols, &mut x[b * xl..][..images * xl]);
        });
    }

    /// `W += im2col(x)^T y`, into W's own layout.
    pub fn wgrad<E: Float>(&self, x: &[E], y: &[E], dw: &mut [E]) {
        let (xl, yl, kkc, n) = (self.image_len(), self.patch_side_len(), self.kkc(), self.n);
        self.for_blocks(x.len() / xl, |b, images, cols| {
            im2col(&self.g, self.c, &x[b * xl..][..images * xl], cols);
            let y = &y[b * yl..][..images * yl];
            let rows = images * self.g.out_pixels();
            let (cols_rows, y_rows) = ((kkc as isize, 1), (n as isize, 1));
            if self.w_t {
                // (n x kkc) += y^T (n x rows) * cols (rows x kkc).
                gemm_add((n, kkc, rows), dw, y, (1, n as isize), cols, cols_rows);
            } else {
                // (kkc x n) += cols^T (kkc x rows) * y (rows x n).
                gemm_add((kkc, n, rows), dw, cols, (1, kkc as isize), y, y_rows);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    /// `im2col` overwrites every entry, whatever the buffer held: the same as adding into
    /// zeros.
    #[test]
    fn im2col_writes_every_entry() {
        let g = ConvGeom::conv(6, 6, 4, 2, 1);
        let (b, c) = (3, 2);
        let x: Vec<f64> = (0..b * g.in_pixels() * c).map(|i| i as f64 + 1.0).collect();
        let len = b * g.out_pixels() * g.patch_len(c);
        let mut added = vec![0.0; len];
        im2col_add(&g, c, &x, &mut added);
        let mut written = vec![f64::NAN; len];
        im2col(&g, c, &x, &mut written);
        assert_eq!(written, added);
        assert!(added.contains(&0.0), "no padding in this geometry");
    }

    /// Blocks of one image give the same sums as the whole batch at once (to rounding: the
    /// products' summation order depends on their sizes).
    #[test]
    fn blocked_kernels_match_one_block() {
        let g = ConvGeom::mnist(14);
        let (b, c, n) = (5, 3, 4);
        let fill = |len: usize, seed: usize| -> Vec<f64> {
            (0..len)
                .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f64 / 500.0 - 1.0)
                .collect()
        };
        let x = fill(b * g.in_pixels() * c, 1);
        let y = fill(b * g.out_pixels() * n, 2);
        for w_t in [false, true] {
            let w = fill(g.patch_len(c) * n, 3);
            let one = FusedConv {
                g,
                c,
                n,
                w_t,
                block: 1,
            };
            let all = FusedConv {
                block: usize::MAX,
                ..one
            };
            let mut out = [vec![0.0; y.len()], vec![0.0; y.len()]];
            one.conv(&x, &w, &mut out[0]);
            all.conv(&x, &w, &mut out[1]);
            assert!(max_diff(&out[0], &out[1]) < 1e-12);
            assert!(out[0].iter().filter(|v| **v != 0.0).count() > y.len() / 2);
            let mut out = [vec![0.0; x.len()], vec![0.0; x.len()]];
            one.conv_t(&y, &w, &mut out[0]);
            all.conv_t(&y, &w, &mut out[1]);
            assert!(max_diff(&out[0], &out[1]) < 1e-12);
            let mut out = [vec![0.0; w.len()], vec![0.0; w.len()]];
            one.wgrad(&x, &y, &mut out[0]);
            all.wgrad(&x, &y, &mut out[1]);
            assert!(max_diff(&out[0], &out[1]) < 1e-12);
        }
    }
}
