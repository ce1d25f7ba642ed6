//! The averaged generator (`--ema`): an exponential moving average of the generator's weights,
//! as StyleGAN's `G_ema` and Yazici et al. 2019 ("The Unusual Effectiveness of Averaging in
//! GAN Training"). It is never trained; the samples, `sample` and `eval` draw from it.

use crate::model::params::{update_params, visit_params};

/// Updates over which the decay warms up to beta (see [`decay`]).
pub const WARM_UP: u64 = 10;

/// The decay of update `t` (counting from 0): min(beta, (1 + t) / (10 + t)), TensorFlow's
/// `ExponentialMovingAverage` with `num_updates`. The first averages follow the generator
/// closely (0.1, 0.18, 0.25, ...), so early samples are not held at the initial weights.
pub fn decay(beta: f64, t: u64) -> f64 {
    beta.min((1 + t) as f64 / (WARM_UP + t) as f64)
}

/// A generator `G` holding the average, with its decay and update count.
#[derive(Clone, Debug)]
pub struct Averaged<G> {
    pub net: G,
    pub beta: f64,
    pub updates: u64,
}

impl<G: dfdx::prelude::TensorCollection<f32, dfdx::prelude::Cpu>> Averaged<G> {
    /// An average that starts at `generator`'s weights.
    pub fn new(generator: &G, beta: f64) -> Self
    where
        G: Clone,
    {
        Self {
            net: generator.clone(),
            beta,
            updates: 0,
        }
    }

    /// Moves the average towards `generator`: w_avg <- d w_avg + (1 - d) w, d = [`decay`].
    pub fn update(&mut self, generator: &G) {
        let d = decay(self.beta, self.updates) as f32;
        let mut current = Vec::new();
        visit_params(generator, None, |_, w, _| current.push(w.to_vec()));
        update_params(&mut self.net, None, |i, avg, _| {
            for (a, &w) in avg.iter_mut().zip(&current[i]) {
                *a = d * *a + (1.0 - d) * w;
            }
        });
        self.updates += 1;
    }
}

#[cfg(test)]
mod tests {
    use dfdx::prelude::*;

    use super::*;
    use crate::model::params::{read_params, write_params};
    use crate::model::toy::ToyGenerator;

    type Net = ToyGenerator<4, f32>;

    fn net_with(dev: &Cpu, value: f32) -> Net {
        let mut net = Net::build(dev);
        let shapes: Vec<usize> = read_params(&net).iter().map(Vec::len).collect();
        let values: Vec<Vec<f32>> = shapes.iter().map(|&n| vec![value; n]).collect();
        write_params(&mut net, &values);
        net
    }

    /// Worked by hand: from 0, three updates towards 1, 1 and 4 with beta 0.5. The decays are
    /// min(0.5, 1/10) = 0.1, min(0.5, 2/11) = 2/11, min(0.5, 3/12) = 0.25:
    /// 0 -> 0.9 -> (2/11)(0.9) + (9/11)(1) = 10.8/11 -> 0.25(10.8/11) + 0.75(4) = 3.2454...
    #[test]
    fn the_average_follows_its_formula_on_a_hand_made_case() {
        let dev = Cpu::default();
        let mut averaged = Averaged::new(&net_with(&dev, 0.0), 0.5);
        for target in [1.0, 1.0, 4.0] {
            averaged.update(&net_with(&dev, target));
        }
        let expected = 0.25 * (10.8 / 11.0) + 0.75 * 4.0;
        assert_eq!(averaged.updates, 3);
        for w in read_params(&averaged.net).into_iter().flatten() {
            assert!((w - expected).abs() < 1e-6, "{w} vs {expected}");
        }
    }

    /// Past the warm-up the decay is beta itself.
    #[test]
    fn the_decay_reaches_beta_after_the_warm_up() {
        assert_eq!(decay(0.999, 0), 0.1);
        assert_eq!(decay(0.5, 8), 0.5);
        assert_eq!(decay(0.999, 1_000_000), 0.999);
        assert!(decay(0.999, 100) < 0.92);
    }
}
