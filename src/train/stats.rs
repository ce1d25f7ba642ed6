//! What a training step measures, and why one did not happen.

/// A loss or gradient that is NaN or infinite; the update it came from was not applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} is not finite at step {step}; the update was not applied")]
pub struct NonFinite {
    pub step: u64,
    pub what: String,
}

/// Why a step did not happen: a value that was not finite (nothing of it was applied), or the
/// device failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    NonFinite(#[from] NonFinite),
    #[error("the device failed at step {step}: {why}")]
    Device { step: u64, why: String },
}

/// Figures of one critic step.
#[derive(Clone, Debug, Default)]
pub struct CriticStats {
    pub loss: f64,
    pub d_real: f64,
    pub d_fake: f64,
    pub penalty: f64,
    pub weighted_penalty: f64,
    pub grad_norm_mean: f64,
    pub grad_norm_std: f64,
    /// (layer, L2 norm of the loss gradient w.r.t. its weight)
    pub layer_grad_norms: Vec<(&'static str, f64)>,
}

/// Figures of one generator iteration (n_critic critic steps and one generator step).
#[derive(Clone, Debug)]
pub struct IterationStats {
    /// Means over the critic steps, except `layer_grad_norms`: those of the last one.
    pub critic: CriticStats,
    pub generator_loss: f64,
}

/// The 2-norm.
pub fn l2(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt()
}

/// Mean and (population) standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}
