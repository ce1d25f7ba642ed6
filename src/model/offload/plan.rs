//! [`Plan`]: the three products of a layer's map written once over a [`Backend`] with cuBLAS's
//! semantics (column-major `sgemm`) and the two index kernels of [`KERNELS_CU`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::kernels::LinearMap;
use crate::model::kernels::conv::{ConvGeom, FusedConv};
use crate::model::kernels::gemm::count_flops;

/// Whether an operand of a column-major product is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    N,
    T,
}

/// One column-major product as cuBLAS's `sgemm` takes it:
/// `C (m x n) = alpha op(A) op(B) + beta C`, with leading dimensions `lda`, `ldb`, `ldc`.
/// With `beta == 0`, `C` is not read.
#[derive(Clone, Copy, Debug)]
pub struct Sgemm {
    pub op_a: Op,
    pub op_b: Op,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldb: usize,
    pub ldc: usize,
    pub alpha: f32,
    pub beta: f32,
}

/// A convolution's shape for the index kernels: `images` images of `c` channels (channels
/// last) and the geometry `g`.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub images: usize,
    pub c: usize,
    pub g: ConvGeom,
}

impl ConvShape {
    fn of(kn: &FusedConv, images: usize) -> Self {
        Self {
            images,
            c: kn.c,
            g: kn.g,
        }
    }

    fn patch_len(&self) -> usize {
        self.g.patch_len(self.c)
    }

    /// Elements of the patch matrix (one thread each in `im2col`).
    pub fn cols_len(&self) -> usize {
        self.images * self.g.out_pixels() * self.patch_len()
    }

    /// Elements of the image side (one thread each in `col2im_add`).
    pub fn image_len(&self) -> usize {
        self.images * self.g.in_pixels() * self.c
    }
}

/// What a device must do for [`Plan`]: buffers, cuBLAS's `sgemm`, and the two index kernels of
/// [`KERNELS_CU`].
pub trait Backend: Send + Sync {
    type Buf: Send;
    fn upload(&self, data: &[f32]) -> Self::Buf;
    /// A buffer of `len` floats that is written before it is read.
    fn scratch(&self, len: usize) -> Self::Buf;
    /// A buffer of `len` zeros, made on the device.
    fn zeros(&self, len: usize) -> Self::Buf;
    fn download(&self, buf: &Self::Buf, out: &mut [f32]);
    fn sgemm(&self, g: Sgemm, a: &Self::Buf, b: &Self::Buf, c: &mut Self::Buf);
    /// `cols = im2col(x)`: `(images*in_h*in_w, c)` -> `(images*out_h*out_w, k*k*c)`, zero where
    /// a patch reaches into the padding.
    fn im2col(&self, s: ConvShape, x: &Self::Buf, cols: &mut Self::Buf);
    /// `x += col2im(cols)`, the adjoint of [`Backend::im2col`].
    fn col2im_add(&self, s: ConvShape, cols: &Self::Buf, x: &mut Self::Buf);
}

/// The two index kernels, in CUDA C for NVRTC: one thread per output element, each a gather
/// (no atomics, so the sums come out the same on every run). [`HostBackend`] is their line by
/// line copy.
pub const KERNELS_CU: &str = r#"
extern "C" __global__ void im2col(const float *x, float *cols, unsigned int total,
    unsigned int c, unsigned int in_h, unsigned int in_w, unsigned int out_h,
    unsigned int out_w, unsigned int k, unsigned int stride, unsigned int pad) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    unsigned int kkc = k * k * c;
    unsigned int row = i / kkc, col = i % kkc;
    unsigned int ch = col % c, kw = (col / c) % k, kh = col / (c * k);
    unsigned int img = row / (out_h * out_w), pix = row % (out_h * out_w);
    int ih = (int)((pix / out_w) * stride + kh) - (int)pad;
    int iw = (int)((pix % out_w) * stride + kw) - (int)pad;
    float v = 0.0f;
    if (ih >= 0 && ih < (int)in_h && iw >= 0 && iw < (int)in_w)
        v = x[((img * in_h + ih) * in_w + iw) * c + ch];
    cols[i] = v;
}

extern "C" __global__ void col2im_add(const float *cols, float *x, unsigned int total,
    unsigned int c, unsigned int in_h, unsigned int in_w, unsigned int out_h,
    unsigned int out_w, unsigned int k, unsigned int stride, unsigned int pad) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    unsigned int kkc = k * k * c;
    unsigned int ch = i % c, pix = (i / c) % (in_h * in_w), img = i / (c * in_h * in_w);
    int ih = (int)(pix / in_w), iw = (int)(pix % in_w);
    float s = 0.0f;
    for (unsigned int kh = 0; kh < k; ++kh) {
        int th = ih + (int)pad - (int)kh;
        if (th < 0 || th % (int)stride != 0 || th / (int)stride >= (int)out_h) continue;
        unsigned int oh = th / stride;
        for (unsigned int kw = 0; kw < k; ++kw) {
            int tw = iw + (int)pad - (int)kw;
            if (tw < 0 || tw % (int)stride != 0 || tw / (int)stride >= (int)out_w) continue;
            unsigned int ow = tw / stride;
            s += cols[((img * out_h + oh) * out_w + ow) * kkc + (kh * k + kw) * c + ch];
        }
    }
    x[i] += s;
}
"#;

/// Which weight a product's weight values are, and as of when: a layer's weight cache
/// (`ops::weights`) and the count of weight writes in the process when the values were read.
/// The same key means the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeightKey {
    pub id: u64,
    pub epoch: u64,
}

/// The three products of a layer's map on a [`Backend`].
///
/// What crosses to the device per product: its input, and its weight unless the weight is
/// already there (a keyed weight stays on the device until the weights change); the output is
/// made on the device and comes back to be added to the host's on the host.
pub struct Plan<B: Backend> {
    backend: B,
    name: String,
    /// One layer's work at a time (the shards of a batch call in from two threads, and a
    /// cuBLAS handle must not be used by two at once), and the weights kept on the device: by
    /// key id, the epoch they were sent at and their buffer.
    busy: Mutex<HashMap<u64, (u64, B::Buf)>>,
    /// Floating-point operations of the products run on this plan's device.
    flops: AtomicU64,
    /// Bytes copied to and from the device, and the number of copies.
    to_device: AtomicU64,
    from_device: AtomicU64,
    copies: AtomicU64,
}

/// What crossed between host and device memory: bytes each way and the number of copies (each
/// a blocking transfer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Transfers {
    pub to_device_bytes: u64,
    pub from_device_bytes: u64,
    pub copies: u64,
}

impl Transfers {
    /// What moved between `before` and `self`.
    pub fn since(self, before: Transfers) -> Transfers {
        Transfers {
            to_device_bytes: self.to_device_bytes - before.to_device_bytes,
            from_device_bytes: self.from_device_bytes - before.from_device_bytes,
            copies: self.copies - before.copies,
        }
    }
}

impl<B: Backend> Plan<B> {
    pub fn new(backend: B, name: impl Into<String>) -> Self {
        Self {
            backend,
            name: name.into(),
            busy: Mutex::new(HashMap::new()),
            flops: AtomicU64::new(0),
            to_device: AtomicU64::new(0),
            from_device: AtomicU64::new(0),
            copies: AtomicU64::new(0),
        }
    }

    /// `data` copied to the device, counted.
    fn up(&self, data: &[f32]) -> B::Buf {
        self.to_device
            .fetch_add(std::mem::size_of_val(data) as u64, Ordering::Relaxed);
        self.copies.fetch_add(1, Ordering::Relaxed);
        self.backend.upload(data)
    }

    /// `buf` copied back and added into `out`, counted.
    fn add_down(&self, buf: &B::Buf, out: &mut [f32]) {
        self.from_device
            .fetch_add(std::mem::size_of_val(out) as u64, Ordering::Relaxed);
        self.copies.fetch_add(1, Ordering::Relaxed);
        let mut result = vec![0f32; out.len()];
        self.backend.download(buf, &mut result);
        out.iter_mut().zip(&result).for_each(|(o, r)| *o += r);
    }

    /// The weight `w` on the device: the copy already there under `key`, or sent now (and
    /// kept under `key`, when there is one, in place of copies of older weights).
    fn weight<'a>(
        &self,
        resident: &'a mut HashMap<u64, (u64, B::Buf)>,
        w: &[f32],
        key: Option<WeightKey>,
    ) -> Held<'a, B::Buf> {
        let Some(key) = key else {
            return Held::Sent(self.up(w));
        };
        if resident
            .get(&key.id)
            .is_none_or(|(epoch, _)| *epoch != key.epoch)
        {
            // Weights written since a copy was sent make it useless: every older one goes.
            resident.retain(|_, (epoch, _)| *epoch >= key.epoch);
            resident.insert(key.id, (key.epoch, self.up(w)));
        }
        Held::Resident(&resident[&key.id].1)
    }

    /// Floating-point operations of the products this plan ran on its device (2 per
    /// multiply-add), counted as the CPU kernels count theirs.
    pub fn flops(&self) -> u64 {
        self.flops.load(Ordering::Relaxed)
    }

    /// Row-major `c (m x n) = op(a) op(b) + beta c`, where `a` holds `A (m x k)`, or `A^T` when
    /// `a_t`, row-major, and likewise `b` for `B (k x n)`. cuBLAS is column-major: a row-major
    /// matrix read column-major is its transpose, so this is `C^T = op(B)^T op(A)^T`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        (m, n, k): (usize, usize, usize),
        a: &B::Buf,
        a_t: bool,
        b: &B::Buf,
        b_t: bool,
        c: &mut B::Buf,
        beta: f32,
    ) {
        if m == 0 || n == 0 {
            return;
        }
        count_flops(m, n, k);
        self.flops
            .fetch_add(2 * (m * n * k) as u64, Ordering::Relaxed);
        let g = Sgemm {
            op_a: if b_t { Op::T } else { Op::N },
            op_b: if a_t { Op::T } else { Op::N },
            m: n,
            n: m,
            k,
            lda: if b_t { k } else { n },
            ldb: if a_t { m } else { k },
            ldc: n,
            alpha: 1.0,
            beta,
        };
        self.backend.sgemm(g, b, a, c);
    }

    /// `y += im2col(x) W` (W as `(k*k*c, n)`, stored transposed when `w_t`).
    fn conv(&self, kn: &FusedConv, x: &[f32], wb: &B::Buf, y: &mut [f32]) {
        let be = &self.backend;
        let s = ConvShape::of(kn, x.len() / (kn.g.in_pixels() * kn.c));
        let rows = s.images * kn.g.out_pixels();
        sizes(kn, &s, x, y);
        let xb = self.up(x);
        let mut cols = be.scratch(s.cols_len());
        be.im2col(s, &xb, &mut cols);
        let mut yb = be.scratch(y.len());
        self.gemm(
            (rows, kn.n, s.patch_len()),
            &cols,
            false,
            wb,
            kn.w_t,
            &mut yb,
            0.0,
        );
        self.add_down(&yb, y);
    }

    /// `x += col2im(y W^T)`.
    fn conv_t(&self, kn: &FusedConv, y: &[f32], wb: &B::Buf, x: &mut [f32]) {
        let be = &self.backend;
        let s = ConvShape::of(kn, y.len() / (kn.g.out_pixels() * kn.n));
        let rows = s.images * kn.g.out_pixels();
        sizes(kn, &s, x, y);
        let yb = self.up(y);
        let mut cols = be.scratch(s.cols_len());
        // W^T (n x k*k*c) is W's storage read transposed, or as stored when that is W^T.
        self.gemm(
            (rows, s.patch_len(), kn.n),
            &yb,
            false,
            wb,
            !kn.w_t,
            &mut cols,
            0.0,
        );
        let mut xb = be.zeros(x.len());
        be.col2im_add(s, &cols, &mut xb);
        self.add_down(&xb, x);
    }

    /// `W += im2col(x)^T y`, in W's own layout.
    fn conv_wgrad(&self, kn: &FusedConv, x: &[f32], y: &[f32], dw: &mut [f32]) {
        let be = &self.backend;
        let s = ConvShape::of(kn, x.len() / (kn.g.in_pixels() * kn.c));
        let (rows, kkc, n) = (s.images * kn.g.out_pixels(), s.patch_len(), kn.n);
        sizes(kn, &s, x, y);
        assert_eq!(dw.len(), kkc * n, "offload: conv weight gradient size");
        let (xb, yb) = (self.up(x), self.up(y));
        let mut cols = be.scratch(s.cols_len());
        be.im2col(s, &xb, &mut cols);
        let mut dwb = be.scratch(dw.len());
        if kn.w_t {
            self.gemm((n, kkc, rows), &yb, true, &cols, false, &mut dwb, 0.0);
        } else {
            self.gemm((kkc, n, rows), &cols, true, &yb, false, &mut dwb, 0.0);
        }
        self.add_down(&dwb, dw);
    }

    /// `dst (m x n) += op(a) op(b)` for a host `a` and a device `b`.
    #[allow(clippy::too_many_arguments)]
    fn dense(
        &self,
        mnk: (usize, usize, usize),
        a: &[f32],
        a_t: bool,
        bb: &B::Buf,
        b_t: bool,
        dst: &mut [f32],
    ) {
        let (m, n, k) = mnk;
        // The device trusts these sizes: a short operand would be read past its end there.
        assert!(
            a.len() == m * k && dst.len() == m * n,
            "offload: operand sizes {}, {} for a {m}x{k} by {k}x{n} product",
            a.len(),
            dst.len()
        );
        let ab = self.up(a);
        let mut db = self.backend.scratch(dst.len());
        self.gemm(mnk, &ab, a_t, bb, b_t, &mut db, 0.0);
        self.add_down(&db, dst);
    }
}

/// A weight on the device: kept there, or sent for this product.
enum Held<'a, Buf> {
    Resident(&'a Buf),
    Sent(Buf),
}

impl<Buf> Held<'_, Buf> {
    fn buf(&self) -> &Buf {
        match self {
            Held::Resident(b) => b,
            Held::Sent(b) => b,
        }
    }
}

/// A device that does a layer's three products: `y += map(x)`, `dx += map^T(dy)` and
/// `dW += ...`, as [`LinearMap`]'s CPU code defines them. A weight given with a key may be
/// kept on the device and used again while the key is the same.
pub trait Offload: Send + Sync {
    /// The device, for the status line (e.g. "cuda:0 NVIDIA H100").
    fn name(&self) -> &str;
    fn apply(&self, map: &LinearMap, x: &[f32], w: &[f32], key: Option<WeightKey>, y: &mut [f32]);
    fn adjoint(
        &self,
        map: &LinearMap,
        dy: &[f32],
        w: &[f32],
        key: Option<WeightKey>,
        dx: &mut [f32],
    );
    fn wgrad(&self, map: &LinearMap, x: &[f32], dy: &[f32], dw: &mut [f32]);
    /// Everything copied between host and device so far.
    fn transfers(&self) -> Transfers;
}

/// Checks a conv's operands against its shape (the device trusts the sizes it is given): the
/// image side `x` and the patch side `y`, whole images only.
fn sizes(kn: &FusedConv, s: &ConvShape, x: &[f32], y: &[f32]) {
    let rows = s.images * kn.g.out_pixels();
    assert!(
        x.len() == s.images * kn.g.in_pixels() * kn.c && y.len() == rows * kn.n,
        "offload: conv operand sizes {}, {} do not fit {kn:?}",
        x.len(),
        y.len()
    );
}

/// Checks a weight's size against its map's.
fn weight_size(map: &LinearMap, w: &[f32]) {
    let (r, c) = map.w_shape();
    assert_eq!(
        w.len(),
        r * c,
        "offload: operand sizes: a weight of {} for {map:?}",
        w.len()
    );
}

impl<B: Backend> Offload for Plan<B> {
    fn name(&self) -> &str {
        &self.name
    }

    fn transfers(&self) -> Transfers {
        Transfers {
            to_device_bytes: self.to_device.load(Ordering::Relaxed),
            from_device_bytes: self.from_device.load(Ordering::Relaxed),
            copies: self.copies.load(Ordering::Relaxed),
        }
    }

    fn apply(&self, map: &LinearMap, x: &[f32], w: &[f32], key: Option<WeightKey>, y: &mut [f32]) {
        if x.is_empty() || y.is_empty() {
            return; // nothing to add (and no zero-length device buffers)
        }
        weight_size(map, w);
        let mut resident = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let wb = self.weight(&mut resident, w, key);
        match *map {
            LinearMap::Dense { k, n, w_t } => {
                self.dense((x.len() / k, n, k), x, false, wb.buf(), w_t, y)
            }
            LinearMap::Conv(kn) => self.conv(&kn, x, wb.buf(), y),
            LinearMap::ConvT(kn) => self.conv_t(&kn, x, wb.buf(), y),
        }
    }

    fn adjoint(
        &self,
        map: &LinearMap,
        dy: &[f32],
        w: &[f32],
        key: Option<WeightKey>,
        dx: &mut [f32],
    ) {
        if dy.is_empty() || dx.is_empty() {
            return; // nothing to add (and no zero-length device buffers)
        }
        weight_size(map, w);
        let mut resident = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        let wb = self.weight(&mut resident, w, key);
        match *map {
            LinearMap::Dense { k, n, w_t } => {
                self.dense((dy.len() / n, k, n), dy, false, wb.buf(), !w_t, dx)
            }
            LinearMap::Conv(kn) => self.conv_t(&kn, dy, wb.buf(), dx),
            LinearMap::ConvT(kn) => self.conv(&kn, dy, wb.buf(), dx),
        }
    }

    fn wgrad(&self, map: &LinearMap, x: &[f32], dy: &[f32], dw: &mut [f32]) {
        if x.is_empty() || dy.is_empty() {
            return; // nothing to add (and no zero-length device buffers)
        }
        let _busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        match *map {
            LinearMap::Dense { k, n, w_t } => {
                let m = x.len() / k;
                let (a, b) = if w_t { (dy, x) } else { (x, dy) };
                let (rows, cols) = if w_t { (n, k) } else { (k, n) };
                assert_eq!(
                    b.len(),
                    m * cols,
                    "offload: operand sizes in a weight gradient"
                );
                let bb = self.up(b);
                self.dense((rows, cols, m), a, true, &bb, false, dw)
            }
            LinearMap::Conv(kn) => self.conv_wgrad(&kn, x, dy, dw),
            LinearMap::ConvT(kn) => self.conv_wgrad(&kn, dy, x, dw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::offload::HostBackend;
    use rand::{Rng, SeedableRng};

    fn random(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
        let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .fold(0.0, |m, (x, y)| m.max((x - y).abs() / scale))
    }

    /// The device trusts the sizes it is given, so the plan checks them first.
    #[test]
    #[should_panic(expected = "offload: operand sizes")]
    fn a_short_operand_is_refused_before_the_device_sees_it() {
        let plan = Plan::new(HostBackend, "host");
        let map = LinearMap::Dense {
            k: 3,
            n: 2,
            w_t: false,
        };
        plan.apply(&map, &[0.0; 6], &[0.0; 5], None, &mut [0.0; 4]);
    }

    /// Each map's three products through the plan on the host twin of a GPU backend agree with
    /// the CPU kernels, starting from non-zero outputs (they add into them). Fails if any
    /// operand is transposed wrongly, a leading dimension is off, an index kernel misses or
    /// repeats a pixel, or a product overwrites instead of adding.
    #[test]
    fn plan_on_the_host_twin_matches_the_cpu_kernels() {
        let plan = Plan::new(HostBackend, "host");
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut maps = vec![];
        for w_t in [false, true] {
            maps.push((LinearMap::Dense { k: 6, n: 5, w_t }, 3));
            maps.push((LinearMap::Dense { k: 2, n: 1, w_t }, 4));
            for (g, c, n) in [
                (ConvGeom::conv(8, 8, 5, 2, 2), 2, 3),
                (ConvGeom::conv(7, 6, 3, 2, 1), 3, 4),
                (ConvGeom::conv(5, 5, 3, 1, 0), 1, 2),
                (ConvGeom::conv(7, 7, 5, 2, 2), 3, 5),
            ] {
                let kn = FusedConv::new(g, c, n, w_t);
                maps.push((LinearMap::Conv(kn), 2));
                maps.push((LinearMap::ConvT(kn), 2));
            }
        }
        for (map, batch) in maps {
            let (in_w, out_w) = map.widths();
            let rows = match map {
                LinearMap::Dense { .. } => batch,
                LinearMap::Conv(kn) => batch * kn.g.in_pixels(),
                LinearMap::ConvT(kn) => batch * kn.g.out_pixels(),
            };
            let out_rows = map.out_rows(rows);
            let (wr, wc) = map.w_shape();
            let x = random(&mut rng, rows * in_w);
            let w = random(&mut rng, wr * wc);
            let dy = random(&mut rng, out_rows * out_w);
            let start_y = random(&mut rng, out_rows * out_w);
            let start_dx = random(&mut rng, rows * in_w);
            let start_dw = random(&mut rng, wr * wc);

            let (mut want, mut got) = (start_y.clone(), start_y);
            map.apply(&x, &w, &mut want);
            plan.apply(&map, &x, &w, None, &mut got);
            assert!(max_rel_diff(&want, &got) < 1e-5, "{map:?} apply");

            let (mut want, mut got) = (start_dx.clone(), start_dx);
            map.adjoint(&dy, &w, &mut want);
            plan.adjoint(&map, &dy, &w, None, &mut got);
            assert!(max_rel_diff(&want, &got) < 1e-5, "{map:?} adjoint");

            let (mut want, mut got) = (start_dw.clone(), start_dw);
            map.wgrad(&x, &dy, &mut want);
            plan.wgrad(&map, &x, &dy, &mut got);
            assert!(max_rel_diff(&want, &got) < 1e-5, "{map:?} wgrad");
        }
    }
}
