//! Checkpoints on disk: a [`Checkpoint`] written so that a crash at any moment leaves the
//! previous checkpoint whole, and read back.
//!
//! A run folder's `checkpoints/` holds one folder per checkpoint, `step-NNNNNNN/`:
//!
//! - `generator.safetensors`, `critic.safetensors`: the weights, f32, named by their place in
//!   the model (`c1.weight`, `c1.bias`, ..., see the README), in the shapes the model uses
//!   (conv weights `[out, in, k, k]`, transposed conv weights `[in, out, k, k]`, linear weights
//!   `[out, in]`).
//! - `generator_ema.safetensors`: the averaged generator's weights (`--ema`), named as the
//!   generator's; absent in runs without one.
//! - `optimizer.safetensors`: the optimizers' moments, `generator.m.NAME`, `generator.v.NAME`,
//!   `critic.m.NAME`, `critic.v.NAME` (RMSprop keeps only `v`), absent before the first update.
//! - `state.json`: format version, step, elapsed time, the optimizers' kind, learning rate and
//!   update count, the averaged generator's update count, the random number generator's state, and the full configuration with the
//!   hyperparameters as they are now (live changes included).
//!
//! `checkpoints/latest` names the newest complete one. A checkpoint is written into a hidden
//! temporary folder, each file synced, the folder synced, then renamed into place and the
//! parent synced; only then is `latest` replaced (temporary file, sync, rename, sync). Loading
//! falls back to the newest complete folder if `latest` is missing or names a broken one.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{AveragedState, Best, Checkpoint, NamedTensor, OptimizerState};
use crate::config::{OptimizerKind, TrainConfig};
use crate::util::files;

/// Version of the checkpoint layout; loading refuses others.
pub const FORMAT: u32 = 1;
pub const DIR: &str = "checkpoints";
pub const LATEST: &str = "latest";
/// Names the checkpoint of the best evaluation so far; pruning never removes it.
pub const BEST: &str = "best";
/// The averaged generator's weights in a checkpoint folder.
pub const EMA_FILE: &str = "generator_ema.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0}: no checkpoint there (expected a run folder, its checkpoints/ folder, or a checkpoint folder holding state.json)"
    )]
    NotFound(PathBuf),
    #[error("{path}: not a valid checkpoint: {why}")]
    Corrupt { path: PathBuf, why: String },
}

type Result<T> = std::result::Result<T, CheckpointError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn corrupt(path: &Path, why: impl ToString) -> CheckpointError {
    CheckpointError::Corrupt {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// `state.json`.
#[derive(Serialize, Deserialize)]
struct State {
    format: u32,
    step: u64,
    wall_s: f64,
    optimizers: Optimizers,
    rng: ChaCha8Rng,
    config: TrainConfig,
    /// Absent in checkpoints written before it was kept.
    #[serde(default)]
    data: Option<String>,
    /// Updates of the averaged generator; absent where there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ema_updates: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    best: Option<Best>,
}

#[derive(Serialize, Deserialize)]
struct Optimizers {
    generator: OptimizerHeader,
    critic: OptimizerHeader,
}

#[derive(Serialize, Deserialize)]
struct OptimizerHeader {
    kind: OptimizerKind,
    lr: f64,
    t: u64,
}

pub fn folder_name(step: u64) -> String {
    format!("step-{step:07}")
}

// safetensors stores little-endian floats: this machine's own bytes are written and read as
// they are.
const _: () = assert!(
    cfg!(target_endian = "little"),
    "checkpoints assume a little-endian CPU"
);

/// Serialises named f32 tensors into safetensors bytes.
fn safetensors_bytes(tensors: &[(String, Vec<usize>, &[f32])]) -> Vec<u8> {
    let bytes: Vec<&[u8]> = tensors
        .iter()
        .map(|(_, _, v)| bytemuck::cast_slice(v))
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), b).expect("shape matches data"),
            )
        })
        .collect();
    safetensors::serialize(views, None).expect("f32 tensors serialise")
}

/// Reads every f32 tensor of a safetensors file.
fn read_safetensors(path: &Path) -> Result<HashMap<String, (Vec<usize>, Vec<f32>)>> {
    let bytes = fs::read(path).map_err(io(path))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(path, e))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(corrupt(
                path,
                format!("tensor {name} is {:?}, not F32", view.dtype()),
            ));
        }
        // Copied: the tensor's bytes need not be aligned for f32 in the file.
        let values = bytemuck::pod_collect_to_vec(view.data());
        out.insert(name, (view.shape().to_vec(), values));
    }
    Ok(out)
}

/// Writes `bytes` to `path` and syncs it to the disk.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn sync_dir(path: &Path) -> Result<()> {
    files::sync_dir(path).map_err(io(path))
}

impl Checkpoint {
    /// Writes the checkpoint into `run_dir/checkpoints/step-N`, points `latest` at it, and
    /// keeps the newest `keep` checkpoints. Returns the checkpoint's folder.
    pub fn save(&self, run_dir: &Path, keep: usize) -> Result<PathBuf> {
        let root = run_dir.join(DIR);
        fs::create_dir_all(&root).map_err(io(&root))?;
        let name = folder_name(self.step);
        let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io(&tmp))?;
        self.write_files(&tmp)?;
        sync_dir(&tmp)?;

        let dest = root.join(&name);
        // A checkpoint of the same step (s pressed twice, say) is replaced: the old one moves
        // aside first, since a folder cannot be renamed over a full one.
        let old = root.join(format!(".old-{name}-{}", std::process::id()));
        let replacing = dest.exists();
        if replacing {
            fs::rename(&dest, &old).map_err(io(&dest))?;
        }
        fs::rename(&tmp, &dest).map_err(io(&dest))?;
        sync_dir(&root)?;
        let latest = root.join(LATEST);
        files::write_atomically(&latest, format!("{name}\n").as_bytes()).map_err(io(&latest))?;
        if self.best.is_some_and(|b| b.step == self.step) {
            let best = root.join(BEST);
            files::write_atomically(&best, format!("{name}\n").as_bytes()).map_err(io(&best))?;
        }
        if replacing {
            fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        prune(&root, keep)?;
        Ok(dest)
    }

    fn write_files(&self, dir: &Path) -> Result<()> {
        let weights = |tensors: &[NamedTensor]| {
            let list: Vec<_> = tensors
                .iter()
                .map(|t| (t.name.clone(), t.shape.clone(), t.values.as_slice()))
                .collect();
            safetensors_bytes(&list)
        };
        write_synced(
            &dir.join("generator.safetensors"),
            &weights(&self.generator),
        )?;
        write_synced(&dir.join("critic.safetensors"), &weights(&self.critic))?;
        if let Some(averaged) = &self.averaged {
            write_synced(&dir.join(EMA_FILE), &weights(&averaged.generator))?;
        }
        let mut moments = Vec::new();
        for (net, opt, tensors) in [
            ("generator", &self.opt_generator, &self.generator),
            ("critic", &self.opt_critic, &self.critic),
        ] {
            for (which, values) in [("m", &opt.m), ("v", &opt.v)] {
                for (t, v) in tensors.iter().zip(values) {
                    moments.push((
                        format!("{net}.{which}.{}", t.name),
                        t.shape.clone(),
                        v.as_slice(),
                    ));
                }
            }
        }
        write_synced(
            &dir.join("optimizer.safetensors"),
            &safetensors_bytes(&moments),
        )?;
        let header = |o: &OptimizerState| OptimizerHeader {
            kind: o.kind,
            lr: o.lr,
            t: o.t,
        };
        let state = State {
            format: FORMAT,
            step: self.step,
            wall_s: self.wall_s,
            optimizers: Optimizers {
                generator: header(&self.opt_generator),
                critic: header(&self.opt_critic),
            },
            rng: self.rng.clone(),
            config: self.config.clone(),
            data: self.data.clone(),
            ema_updates: self.averaged.as_ref().map(|a| a.updates),
            best: self.best,
        };
        let json = serde_json::to_string_pretty(&state).expect("state serialises") + "\n";
        // Last: a folder with state.json is complete.
        write_synced(&dir.join("state.json"), json.as_bytes())
    }

    /// Loads a checkpoint from a run folder (its `latest`), a `checkpoints/` folder, or one
    /// checkpoint's folder. Returns it with the folder it came from.
    pub fn load(path: &Path) -> Result<(Checkpoint, PathBuf)> {
        let with = |folder: &Path| Self::load_folder(folder).map(|ck| (ck, folder.to_path_buf()));
        if path.join("state.json").is_file() {
            return with(path);
        }
        // `checkpoints/best` or `checkpoints/latest`: the folder it names.
        if path.is_file() {
            let name = fs::read_to_string(path).map_err(io(path))?;
            let dir = path.parent().unwrap_or(Path::new(".")).join(name.trim());
            return with(&dir);
        }
        let root = if path.join(DIR).is_dir() {
            path.join(DIR)
        } else {
            path.to_path_buf()
        };
        if !root.is_dir() {
            return Err(CheckpointError::NotFound(path.to_path_buf()));
        }
        let named = fs::read_to_string(root.join(LATEST))
            .ok()
            .map(|s| root.join(s.trim()));
        if let Some(folder) = &named {
            if let Ok(loaded) = with(folder) {
                return Ok(loaded);
            }
        }
        // `latest` missing or broken: the newest complete checkpoint.
        let mut last_error = None;
        for folder in complete_folders(&root)?.into_iter().rev() {
            match with(&folder) {
                Ok(loaded) => return Ok(loaded),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(CheckpointError::NotFound(path.to_path_buf())))
    }

    fn load_folder(dir: &Path) -> Result<Checkpoint> {
        let state_path = dir.join("state.json");
        let text = fs::read_to_string(&state_path).map_err(io(&state_path))?;
        let state: State = serde_json::from_str(&text).map_err(|e| corrupt(&state_path, e))?;
        if state.format != FORMAT {
            return Err(corrupt(
                &state_path,
                format!("format {} (this program reads {FORMAT})", state.format),
            ));
        }
        let weights = |file: &str| -> Result<Vec<NamedTensor>> {
            let path = dir.join(file);
            let mut tensors: Vec<NamedTensor> = read_safetensors(&path)?
                .into_iter()
                .map(|(name, (shape, values))| NamedTensor {
                    name,
                    shape,
                    values,
                })
                .collect();
            // safetensors sorts by name; the model's own order is restored by the trainer.
            tensors.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(tensors)
        };
        let generator = weights("generator.safetensors")?;
        let critic = weights("critic.safetensors")?;
        let opt_path = dir.join("optimizer.safetensors");
        let mut moments = read_safetensors(&opt_path)?;
        let mut optimizer =
            |net: &str, h: &OptimizerHeader, tensors: &[NamedTensor]| -> Result<OptimizerState> {
                let mut take = |which: &str| -> Result<Vec<Vec<f32>>> {
                    let found: Vec<_> = tensors
                        .iter()
                        .map(|t| moments.remove(&format!("{net}.{which}.{}", t.name)))
                        .collect();
                    if found.iter().all(Option::is_none) {
                        return Ok(Vec::new());
                    }
                    tensors
                        .iter()
                        .zip(found)
                        .map(|(t, f)| match f {
                            Some((shape, values)) if shape == t.shape => Ok(values),
                            _ => Err(corrupt(
                                &opt_path,
                                format!("{net}.{which}.{} is missing or misshapen", t.name),
                            )),
                        })
                        .collect()
                };
                Ok(OptimizerState {
                    kind: h.kind,
                    lr: h.lr,
                    t: h.t,
                    m: take("m")?,
                    v: take("v")?,
                })
            };
        let averaged = match state.ema_updates {
            Some(updates) => Some(AveragedState {
                generator: weights(EMA_FILE)?,
                updates,
            }),
            None => None,
        };
        let opt_generator = optimizer("generator", &state.optimizers.generator, &generator)?;
        let opt_critic = optimizer("critic", &state.optimizers.critic, &critic)?;
        Ok(Checkpoint {
            step: state.step,
            wall_s: state.wall_s,
            config: state.config,
            generator,
            critic,
            opt_generator,
            opt_critic,
            rng: state.rng,
            averaged,
            best: state.best,
            data: state.data,
        })
    }
}

/// The step of a checkpoint folder's name: `step-N`, or `.old-step-N-PID` (a checkpoint moved
/// aside while another of the same step replaces it).
fn folder_step(name: &str) -> Option<u64> {
    let rest = name
        .strip_prefix("step-")
        .or_else(|| name.strip_prefix(".old-step-"))?;
    rest.split('-').next()?.parse().ok()
}

/// The complete checkpoint folders under `root`, oldest first (of one step, `step-N` last).
fn complete_folders(root: &Path) -> Result<Vec<PathBuf>> {
    let mut folders: Vec<(u64, bool, PathBuf)> = fs::read_dir(root)
        .map_err(io(root))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            folder_step(&name).map(|step| (step, name.starts_with("step-"), e.path()))
        })
        .filter(|(_, _, p)| p.join("state.json").is_file())
        .collect();
    folders.sort();
    Ok(folders.into_iter().map(|(_, _, p)| p).collect())
}

/// Keeps the newest `keep` checkpoints and the one `best` names, and removes what interrupted
/// writes left behind.
fn prune(root: &Path, keep: usize) -> Result<()> {
    let best = fs::read_to_string(root.join(BEST))
        .ok()
        .map(|name| root.join(name.trim()));
    let folders = complete_folders(root)?;
    let excess = folders.len().saturating_sub(keep.max(1));
    for old in folders[..excess]
        .iter()
        .filter(|f| Some(*f) != best.as_ref())
    {
        fs::remove_dir_all(old).map_err(io(old))?;
    }
    for entry in fs::read_dir(root).map_err(io(root))?.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if name.starts_with(".tmp-") {
            true // never renamed into place: incomplete
        } else if name.starts_with(".old-") {
            // Redundant once the checkpoint that replaced it is complete.
            folder_step(&name)
                .is_some_and(|step| root.join(folder_name(step)).join("state.json").is_file())
        } else {
            false
        };
        if stale {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// The run folder a checkpoint folder belongs to (`RUN/checkpoints/step-N`), if it is in one.
pub fn run_dir_of(folder: &Path) -> Option<PathBuf> {
    let parent = folder.parent()?;
    (parent.file_name()? == DIR)
        .then(|| parent.parent().map(Path::to_path_buf))
        .flatten()
}

/// The step of the newest complete checkpoint in a run folder, if it has any.
pub fn newest_step(run_dir: &Path) -> Option<u64> {
    let folders = complete_folders(&run_dir.join(DIR)).ok()?;
    let name = folders.last()?.file_name()?.to_string_lossy().into_owned();
    folder_step(&name)
}
