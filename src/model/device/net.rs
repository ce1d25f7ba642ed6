//! A family's net on a device: its layers as a [`NetSpec`] taken from the CPU model's own
//! typed layers (so the shapes are the model's compile-time shapes, and a layer of another
//! size does not compile), its parameters, gradients and optimizer moments in device buffers,
//! and the passes a WGAN-GP step needs: forward, backward, the exact input gradient written as
//! products with the weights (as `Critic::input_gradient` does on the CPU), and the backward
//! pass of that input-gradient graph, which gives the penalty's weight gradients.
//!
//! Layouts are dfdx's, row-major: a batch is `(rows, width)`, a dense layer's weight
//! `(outputs, inputs)`. The products go to the backend's column-major `sgemm` through
//! [`rm_gemm`].

use anyhow::{Result, bail};
use dfdx::prelude::{Cpu, Dtype};

use super::kernels::{self, NULL, params as k};
use super::{Backend, Buffer, Gemm, Ptr};
use crate::checkpoint::NamedTensor;
use crate::model::kernels::conv::ConvGeom;
use crate::model::ops::conv::{Conv2d, ConvTranspose2d};
use crate::model::ops::layer::DenseWeights;
use crate::model::ops::norm::{ChannelNorm, NORM_EPS};

/// What follows a layer's product and bias.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    Identity,
    /// `z` where `z > 0`, else `slope * z` (ReLU: slope 0).
    Leaky(f32),
    Sigmoid,
    Tanh,
}

impl Act {
    fn code(self) -> (u32, f32) {
        match self {
            Act::Identity => (kernels::ACT_IDENTITY, 0.0),
            Act::Leaky(s) => (kernels::ACT_LEAKY, s),
            Act::Sigmoid => (kernels::ACT_SIGMOID, 0.0),
            Act::Tanh => (kernels::ACT_TANH, 0.0),
        }
    }
}

/// A layer's map, per sample: a fully connected layer, or a convolution (or the transposed
/// convolution, its adjoint) over channels-last rows, as `kernels::conv` computes them; or a
/// normalisation. For the convolutions `c` is the image side's channels, `n` the patch side's,
/// and the weight is `(k*k*c, n)`, or `(n, k*k*c)` with `w_t`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Map {
    Dense {
        inputs: usize,
        outputs: usize,
    },
    /// `y = im2col(x) W`: the image side in, the patch side out.
    Conv {
        g: ConvGeom,
        c: usize,
        n: usize,
        w_t: bool,
    },
    /// `y = col2im(x W^T)`: the patch side in, the image side out.
    ConvT {
        g: ConvGeom,
        c: usize,
        n: usize,
        w_t: bool,
    },
    /// `gamma * (x - mean) / sqrt(var + eps)` per channel and group of rows (the weight is
    /// gamma; the layer's bias, beta): over each image's `pixels` rows (`per_image`: GroupNorm
    /// with a group per channel), or over the whole batch's (batch norm), as `ops::norm`. Not
    /// linear: the passes treat it apart (see [`normalize`] and the functions after it).
    Norm {
        pixels: usize,
        channels: usize,
        per_image: bool,
    },
}

impl Map {
    /// Values per sample in and out.
    pub fn widths(&self) -> (usize, usize) {
        match *self {
            Map::Dense { inputs, outputs } => (inputs, outputs),
            Map::Conv { g, c, n, .. } => (g.in_pixels() * c, g.out_pixels() * n),
            Map::ConvT { g, c, n, .. } => (g.out_pixels() * n, g.in_pixels() * c),
            Map::Norm {
                pixels, channels, ..
            } => (pixels * channels, pixels * channels),
        }
    }

    fn weight_len(&self) -> usize {
        match *self {
            Map::Dense { inputs, outputs } => inputs * outputs,
            Map::Conv { g, c, n, .. } | Map::ConvT { g, c, n, .. } => g.patch_len(c) * n,
            Map::Norm { channels, .. } => channels,
        }
    }

    /// Channels of an output pixel: what a bias has one entry for.
    fn out_channels(&self) -> usize {
        match *self {
            Map::Dense { outputs, .. } => outputs,
            Map::Conv { n, .. } => n,
            Map::ConvT { c, .. } => c,
            Map::Norm { channels, .. } => channels,
        }
    }

    /// `y = map(x)` for `rows` samples.
    fn apply(&self, dev: &dyn Backend, w: Ptr, rows: usize, x: Ptr, y: Ptr) -> Result<()> {
        match *self {
            // y = x W^T, W (outputs, inputs)
            Map::Dense { inputs, outputs } => {
                rm_gemm(dev, false, true, (rows, outputs, inputs), 1.0, x, w, 0.0, y)
            }
            Map::Conv { g, c, n, w_t } => Conv { g, c, n, w_t, rows }.to_patches(dev, w, x, y),
            Map::ConvT { g, c, n, w_t } => Conv { g, c, n, w_t, rows }.to_image(dev, w, x, y),
            Map::Norm { .. } => not_linear(),
        }
    }

    /// `dx = map^T(dy)`: the gradient w.r.t. the input of a loss whose gradient w.r.t. the
    /// output is `dy`.
    fn adjoint(&self, dev: &dyn Backend, w: Ptr, rows: usize, dy: Ptr, dx: Ptr) -> Result<()> {
        match *self {
            // dx = dy W
            Map::Dense { inputs, outputs } => rm_gemm(
                dev,
                false,
                false,
                (rows, inputs, outputs),
                1.0,
                dy,
                w,
                0.0,
                dx,
            ),
            Map::Conv { g, c, n, w_t } => Conv { g, c, n, w_t, rows }.to_image(dev, w, dy, dx),
            Map::ConvT { g, c, n, w_t } => Conv { g, c, n, w_t, rows }.to_patches(dev, w, dy, dx),
            Map::Norm { .. } => not_linear(),
        }
    }

    /// `dw += d<dy, map(x; W)>/dW`.
    fn wgrad(&self, dev: &dyn Backend, dw: Ptr, rows: usize, x: Ptr, dy: Ptr) -> Result<()> {
        match *self {
            // dW += dy^T x
            Map::Dense { inputs, outputs } => rm_gemm(
                dev,
                true,
                false,
                (outputs, inputs, rows),
                1.0,
                dy,
                x,
                1.0,
                dw,
            ),
            Map::Conv { g, c, n, w_t } => Conv { g, c, n, w_t, rows }.wgrad(dev, dw, x, dy),
            Map::ConvT { g, c, n, w_t } => Conv { g, c, n, w_t, rows }.wgrad(dev, dw, dy, x),
            Map::Norm { .. } => not_linear(),
        }
    }

    /// Of a normalisation on a batch of `rows` samples: the rows a group spans, and the
    /// groups (`None` for the linear maps).
    fn norm_groups(&self, rows: usize) -> Option<(usize, usize)> {
        match *self {
            Map::Norm {
                pixels,
                per_image: true,
                ..
            } => Some((pixels, rows)),
            Map::Norm { pixels, .. } => Some((rows * pixels, 1)),
            _ => None,
        }
    }
}

fn not_linear() -> Result<()> {
    bail!("a normalisation is not a linear map")
}

/// A convolution's three products on a batch of `rows` images, through a patch matrix of
/// the whole batch (`im2col`, `col2im` in kernels.cu) and cuBLAS's products.
struct Conv {
    g: ConvGeom,
    c: usize,
    n: usize,
    w_t: bool,
    rows: usize,
}

impl Conv {
    /// Rows of the patch matrix (output pixels of the batch), and its width.
    fn patch_shape(&self) -> (usize, usize) {
        (self.rows * self.g.out_pixels(), self.g.patch_len(self.c))
    }

    fn geometry(&self, out: Ptr, input: Ptr) -> k::im2col {
        let g = self.g;
        let u = |v: usize| v as u32;
        k::im2col {
            out,
            input,
            in_h: u(g.in_h),
            in_w: u(g.in_w),
            out_h: u(g.out_h),
            out_w: u(g.out_w),
            kernel: u(g.kernel),
            stride: u(g.stride),
            pad: u(g.pad),
            c: u(self.c),
        }
    }

    /// The batch's patch matrix of the image side `img`.
    fn patches(&self, dev: &dyn Backend, img: Ptr) -> Result<Buffer> {
        let (prows, kkc) = self.patch_shape();
        let cols = dev.alloc(prows * kkc)?;
        dev.launch(self.geometry(cols.ptr(), img), cols.len())?;
        Ok(cols)
    }

    /// `patch = im2col(img) W`
    fn to_patches(&self, dev: &dyn Backend, w: Ptr, img: Ptr, patch: Ptr) -> Result<()> {
        let (prows, kkc) = self.patch_shape();
        let cols = self.patches(dev, img)?;
        rm_gemm(
            dev,
            false,
            self.w_t,
            (prows, self.n, kkc),
            1.0,
            cols.ptr(),
            w,
            0.0,
            patch,
        )
    }

    /// `img = col2im(patch W^T)`
    fn to_image(&self, dev: &dyn Backend, w: Ptr, patch: Ptr, img: Ptr) -> Result<()> {
        let (prows, kkc) = self.patch_shape();
        let cols = dev.alloc(prows * kkc)?;
        rm_gemm(
            dev,
            false,
            !self.w_t,
            (prows, kkc, self.n),
            1.0,
            patch,
            w,
            0.0,
            cols.ptr(),
        )?;
        let k::im2col {
            out,
            input,
            in_h,
            in_w,
            out_h,
            out_w,
            kernel,
            stride,
            pad,
            c,
        } = self.geometry(img, cols.ptr());
        let params = k::col2im {
            out,
            input,
            in_h,
            in_w,
            out_h,
            out_w,
            kernel,
            stride,
            pad,
            c,
        };
        dev.launch(params, self.rows * self.g.in_pixels() * self.c)
    }

    /// `dW += im2col(img)^T patch` (transposed with `w_t`).
    fn wgrad(&self, dev: &dyn Backend, dw: Ptr, img: Ptr, patch: Ptr) -> Result<()> {
        let (prows, kkc) = self.patch_shape();
        let cols = self.patches(dev, img)?;
        if self.w_t {
            rm_gemm(
                dev,
                true,
                false,
                (self.n, kkc, prows),
                1.0,
                patch,
                cols.ptr(),
                1.0,
                dw,
            )
        } else {
            rm_gemm(
                dev,
                true,
                false,
                (kkc, self.n, prows),
                1.0,
                cols.ptr(),
                patch,
                1.0,
                dw,
            )
        }
    }
}

/// One layer: a linear map, a bias (per output channel) if it has one, then an activation.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// The layer's name among the model's tensors (`NAME.weight`, `NAME.bias`).
    pub name: &'static str,
    pub map: Map,
    pub bias: bool,
    pub act: Act,
}

impl LayerSpec {
    /// The layer of a model's typed dense layer: its sizes are the layer type's.
    pub fn dense<const I: usize, const O: usize, E: Dtype>(
        name: &'static str,
        _layer: &impl DenseWeights<I, O, E>,
        act: Act,
    ) -> Self {
        let map = Map::Dense {
            inputs: I,
            outputs: O,
        };
        Self {
            name,
            map,
            bias: true,
            act,
        }
    }

    /// The layer of a model's convolution of geometry `g`; channels and kernel are the layer
    /// type's.
    pub fn conv<const CIN: usize, const COUT: usize, E: Dtype, const K: usize, const BIAS: bool>(
        name: &'static str,
        _layer: &Conv2d<CIN, COUT, E, Cpu, K, BIAS>,
        g: ConvGeom,
        act: Act,
    ) -> Self {
        assert_eq!(
            g.kernel, K,
            "{name}: the geometry's kernel is not the layer's"
        );
        let map = Map::Conv {
            g,
            c: CIN,
            n: COUT,
            w_t: false,
        };
        Self {
            name,
            map,
            bias: BIAS,
            act,
        }
    }

    /// The layer of a model's transposed convolution, the adjoint of the conv of geometry `g`
    /// (its output is `g`'s input); channels and kernel are the layer type's.
    pub fn conv_t<
        const CIN: usize,
        const COUT: usize,
        E: Dtype,
        const K: usize,
        const BIAS: bool,
    >(
        name: &'static str,
        _layer: &ConvTranspose2d<CIN, COUT, E, Cpu, K, BIAS>,
        g: ConvGeom,
        act: Act,
    ) -> Self {
        assert_eq!(
            g.kernel, K,
            "{name}: the geometry's kernel is not the layer's"
        );
        let map = Map::ConvT {
            g,
            c: COUT,
            n: CIN,
            w_t: true,
        };
        Self {
            name,
            map,
            bias: BIAS,
            act,
        }
    }
}

/// A net's layers, input first.
#[derive(Clone, Debug, PartialEq)]
pub struct NetSpec {
    pub layers: Vec<LayerSpec>,
}

/// Gradients are summed in chunks of this many values (a thread each), then per tensor.
const CHUNK: usize = 4096;

impl LayerSpec {
    /// The layer of a model's normalisation of `C` channels over `pixels` pixels an image.
    pub fn norm<const C: usize, E: Dtype>(
        name: &'static str,
        _layer: &ChannelNorm<C, E, Cpu>,
        pixels: usize,
        per_image: bool,
        act: Act,
    ) -> Self {
        let map = Map::Norm {
            pixels,
            channels: C,
            per_image,
        };
        Self {
            name,
            map,
            bias: true,
            act,
        }
    }
}

/// A layer with its tensors' places in the flat parameter buffer.
struct Layer {
    spec: LayerSpec,
    weight: usize,
    bias: Option<usize>,
}

/// A net's state on a device: parameters, gradients and optimizer moments, each one flat
/// buffer holding the model's tensors in the model's order.
pub struct DeviceNet {
    layers: Vec<Layer>,
    /// (offset, length) of each tensor in the flat buffers, in the model's order.
    pub tensors: Vec<(usize, usize)>,
    pub params: Buffer,
    pub grads: Buffer,
    /// Adam's first moments (unused by RMSprop) and second moments (RMSprop's mean square).
    pub m: Buffer,
    pub v: Buffer,
    /// The sums of squares of the gradient: chunk tables, the chunks' sums, one per tensor.
    chunk_start: Buffer,
    chunk_len: Buffer,
    chunk_first: Buffer,
    partial: Buffer,
    pub sumsq: Buffer,
}

/// What a forward pass keeps for the passes after it.
pub struct Pass {
    pub rows: usize,
    /// Each layer's output (after its activation).
    pub outputs: Vec<Buffer>,
    /// Each layer's activation slopes, where the activation is not the identity.
    pub slopes: Vec<Option<Buffer>>,
    /// Each normalisation's standardised input and its groups' standard deviations.
    norms: Vec<Option<(Buffer, Buffer)>>,
}

impl Pass {
    /// The last layer's output.
    pub fn out(&self) -> &Buffer {
        self.outputs.last().expect("a net has a layer")
    }
}

/// The input gradient of a pass (one row per row of its input) and what its backward pass
/// needs: `u[k]`, the gradient of the output w.r.t. layer k's pre-activation, and for a
/// normalisation the means its adjoint took of `u[k]` ([`NormMeans`]).
pub struct InputGradient {
    pub g: Buffer,
    u: Vec<Buffer>,
    means: Vec<Option<NormMeans>>,
}

/// A normalisation's backward means per group and channel, `m1 = mean(du)` and
/// `m2 = mean(du unit)`, `du` the gradient w.r.t. its standardised values.
struct NormMeans {
    m1: Buffer,
    m2: Buffer,
}

/// Gradients w.r.t. a normalisation's standardised values and its groups' std that reach
/// them from outside the pass (the penalty's, through the input-gradient graph).
struct NormSeeds {
    unit: Buffer,
    std: Buffer,
}

impl DeviceNet {
    /// The net of `spec` with the model's tensors `named` (names, shapes and values, in the
    /// model's order). Every tensor must belong to a layer of the spec, at its size.
    pub fn new(dev: &dyn Backend, spec: &NetSpec, named: &[NamedTensor]) -> Result<Self> {
        let mut tensors = Vec::new();
        let mut offset = 0;
        for t in named {
            tensors.push((offset, t.values.len()));
            offset += t.values.len();
        }
        let find = |name: String, len: usize| -> Result<usize> {
            match named.iter().position(|t| t.name == name) {
                Some(i) if tensors[i].1 == len => Ok(tensors[i].0),
                Some(i) => bail!("{name} holds {} values, not {len}", tensors[i].1),
                None => bail!("the model has no {name}"),
            }
        };
        let mut layers = Vec::new();
        let mut used = 0;
        for pair in spec.layers.windows(2) {
            let (out, next) = (pair[0].map.widths().1, pair[1].map.widths().0);
            if out != next {
                bail!(
                    "{} gives {out} values a sample, {} takes {next}",
                    pair[0].name,
                    pair[1].name
                );
            }
        }
        for l in &spec.layers {
            let weight = find(format!("{}.weight", l.name), l.map.weight_len())?;
            let out_channels = l.map.out_channels();
            let bias = l
                .bias
                .then(|| find(format!("{}.bias", l.name), out_channels))
                .transpose()?;
            used += 1 + l.bias as usize;
            layers.push(Layer {
                spec: l.clone(),
                weight,
                bias,
            });
        }
        if named.len() != used {
            bail!("the model has tensors that no layer of the device net uses");
        }
        let values: Vec<f32> = named
            .iter()
            .flat_map(|t| t.values.iter().copied())
            .collect();
        // Chunks of at most CHUNK values, never across a tensor's end.
        let (mut start, mut len, mut first) = (Vec::new(), Vec::new(), vec![0u32]);
        for &(offset, n) in &tensors {
            for at in (0..n).step_by(CHUNK) {
                start.push((offset + at) as u32);
                len.push(CHUNK.min(n - at) as u32);
            }
            first.push(start.len() as u32);
        }
        Ok(Self {
            params: dev.buffer_from(&values)?,
            grads: dev.alloc(offset)?,
            m: dev.alloc(offset)?,
            v: dev.alloc(offset)?,
            partial: dev.alloc(start.len())?,
            sumsq: dev.alloc(tensors.len())?,
            chunk_start: dev.buffer_from_u32(&start)?,
            chunk_len: dev.buffer_from_u32(&len)?,
            chunk_first: dev.buffer_from_u32(&first)?,
            layers,
            tensors,
        })
    }

    /// Values of the flat buffers.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// A flat buffer read back as one vector per tensor.
    pub fn read(&self, dev: &dyn Backend, buf: &Buffer) -> Result<Vec<Vec<f32>>> {
        let flat = dev.read(buf.ptr(), buf.len())?;
        Ok(self.split(&flat))
    }

    /// One vector per tensor of a flat vector.
    pub fn split(&self, flat: &[f32]) -> Vec<Vec<f32>> {
        let tensors = self.tensors.iter();
        tensors.map(|&(o, n)| flat[o..o + n].to_vec()).collect()
    }

    /// Writes one vector per tensor into a flat buffer (an empty list: zeros).
    pub fn write(&self, dev: &dyn Backend, buf: &Buffer, values: &[Vec<f32>]) -> Result<()> {
        if values.is_empty() {
            return fill(dev, buf.ptr(), buf.len(), 0.0);
        }
        if values.len() != self.tensors.len()
            || values
                .iter()
                .zip(&self.tensors)
                .any(|(v, t)| v.len() != t.1)
        {
            bail!("the values do not fit the net's tensors");
        }
        let flat: Vec<f32> = values.iter().flatten().copied().collect();
        dev.upload_f32(buf.ptr(), &flat)
    }

    /// The output width.
    pub fn output_width(&self) -> usize {
        self.layers
            .last()
            .expect("a net has a layer")
            .spec
            .map
            .widths()
            .1
    }

    /// The net on `rows` rows at `x`; with `keep`, the slopes its other passes need.
    pub fn forward(&self, dev: &dyn Backend, x: Ptr, rows: usize, keep: bool) -> Result<Pass> {
        let mut outputs: Vec<Buffer> = Vec::new();
        let mut slopes = Vec::new();
        let mut norms = Vec::new();
        for l in &self.layers {
            let o = l.spec.map.widths().1;
            let input = outputs.last().map_or(x, Buffer::ptr);
            let y = dev.alloc(rows * o)?;
            let (map, w) = (&l.spec.map, self.params.at(l.weight));
            match map.norm_groups(rows) {
                Some(groups) => norms.push(Some(normalize(dev, map, groups, input, w, &y)?)),
                None => {
                    map.apply(dev, w, rows, input, y.ptr())?;
                    norms.push(None);
                }
            }
            let slope = if keep && l.spec.act != Act::Identity {
                Some(dev.alloc(rows * o)?)
            } else {
                None
            };
            let (act, leak) = l.spec.act.code();
            let params = k::bias_act {
                y: y.ptr(),
                bias: l.bias.map_or(NULL, |b| self.params.at(b)),
                slope: slope.as_ref().map_or(NULL, Buffer::ptr),
                cols: l.spec.map.out_channels() as u32,
                act,
                leak,
            };
            dev.launch(params, rows * o)?;
            outputs.push(y);
            slopes.push(slope);
        }
        Ok(Pass {
            rows,
            outputs,
            slopes,
            norms,
        })
    }

    /// Back through `pass` (run on `x`) from `d_out`, the gradient w.r.t. its output:
    /// with `weights`, adds the weight and bias gradients into [`Self::grads`]; with
    /// `input`, returns the gradient w.r.t. `x`.
    pub fn backward(
        &self,
        dev: &dyn Backend,
        pass: &Pass,
        x: Ptr,
        d_out: Buffer,
        weights: bool,
        input: bool,
    ) -> Result<Option<Buffer>> {
        let no_seeds: Vec<Option<NormSeeds>> = self.layers.iter().map(|_| None).collect();
        let top = self.layers.len() - 1;
        self.backward_seeded(dev, pass, x, (top, d_out), &no_seeds, weights, input)
    }

    /// [`Self::backward`] from `d_out`, the gradient w.r.t. the output of layer `top` (the
    /// layers above it get none), with `seeds` added at the normalisations that have them.
    #[allow(clippy::too_many_arguments)]
    fn backward_seeded(
        &self,
        dev: &dyn Backend,
        pass: &Pass,
        x: Ptr,
        (top, d_out): (usize, Buffer),
        seeds: &[Option<NormSeeds>],
        weights: bool,
        input: bool,
    ) -> Result<Option<Buffer>> {
        let rows = pass.rows;
        let mut delta = d_out;
        for (n, l) in self.layers.iter().enumerate().take(top + 1).rev() {
            let map = &l.spec.map;
            times_slopes(dev, &delta, &pass.slopes[n])?;
            let layer_input = if n == 0 { x } else { pass.outputs[n - 1].ptr() };
            if let (Some(groups), Some(saved)) = (map.norm_groups(rows), &pass.norms[n]) {
                let beta = l.bias.expect("a normalisation has a shift");
                let grads = weights.then(|| [self.grads.at(l.weight), self.grads.at(beta)]);
                let gamma = self.params.at(l.weight);
                let seed = seeds[n].as_ref();
                delta = normalize_backward(dev, map, groups, saved, gamma, &delta, grads, seed)?.0;
                continue;
            }
            if weights {
                map.wgrad(dev, self.grads.at(l.weight), rows, layer_input, delta.ptr())?;
                if let Some(b) = l.bias {
                    // db += the sums of delta over the batch's output pixels, per channel.
                    let cols = map.out_channels();
                    let sums = k::colsum {
                        out: self.grads.at(b),
                        x: delta.ptr(),
                        rows: (delta.len() / cols) as u32,
                        cols: cols as u32,
                    };
                    dev.launch(sums, cols)?;
                }
            }
            if n > 0 || input {
                let next = dev.alloc(rows * map.widths().0)?;
                map.adjoint(dev, self.params.at(l.weight), rows, delta.ptr(), next.ptr())?;
                delta = next;
            }
        }
        Ok(input.then_some(delta))
    }

    /// The gradient of the (single) output w.r.t. the input of `pass`, row by row, with the
    /// activation slopes held constant: u = slope of the last layer, then, layer by layer
    /// back, v = map^T(u) and u = v * slopes, until v is the input gradient.
    pub fn input_gradient(&self, dev: &dyn Backend, pass: &Pass) -> Result<InputGradient> {
        let rows = pass.rows;
        let last = self.layers.len() - 1;
        let mut u = dev.alloc(rows * self.output_width())?;
        match &pass.slopes[last] {
            Some(s) => dev.launch(
                k::add {
                    out: u.ptr(),
                    a: s.ptr(),
                    b: NULL,
                },
                u.len(),
            )?,
            None => fill(dev, u.ptr(), u.len(), 1.0)?,
        }
        let (mut us, mut means) = (Vec::new(), Vec::new());
        for (n, l) in self.layers.iter().enumerate().rev() {
            let (map, w) = (&l.spec.map, self.params.at(l.weight));
            let v = match (map.norm_groups(rows), &pass.norms[n]) {
                (Some(groups), Some(saved)) => {
                    let (v, m) = normalize_backward(dev, map, groups, saved, w, &u, None, None)?;
                    means.push(Some(m));
                    v
                }
                _ => {
                    let v = dev.alloc(rows * map.widths().0)?;
                    map.adjoint(dev, w, rows, u.ptr(), v.ptr())?;
                    means.push(None);
                    v
                }
            };
            us.push(std::mem::replace(&mut u, v));
            if n > 0 {
                times_slopes(dev, &u, &pass.slopes[n - 1])?;
            }
        }
        us.reverse();
        means.reverse();
        Ok(InputGradient { g: u, u: us, means })
    }

    /// Adds into [`Self::grads`] the weight gradient of a loss whose gradient w.r.t. the input
    /// gradient `ig` (of `pass`, run on `x`) is `dg`: the backward pass of the input-gradient
    /// graph. (The biases do not enter the input gradient.) Layer n's part of that graph is
    /// v = map_n^T(u_n; W_n), linear in W_n: d<dv, map^T(u; W)>/dW = d<map(dv; W), u>/dW, the
    /// map's own weight gradient at input dv and output gradient u. A normalisation's part
    /// also depends on the forward pass's standardised values and std: the gradients w.r.t.
    /// them go back through the forward pass (which the loss does not otherwise reach) from
    /// the highest normalisation down.
    pub fn input_gradient_backward(
        &self,
        dev: &dyn Backend,
        pass: &Pass,
        x: Ptr,
        ig: &InputGradient,
        dg: Buffer,
    ) -> Result<()> {
        let rows = pass.rows;
        let last = self.layers.len() - 1;
        let mut seeds: Vec<Option<NormSeeds>> = Vec::new();
        // dv: the loss's gradient w.r.t. layer n's v.
        let mut dv = dg;
        for (n, l) in self.layers.iter().enumerate() {
            let (map, w) = (&l.spec.map, self.params.at(l.weight));
            let du = match (map.norm_groups(rows), &pass.norms[n], &ig.means[n]) {
                (Some(groups), Some(saved), Some(means)) => {
                    let d_gamma = self.grads.at(l.weight);
                    let (du, s) = normalize_adjoint_backward(
                        dev, map, groups, saved, w, &ig.u[n], means, &dv, d_gamma,
                    )?;
                    seeds.push(Some(s));
                    du
                }
                _ => {
                    map.wgrad(dev, self.grads.at(l.weight), rows, dv.ptr(), ig.u[n].ptr())?;
                    seeds.push(None);
                    if n == last {
                        break;
                    }
                    // du_n = map_n(dv)
                    let du = dev.alloc(rows * map.widths().1)?;
                    map.apply(dev, w, rows, dv.ptr(), du.ptr())?;
                    du
                }
            };
            // Through u_n = v_{n+1} * slopes_n.
            times_slopes(dev, &du, &pass.slopes[n])?;
            dv = du;
        }
        if let Some(top) = seeds.iter().rposition(Option::is_some) {
            let width = self.layers[top].spec.map.widths().1;
            let zero = dev.alloc(rows * width)?;
            fill(dev, zero.ptr(), zero.len(), 0.0)?;
            self.backward_seeded(dev, pass, x, (top, zero), &seeds, true, false)?;
        }
        Ok(())
    }

    /// [`Self::sumsq`] = the sum of squares of each tensor's gradient.
    pub fn gradient_sums(&self, dev: &dyn Backend) -> Result<()> {
        let chunks = k::sumsq_chunks {
            partial: self.partial.ptr(),
            x: self.grads.ptr(),
            start: self.chunk_start.ptr(),
            len: self.chunk_len.ptr(),
        };
        dev.launch(chunks, self.partial.len())?;
        let sums = k::sum_chunks {
            out: self.sumsq.ptr(),
            partial: self.partial.ptr(),
            first: self.chunk_first.ptr(),
        };
        dev.launch(sums, self.tensors.len())
    }
}

/// A normalisation `map` of `groups` (rows a group, groups) at `x` into `y`, before beta and
/// the activation (which `bias_act` adds): y = gamma * unit, unit = (x - mean) / std. Returns
/// unit and std, for the backward pass.
fn normalize(
    dev: &dyn Backend,
    map: &Map,
    (group_rows, groups): (usize, usize),
    x: Ptr,
    gamma: Ptr,
    y: &Buffer,
) -> Result<(Buffer, Buffer)> {
    let c = map.out_channels();
    let [mean, std] = [dev.alloc(groups * c)?, dev.alloc(groups * c)?];
    let stats = k::norm_stats {
        x,
        mean: mean.ptr(),
        std: std.ptr(),
        rows: group_rows as u32,
        c: c as u32,
        eps: NORM_EPS as f32,
    };
    dev.launch(stats, groups * c)?;
    let unit = dev.alloc(y.len())?;
    let apply = k::norm_apply {
        y: y.ptr(),
        unit: unit.ptr(),
        x,
        mean: mean.ptr(),
        std: std.ptr(),
        gamma,
        rows: group_rows as u32,
        c: c as u32,
    };
    dev.launch(apply, y.len())?;
    Ok((unit, std))
}

/// Back through a normalisation from `delta`, the gradient w.r.t. its output before the
/// activation (beta's sum included), and the `seeds` from outside the pass if any: with
/// `grads` (gamma's and beta's), adds their gradients; returns the gradient w.r.t. its input,
/// (du - mean(du) - unit mean(du unit)) / std + d_std unit / rows, du = gamma delta +
/// d_unit, means per group and channel, and those means.
#[allow(clippy::too_many_arguments)]
fn normalize_backward(
    dev: &dyn Backend,
    map: &Map,
    (group_rows, groups): (usize, usize),
    (unit, std): &(Buffer, Buffer),
    gamma: Ptr,
    delta: &Buffer,
    grads: Option<[Ptr; 2]>,
    seeds: Option<&NormSeeds>,
) -> Result<(Buffer, NormMeans)> {
    let c = map.out_channels();
    let (rows, cols) = ((delta.len() / c) as u32, c as u32);
    if let Some([d_gamma, d_beta]) = grads {
        let x = delta.ptr();
        dev.launch(
            k::colsum {
                out: d_beta,
                x,
                rows,
                cols,
            },
            c,
        )?;
        let dots = k::coldot {
            out: d_gamma,
            a: x,
            b: unit.ptr(),
            rows,
            cols,
        };
        dev.launch(dots, c)?;
    }
    let (seed, dstd) = seeds.map_or((NULL, NULL), |s| (s.unit.ptr(), s.std.ptr()));
    let [m1, m2] = [dev.alloc(groups * c)?, dev.alloc(groups * c)?];
    let stats = k::norm_grad_stats {
        m1: m1.ptr(),
        m2: m2.ptr(),
        delta: delta.ptr(),
        unit: unit.ptr(),
        gamma,
        seed,
        rows: group_rows as u32,
        c: cols,
    };
    dev.launch(stats, groups * c)?;
    let dx = dev.alloc(delta.len())?;
    let back = k::norm_backward {
        dx: dx.ptr(),
        delta: delta.ptr(),
        unit: unit.ptr(),
        m1: m1.ptr(),
        m2: m2.ptr(),
        std: std.ptr(),
        gamma,
        seed,
        dstd,
        rows: group_rows as u32,
        c: cols,
    };
    dev.launch(back, delta.len())?;
    Ok((dx, NormMeans { m1, m2 }))
}

/// The backward pass of a normalisation's adjoint `out = normalize_backward(d)` (the
/// input-gradient graph's step through it), given `q`, the loss's gradient w.r.t. `out`: adds
/// gamma's gradient into `d_gamma`; returns the gradient w.r.t. `d` and the [`NormSeeds`] for
/// the forward pass, where unit and std came from.
#[allow(clippy::too_many_arguments)]
fn normalize_adjoint_backward(
    dev: &dyn Backend,
    map: &Map,
    (group_rows, groups): (usize, usize),
    (unit, std): &(Buffer, Buffer),
    gamma: Ptr,
    d: &Buffer,
    means: &NormMeans,
    q: &Buffer,
    d_gamma: Ptr,
) -> Result<(Buffer, NormSeeds)> {
    let c = map.out_channels();
    let stats_len = groups * c;
    let [q1, q2, d_std, d_gam] = [(); 4].map(|_| dev.alloc(stats_len));
    let (q1, q2, d_std, d_gam) = (q1?, q2?, d_std?, d_gam?);
    let (rows, cols) = (group_rows as u32, c as u32);
    let stats = k::norm_adjoint_stats {
        q1: q1.ptr(),
        q2: q2.ptr(),
        dstd: d_std.ptr(),
        dgam: d_gam.ptr(),
        q: q.ptr(),
        unit: unit.ptr(),
        d: d.ptr(),
        m1: means.m1.ptr(),
        m2: means.m2.ptr(),
        std: std.ptr(),
        gamma,
        rows,
        c: cols,
    };
    dev.launch(stats, stats_len)?;
    // Each group's share of gamma's gradient, summed over the groups.
    let shares = k::colsum {
        out: d_gamma,
        x: d_gam.ptr(),
        rows: groups as u32,
        cols,
    };
    dev.launch(shares, c)?;
    let [dd, d_unit] = [dev.alloc(d.len())?, dev.alloc(d.len())?];
    let back = k::norm_adjoint_back {
        dd: dd.ptr(),
        dunit: d_unit.ptr(),
        q: q.ptr(),
        unit: unit.ptr(),
        d: d.ptr(),
        q1: q1.ptr(),
        q2: q2.ptr(),
        m2: means.m2.ptr(),
        std: std.ptr(),
        gamma,
        rows,
        c: cols,
    };
    dev.launch(back, d.len())?;
    let seeds = NormSeeds {
        unit: d_unit,
        std: d_std,
    };
    Ok((dd, seeds))
}

/// `x *= slopes`, where the activation has slopes (not the identity).
fn times_slopes(dev: &dyn Backend, x: &Buffer, slopes: &Option<Buffer>) -> Result<()> {
    match slopes {
        Some(s) => dev.launch(
            k::mul {
                x: x.ptr(),
                s: s.ptr(),
            },
            x.len(),
        ),
        None => Ok(()),
    }
}

/// `len` floats at `at` set to `value`.
pub fn fill(dev: &dyn Backend, at: Ptr, len: usize, value: f32) -> Result<()> {
    dev.launch(k::fill { x: at, value }, len)
}

/// Row-major `C (m x n) = alpha op(A) op(B) + beta C`, `op(A)` `m x k` and `op(B)` `k x n`,
/// each stored densely (transposed: stored as its transpose). A row-major matrix is the
/// column-major transpose, so this is cuBLAS's `C^T = op(B)^T op(A)^T`.
#[allow(clippy::too_many_arguments)]
pub fn rm_gemm(
    dev: &dyn Backend,
    trans_a: bool,
    trans_b: bool,
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    a: Ptr,
    b: Ptr,
    beta: f32,
    c: Ptr,
) -> Result<()> {
    dev.gemm(&Gemm {
        trans_a: trans_b,
        trans_b: trans_a,
        m: n,
        n: m,
        k,
        alpha,
        a: b,
        lda: if trans_b { k } else { n },
        b: a,
        ldb: if trans_a { m } else { k },
        beta,
        c,
        ldc: n,
    })
}
