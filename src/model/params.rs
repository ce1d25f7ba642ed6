//! Walking a model's parameter tensors in a fixed order (dfdx's `TensorCollection` order), as
//! plain slices: for optimizers, weight clipping, figures and tests.

use dfdx::prelude::*;

use super::Float;
use super::ops::weights::weights_changed;
use crate::checkpoint::NamedTensor;

/// Called for each parameter tensor in turn with its index, its values and, when gradients
/// were given, its gradient.
struct EachParam<'a, E: Dtype, F> {
    index: usize,
    grads: Option<&'a Gradients<E, Cpu>>,
    scratch: Vec<E>,
    grad: Vec<E>,
    f: F,
}

impl<E: Float, F> EachParam<'_, E, F>
where
    Cpu: Device<E>,
{
    /// Loads the tensor into `scratch` and its gradient, if any, into `grad`; whether it has one.
    fn load<S: Shape>(&mut self, t: &Tensor<S, E, Cpu>) -> bool {
        let n = t.shape().num_elements();
        self.scratch.resize(n, E::default());
        t.copy_into(&mut self.scratch);
        let Some(g) = self.grads else { return false };
        self.grad.resize(n, E::default());
        g.get(t).copy_into(&mut self.grad);
        true
    }
}

impl<E: Float, F: FnMut(usize, &mut [E], Option<&[E]>)> TensorVisitor<E, Cpu>
    for EachParam<'_, E, F>
where
    Cpu: Device<E>,
{
    type Viewer = ViewTensorMut;
    type Err = <Cpu as HasErr>::Err;
    type E2 = E;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, E, Cpu>,
        t: &mut Tensor<S, E, Cpu>,
    ) -> Result<Option<Tensor<S, E, Cpu>>, Self::Err> {
        let grad = self.load(t).then_some(&self.grad[..]);
        (self.f)(self.index, &mut self.scratch, grad);
        t.copy_from(&self.scratch);
        self.index += 1;
        Ok(None)
    }
}

struct EachParamRef<'a, E: Dtype, F>(EachParam<'a, E, F>);

impl<E: Float, F: FnMut(usize, &[E], Option<&[E]>)> TensorVisitor<E, Cpu> for EachParamRef<'_, E, F>
where
    Cpu: Device<E>,
{
    type Viewer = ViewTensorRef;
    type Err = <Cpu as HasErr>::Err;
    type E2 = E;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, E, Cpu>,
        t: &Tensor<S, E, Cpu>,
    ) -> Result<Option<Tensor<S, E, Cpu>>, Self::Err> {
        let grad = self.0.load(t).then_some(&self.0.grad[..]);
        (self.0.f)(self.0.index, &self.0.scratch, grad);
        self.0.index += 1;
        Ok(None)
    }
}

/// Rewrites every parameter in place (tensor ids, and so optimizer state, are kept). The one
/// way weights are written: the layers' weight caches (`ops::weights`) rely on it.
/// With `grads`, each parameter's gradient is passed too; it must be present.
pub fn update_params<E: Float, M: TensorCollection<E, Cpu>>(
    model: &mut M,
    grads: Option<&Gradients<E, Cpu>>,
    f: impl FnMut(usize, &mut [E], Option<&[E]>),
) where
    Cpu: Device<E>,
{
    let mut visitor = EachParam {
        index: 0,
        grads,
        scratch: Vec::new(),
        grad: Vec::new(),
        f,
    };
    M::iter_tensors(&mut RecursiveWalker {
        m: model,
        f: &mut visitor,
    })
    .expect("cpu visit");
    weights_changed();
}

/// Reads every parameter (and its gradient, with `grads`).
pub fn visit_params<E: Float, M: TensorCollection<E, Cpu>>(
    model: &M,
    grads: Option<&Gradients<E, Cpu>>,
    f: impl FnMut(usize, &[E], Option<&[E]>),
) where
    Cpu: Device<E>,
{
    let mut visitor = EachParamRef(EachParam {
        index: 0,
        grads,
        scratch: Vec::new(),
        grad: Vec::new(),
        f,
    });
    M::iter_tensors(&mut RecursiveWalker {
        m: model,
        f: &mut visitor,
    })
    .expect("cpu visit");
}

/// All parameters, one vector per tensor.
pub fn read_params<E: Float, M: TensorCollection<E, Cpu>>(model: &M) -> Vec<Vec<E>>
where
    Cpu: Device<E>,
{
    let mut out = Vec::new();
    visit_params(model, None, |_, v, _| out.push(v.to_vec()));
    out
}

/// The gradient of every parameter, one vector per tensor.
pub fn read_grads<E: Float, M: TensorCollection<E, Cpu>>(
    model: &M,
    grads: &Gradients<E, Cpu>,
) -> Vec<Vec<E>>
where
    Cpu: Device<E>,
{
    let mut out = Vec::new();
    visit_params(model, Some(grads), |_, _, g| out.push(g.unwrap().to_vec()));
    out
}

/// Moves every parameter's gradient out of `grads` without copying it, one vector per tensor
/// in the model's order (as [`read_grads`] gives them; zeros for a parameter `grads` lacks).
pub fn take_grads<M: TensorCollection<f32, Cpu>>(
    model: &M,
    mut grads: Gradients<f32, Cpu>,
) -> Vec<Vec<f32>> {
    let mut visitor = TakeGrads {
        grads: &mut grads,
        out: Vec::new(),
    };
    M::iter_tensors(&mut RecursiveWalker {
        m: model,
        f: &mut visitor,
    })
    .expect("cpu visit");
    visitor.out
}

struct TakeGrads<'a> {
    grads: &'a mut Gradients<f32, Cpu>,
    out: Vec<Vec<f32>>,
}

impl TensorVisitor<f32, Cpu> for TakeGrads<'_> {
    type Viewer = ViewTensorRef;
    type Err = <Cpu as HasErr>::Err;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        t: &Tensor<S, f32, Cpu>,
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        let grad = self.grads.get_or_alloc_mut(t)?;
        self.out.push(std::mem::take(&mut **grad));
        Ok(None)
    }
}

/// Overwrites all parameters with `values` (as returned by [`read_params`]).
pub fn write_params<E: Float, M: TensorCollection<E, Cpu>>(model: &mut M, values: &[Vec<E>])
where
    Cpu: Device<E>,
{
    update_params(model, None, |i, p, _| p.copy_from_slice(&values[i]));
}

/// Collects every f32 parameter with its name (its path in the model, as dfdx names it:
/// `c1.weight`, `fc.bias`, ...) and its shape.
struct Named(Vec<NamedTensor>);

impl TensorVisitor<f32, Cpu> for Named {
    type Viewer = (ViewTensorRef, ViewTensorName);
    type Err = <Cpu as HasErr>::Err;
    type E2 = f32;
    type D2 = Cpu;

    fn visit<S: Shape>(
        &mut self,
        _: TensorOptions<S, f32, Cpu>,
        (t, name): (&Tensor<S, f32, Cpu>, String),
    ) -> Result<Option<Tensor<S, f32, Cpu>>, Self::Err> {
        self.0.push(NamedTensor {
            name,
            shape: t.shape().concrete().into_iter().collect(),
            values: t.as_vec(),
        });
        Ok(None)
    }
}

/// Every parameter with its name and shape, in the model's order.
pub fn named_params<M: TensorCollection<f32, Cpu>>(model: &M) -> Vec<NamedTensor> {
    let mut named = Named(Vec::new());
    M::iter_tensors(&mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut named,
    })
    .expect("cpu visit");
    named.0
}

/// Puts `tensors` (in any order) into `model`, matched by name. Every parameter must be there
/// with its shape; otherwise nothing is changed and the error names the first mismatch.
pub fn load_named_params<M: TensorCollection<f32, Cpu>>(
    model: &mut M,
    tensors: &[NamedTensor],
) -> Result<(), String> {
    let wanted = named_params(model);
    let mut values = Vec::with_capacity(wanted.len());
    for w in &wanted {
        match tensors.iter().find(|t| t.name == w.name) {
            Some(t) if t.shape == w.shape && t.values.len() == w.values.len() => {
                values.push(t.values.clone())
            }
            Some(t) => {
                return Err(format!(
                    "tensor {} has shape {:?}, this model needs {:?}",
                    w.name, t.shape, w.shape
                ));
            }
            None => return Err(format!("tensor {} is missing", w.name)),
        }
    }
    if tensors.len() != wanted.len() {
        let extra = tensors
            .iter()
            .find(|t| !wanted.iter().any(|w| w.name == t.name));
        if let Some(t) = extra {
            return Err(format!("tensor {} is not part of this model", t.name));
        }
    }
    write_params(model, &values);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::toy::ToyCritic;

    #[test]
    fn taken_gradients_are_the_read_ones() {
        let dev = Cpu::seed_from_u64(5);
        let critic = ToyCritic::<8, f32>::build(&dev);
        let x: Tensor<(usize, Const<2>), f32, Cpu> = dev.sample_normal_like(&(6, Const));
        let loss = || {
            use crate::model::Critic;
            critic
                .score(x.clone().traced(critic.alloc_grads()))
                .square()
                .sum()
        };
        let read = read_grads(&critic, &loss().backward());
        let taken = take_grads(&critic, loss().backward());
        assert_eq!(read, taken);
        assert_eq!(read.len(), 8);
        assert!(read.iter().flatten().any(|g| *g != 0.0));
    }
}
