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

use super::kernels::{self, NULL, params as k};
use super::{Backend, Buffer, Gemm, Ptr};
use crate::checkpoint::NamedTensor;
use crate::model::ops::layer::DenseWeights;

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

/// One layer: a fully connected map `inputs -> outputs` with a bias, then an activation.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    /// The layer's name among the model's tensors (`NAME.weight`, `NAME.bias`).
    pub name: &'static str,
    pub inputs: usize,
    pub outputs: usize,
    pub act: Act,
}

impl LayerSpec {
    /// The layer of a model's typed dense layer: its sizes are the layer type's.
    pub fn dense<const I: usize, const O: usize, E: dfdx::prelude::Dtype>(
        name: &'static str,
        _layer: &impl DenseWeights<I, O, E>,
        act: Act,
    ) -> Self {
        Self {
            name,
            inputs: I,
            outputs: O,
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

/// A layer with its tensors' places in the flat parameter buffer.
struct Layer {
    spec: LayerSpec,
    weight: usize,
    bias: usize,
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
}

impl Pass {
    /// The last layer's output.
    pub fn out(&self) -> &Buffer {
        self.outputs.last().expect("a net has a layer")
    }
}

/// The input gradient of a pass (one row per row of its input) and what its backward pass
/// needs: `u[k]`, the gradient of the output w.r.t. layer k's pre-activation.
pub struct InputGradient {
    pub g: Buffer,
    u: Vec<Buffer>,
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
        for l in &spec.layers {
            let weight = find(format!("{}.weight", l.name), l.inputs * l.outputs)?;
            let bias = find(format!("{}.bias", l.name), l.outputs)?;
            layers.push(Layer {
                spec: l.clone(),
                weight,
                bias,
            });
        }
        if named.len() != 2 * layers.len() {
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
        self.layers.last().expect("a net has a layer").spec.outputs
    }

    /// The net on `rows` rows at `x`; with `keep`, the slopes its other passes need.
    pub fn forward(&self, dev: &dyn Backend, x: Ptr, rows: usize, keep: bool) -> Result<Pass> {
        let mut outputs: Vec<Buffer> = Vec::new();
        let mut slopes = Vec::new();
        for l in &self.layers {
            let (i, o) = (l.spec.inputs, l.spec.outputs);
            let input = outputs.last().map_or(x, Buffer::ptr);
            let y = dev.alloc(rows * o)?;
            // y = x W^T
            rm_gemm(
                dev,
                false,
                true,
                (rows, o, i),
                1.0,
                input,
                self.params.at(l.weight),
                0.0,
                y.ptr(),
            )?;
            let slope = if keep && l.spec.act != Act::Identity {
                Some(dev.alloc(rows * o)?)
            } else {
                None
            };
            let (act, leak) = l.spec.act.code();
            let params = k::bias_act {
                y: y.ptr(),
                bias: self.params.at(l.bias),
                slope: slope.as_ref().map_or(NULL, Buffer::ptr),
                cols: o as u32,
                per: 1,
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
        let rows = pass.rows;
        let mut delta = d_out;
        for (n, l) in self.layers.iter().enumerate().rev() {
            let (i, o) = (l.spec.inputs, l.spec.outputs);
            if let Some(s) = &pass.slopes[n] {
                dev.launch(
                    k::mul {
                        x: delta.ptr(),
                        s: s.ptr(),
                    },
                    rows * o,
                )?;
            }
            let layer_input = if n == 0 { x } else { pass.outputs[n - 1].ptr() };
            if weights {
                // dW += delta^T x; db += the column sums of delta.
                rm_gemm(
                    dev,
                    true,
                    false,
                    (o, i, rows),
                    1.0,
                    delta.ptr(),
                    layer_input,
                    1.0,
                    self.grads.at(l.weight),
                )?;
                let sums = k::colsum {
                    out: self.grads.at(l.bias),
                    x: delta.ptr(),
                    rows: rows as u32,
                    cols: o as u32,
                    per: 1,
                };
                dev.launch(sums, o)?;
            }
            if n > 0 || input {
                // dx = delta W
                let next = dev.alloc(rows * i)?;
                rm_gemm(
                    dev,
                    false,
                    false,
                    (rows, i, o),
                    1.0,
                    delta.ptr(),
                    self.params.at(l.weight),
                    0.0,
                    next.ptr(),
                )?;
                delta = next;
            }
        }
        Ok(input.then_some(delta))
    }

    /// The gradient of the (single) output w.r.t. the input of `pass`, row by row, with the
    /// activation slopes held constant: u = slope of the last layer, then, layer by layer
    /// back, v = u W and u = v * slopes, until v is the input gradient.
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
        let mut us = Vec::new();
        for (n, l) in self.layers.iter().enumerate().rev() {
            let (i, o) = (l.spec.inputs, l.spec.outputs);
            let v = dev.alloc(rows * i)?;
            rm_gemm(
                dev,
                false,
                false,
                (rows, i, o),
                1.0,
                u.ptr(),
                self.params.at(l.weight),
                0.0,
                v.ptr(),
            )?;
            us.push(std::mem::replace(&mut u, v));
            if n > 0 {
                if let Some(s) = &pass.slopes[n - 1] {
                    dev.launch(
                        k::mul {
                            x: u.ptr(),
                            s: s.ptr(),
                        },
                        rows * i,
                    )?;
                }
            }
        }
        us.reverse();
        Ok(InputGradient { g: u, u: us })
    }

    /// Adds into [`Self::grads`] the weight gradient of a loss whose gradient w.r.t. the input
    /// gradient `ig` (of `pass`) is `dg`: the backward pass of the input-gradient graph. (The
    /// biases do not enter the input gradient.)
    pub fn input_gradient_backward(
        &self,
        dev: &dyn Backend,
        pass: &Pass,
        ig: &InputGradient,
        dg: Buffer,
    ) -> Result<()> {
        let rows = pass.rows;
        let last = self.layers.len() - 1;
        // dv: the loss's gradient w.r.t. v = u_n W_n, layer n's input-side product.
        let mut dv = dg;
        for (n, l) in self.layers.iter().enumerate() {
            let (i, o) = (l.spec.inputs, l.spec.outputs);
            // dW_n += u_n^T dv
            rm_gemm(
                dev,
                true,
                false,
                (o, i, rows),
                1.0,
                ig.u[n].ptr(),
                dv.ptr(),
                1.0,
                self.grads.at(l.weight),
            )?;
            if n < last {
                // du_n = dv W_n^T, then through u_n = v_{n+1} * slopes_n.
                let du = dev.alloc(rows * o)?;
                rm_gemm(
                    dev,
                    false,
                    true,
                    (rows, o, i),
                    1.0,
                    dv.ptr(),
                    self.params.at(l.weight),
                    0.0,
                    du.ptr(),
                )?;
                if let Some(s) = &pass.slopes[n] {
                    dev.launch(
                        k::mul {
                            x: du.ptr(),
                            s: s.ptr(),
                        },
                        rows * o,
                    )?;
                }
                dv = du;
            }
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
