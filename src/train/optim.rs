//! Adam and RMSprop over a model's parameters, with their state in plain vectors (dfdx keeps
//! its optimizers' moments private; ours can be inspected, saved and restored).

use dfdx::prelude::*;

use crate::config::OptimizerKind;
use crate::model::Float;
use crate::model::params::update_params;

pub use crate::config::DEFAULT_BETAS as ADAM_BETAS;
/// RMSprop smoothing constant (PyTorch's default, used by the WGAN code).
pub const RMSPROP_ALPHA: f64 = 0.99;
pub const EPS: f64 = 1e-8;

#[derive(Clone, Debug, PartialEq)]
pub struct Optimizer<E> {
    pub kind: OptimizerKind,
    pub lr: f64,
    /// Adam's decay rates of the two moments (unused by RMSprop).
    pub betas: [f64; 2],
    /// Updates done so far (Adam's bias correction).
    pub t: u64,
    /// First moments (Adam), one vector per parameter tensor.
    pub m: Vec<Vec<E>>,
    /// Second moments (Adam) or the running mean of squared gradients (RMSprop).
    pub v: Vec<Vec<E>>,
}

impl<E: Float> Optimizer<E>
where
    Cpu: Device<E>,
{
    pub fn new(kind: OptimizerKind, lr: f64, betas: [f64; 2]) -> Self {
        Self {
            kind,
            lr,
            betas,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// One update of every parameter of `model` from `grads`, one vector per parameter tensor
    /// in the model's order (as `read_grads` gives them).
    pub fn step<M: TensorCollection<E, Cpu>>(&mut self, model: &mut M, grads: &[Vec<E>]) {
        self.t += 1;
        let c = |x: f64| E::from_f64(x).unwrap();
        let (kind, lr, eps) = (self.kind, c(self.lr), c(EPS));
        let (b1, b2) = (c(self.betas[0]), c(self.betas[1]));
        let alpha = c(RMSPROP_ALPHA);
        let t = self.t as i32;
        let (bc1, bc2) = (E::one() - b1.powi(t), E::one() - b2.powi(t));
        let (ms, vs) = (&mut self.m, &mut self.v);
        let mut seen = 0;
        update_params(model, None, |i, p, _| {
            seen += 1;
            let g = grads.get(i).expect("one gradient per parameter");
            if ms.len() <= i {
                ms.push(vec![E::zero(); p.len()]);
                vs.push(vec![E::zero(); p.len()]);
            }
            let (m, v) = (&mut ms[i], &mut vs[i]);
            assert!(m.len() == p.len() && g.len() == p.len());
            // Iterators rather than indices: no bounds checks, so the loops vectorise. The
            // arithmetic is the same, operation for operation.
            let one = E::one();
            match kind {
                OptimizerKind::Adam => {
                    for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        *m = b1 * *m + (one - b1) * *g;
                        *v = b2 * *v + (one - b2) * *g * *g;
                        let (m_hat, v_hat) = (*m / bc1, *v / bc2);
                        *p -= lr * m_hat / (v_hat.sqrt() + eps);
                    }
                }
                OptimizerKind::RmsProp => {
                    for ((p, g), v) in p.iter_mut().zip(g).zip(v.iter_mut()) {
                        *v = alpha * *v + (one - alpha) * *g * *g;
                        *p -= lr * *g / (v.sqrt() + eps);
                    }
                }
            }
        });
        assert_eq!(seen, grads.len(), "one gradient per parameter");
    }
}
