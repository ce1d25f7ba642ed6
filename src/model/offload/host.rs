//! [`HostBackend`]: a GPU backend's semantics run on the CPU, element by element as the GPU's
//! threads do, so that [`Plan`](super::Plan)'s arithmetic is tested on every machine.

use super::plan::{Backend, ConvShape, Op, Sgemm};

/// The CPU twin of a GPU backend: the same semantics, element by element.
pub struct HostBackend;

impl Backend for HostBackend {
    type Buf = Vec<f32>;

    fn upload(&self, data: &[f32]) -> Vec<f32> {
        data.to_vec()
    }

    fn scratch(&self, len: usize) -> Vec<f32> {
        // NaN, so that reading before writing shows.
        vec![f32::NAN; len]
    }

    fn zeros(&self, len: usize) -> Vec<f32> {
        vec![0.0; len]
    }

    fn download(&self, buf: &Vec<f32>, out: &mut [f32]) {
        out.copy_from_slice(buf);
    }

    fn sgemm(&self, g: Sgemm, a: &Vec<f32>, b: &Vec<f32>, c: &mut Vec<f32>) {
        // Column-major element (i, j) of a matrix with leading dimension ld is v[i + j ld].
        let at = |v: &[f32], op: Op, ld: usize, i: usize, j: usize| match op {
            Op::N => v[i + j * ld],
            Op::T => v[j + i * ld],
        };
        for j in 0..g.n {
            for i in 0..g.m {
                // Summed in f64: what is checked against this twin is the plan's arithmetic,
                // and another f32 summation order can flip a ReLU whose input is within
                // rounding of zero (see `cmd::gpu_check::max_rel_err`).
                let s = (0..g.k)
                    .map(|p| at(a, g.op_a, g.lda, i, p) as f64 * at(b, g.op_b, g.ldb, p, j) as f64)
                    .sum::<f64>() as f32;
                let out = &mut c[i + j * g.ldc];
                *out = if g.beta == 0.0 {
                    g.alpha * s
                } else {
                    g.alpha * s + g.beta * *out
                };
            }
        }
    }

    fn im2col(&self, s: ConvShape, x: &Vec<f32>, cols: &mut Vec<f32>) {
        let (c, g) = (s.c, s.g);
        let k = g.kernel;
        let kkc = k * k * c;
        for (i, out) in cols.iter_mut().enumerate().take(s.cols_len()) {
            let (row, col) = (i / kkc, i % kkc);
            let (ch, kw, kh) = (col % c, (col / c) % k, col / (c * k));
            let (img, pix) = (row / (g.out_h * g.out_w), row % (g.out_h * g.out_w));
            let ih = ((pix / g.out_w) * g.stride + kh) as isize - g.pad as isize;
            let iw = ((pix % g.out_w) * g.stride + kw) as isize - g.pad as isize;
            let inside = ih >= 0 && ih < g.in_h as isize && iw >= 0 && iw < g.in_w as isize;
            *out = if inside {
                x[((img * g.in_h + ih as usize) * g.in_w + iw as usize) * c + ch]
            } else {
                0.0
            };
        }
    }

    fn col2im_add(&self, s: ConvShape, cols: &Vec<f32>, x: &mut Vec<f32>) {
        let (c, g) = (s.c, s.g);
        let (k, stride) = (g.kernel, g.stride as isize);
        let kkc = k * k * c;
        for (i, out) in x.iter_mut().enumerate().take(s.image_len()) {
            let (ch, pix, img) = (
                i % c,
                (i / c) % (g.in_h * g.in_w),
                i / (c * g.in_h * g.in_w),
            );
            let (ih, iw) = ((pix / g.in_w) as isize, (pix % g.in_w) as isize);
            let mut sum = 0.0;
            for kh in 0..k {
                let th = ih + g.pad as isize - kh as isize;
                if th < 0 || th % stride != 0 || th / stride >= g.out_h as isize {
                    continue;
                }
                let oh = (th / stride) as usize;
                for kw in 0..k {
                    let tw = iw + g.pad as isize - kw as isize;
                    if tw < 0 || tw % stride != 0 || tw / stride >= g.out_w as isize {
                        continue;
                    }
                    let ow = (tw / stride) as usize;
                    sum +=
                        cols[((img * g.out_h + oh) * g.out_w + ow) * kkc + (kh * k + kw) * c + ch];
                }
            }
            *out += sum;
        }
    }
}
