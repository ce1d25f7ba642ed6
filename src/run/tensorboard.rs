//! The run as TensorBoard reads it: an event file in the run folder, written as the run goes.
//!
//! Format: TFRecord framing (a record is its length as u64 little-endian, the masked CRC-32C
//! of those 8 bytes, the payload, the masked CRC-32C of the payload) of `Event` protocol
//! buffers. The few messages used are written out below with prost's derive (field numbers
//! as in TensorFlow's `event.proto`, `summary.proto` and `histogram.proto`), which spares a
//! protoc step at build time. Every record is flushed as it is written, so a killed run leaves
//! a file TensorBoard reads up to its last record.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use prost::Message;

use crate::event::{Alert, EvalRecord, StepMetrics};

/// `tensorflow.Event`.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    #[prost(oneof = "What", tags = "3, 5, 7")]
    pub what: Option<What>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

/// `tensorflow.SessionLog`: a START at step s tells TensorBoard to drop what an earlier
/// process wrote at steps >= s (a run resumed from a checkpoint).
#[derive(Clone, PartialEq, Message)]
pub struct SessionLog {
    /// 1: START.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

pub const SESSION_START: i32 = 1;

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, Message)]
pub struct Value {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(oneof = "Kind", tags = "2, 4, 5, 8")]
    pub kind: Option<Kind>,
    /// Which TensorBoard plugin shows a tensor value (text: `"text"`).
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

/// `tensorflow.SummaryMetadata`, its plugin data alone.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

#[derive(Clone, PartialEq, Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
}

/// `tensorflow.TensorProto` holding strings (a scalar of dtype `DT_STRING`, 7).
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShape>,
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// `tensorflow.TensorShapeProto`: no dimensions, a scalar.
#[derive(Clone, PartialEq, Message)]
pub struct TensorShape {}

pub const DT_STRING: i32 = 7;

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(Image),
    #[prost(message, tag = "5")]
    Histo(Histogram),
    #[prost(message, tag = "8")]
    Tensor(TensorProto),
}

/// `tensorflow.Summary.Image`: an encoded PNG.
#[derive(Clone, PartialEq, Message)]
pub struct Image {
    #[prost(int32, tag = "1")]
    pub height: i32,
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `tensorflow.HistogramProto`: bucket `i` counts the values in `(bucket_limit[i-1],
/// bucket_limit[i]]`.
#[derive(Clone, PartialEq, Message)]
pub struct Histogram {
    #[prost(double, tag = "1")]
    pub min: f64,
    #[prost(double, tag = "2")]
    pub max: f64,
    #[prost(double, tag = "3")]
    pub num: f64,
    #[prost(double, tag = "4")]
    pub sum: f64,
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// TFRecord's masked CRC-32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One event's record, as it is written to the file.
pub fn record(event: &Event) -> Vec<u8> {
    let payload = &event.encode_to_vec();
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc(payload).to_le_bytes());
    out
}

/// Reads every record of an event file, checking both CRCs of each; a record cut off at the
/// end (a killed writer) ends the list.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut events = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= 12 {
        let len_bytes = &bytes[at..at + 8];
        let len_crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        anyhow::ensure!(
            masked_crc(len_bytes) == len_crc,
            "{}: the length of the record at byte {at} fails its CRC",
            path.display()
        );
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let start = at + 12;
        if bytes.len() < start + len + 4 {
            break;
        }
        let payload = &bytes[start..start + len];
        let crc = u32::from_le_bytes(bytes[start + len..start + len + 4].try_into().unwrap());
        anyhow::ensure!(
            masked_crc(payload) == crc,
            "{}: the record at byte {at} fails its CRC",
            path.display()
        );
        events.push(Event::decode(payload).with_context(|| {
            format!(
                "{}: the record at byte {at} is not an Event",
                path.display()
            )
        })?);
        at = start + len + 4;
    }
    Ok(events)
}

/// The event files in a run folder, oldest first.
pub fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("events.out.tfevents."))
        })
        .collect();
    files.sort();
    files
}

/// Appends events to a new event file in a run folder.
pub struct EventWriter {
    file: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// A new event file in `dir`, named as TensorBoard looks for them (a time and the
    /// process id keep names apart and in order), opened with its version record.
    pub fn create(dir: &Path) -> Result<Self> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!(
            "events.out.tfevents.{:010}.{:09}.wgangp-tui.{}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id()
        );
        let path = dir.join(name);
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = Self {
            file: BufWriter::new(file),
            path,
        };
        writer.write(0, What::FileVersion("brain.Event:2".into()))?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one event at `step` and flushes it.
    pub fn write(&mut self, step: u64, what: What) -> Result<()> {
        let wall_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let event = Event {
            wall_time,
            step: step as i64,
            what: Some(what),
        };
        self.file
            .write_all(&record(&event))
            .and_then(|()| self.file.flush())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Scalars at `step`, one value each.
    pub fn scalars(&mut self, step: u64, scalars: &[(&str, f64)]) -> Result<()> {
        let value = scalars
            .iter()
            .map(|(tag, v)| Value {
                metadata: None,
                tag: tag.to_string(),
                kind: Some(Kind::SimpleValue(*v as f32)),
            })
            .collect();
        self.write(step, What::Summary(Summary { value }))
    }

    /// One summary value at `step`.
    pub fn value(&mut self, step: u64, tag: &str, kind: Kind) -> Result<()> {
        // A tensor says which plugin shows it; the other kinds are their own.
        let metadata = matches!(kind, Kind::Tensor(_)).then(|| SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "text".into(),
            }),
        });
        let value = vec![Value {
            tag: tag.into(),
            kind: Some(kind),
            metadata,
        }];
        self.write(step, What::Summary(Summary { value }))
    }
}

/// `text` as a string tensor, the way TensorBoard's text plugin reads it (Markdown).
pub fn text_tensor(text: &str) -> TensorProto {
    TensorProto {
        dtype: DT_STRING,
        tensor_shape: Some(TensorShape {}),
        string_val: vec![text.as_bytes().to_vec()],
    }
}

/// What the run folder's event file gets from the run's events.
pub struct RunEvents {
    writer: EventWriter,
    /// The weight histogram goes in at the samples' cadence.
    sample_every: u64,
    /// Whether this file has the real pictures yet (they are the same every time).
    real_written: bool,
}

impl RunEvents {
    /// A new event file for a run; `resumed_after`: the step of the checkpoint a resumed run
    /// goes on from (TensorBoard then drops what an earlier process wrote after it).
    pub fn create(dir: &Path, sample_every: u64, resumed_after: Option<u64>) -> Result<Self> {
        let mut writer = EventWriter::create(dir)?;
        if let Some(step) = resumed_after {
            let start = SessionLog {
                status: SESSION_START,
            };
            writer.write(step + 1, What::SessionLog(start))?;
        }
        Ok(Self {
            writer,
            sample_every: sample_every.max(1),
            real_written: false,
        })
    }

    /// A step's figures as scalars, grouped by the part before the slash; the critic's weight
    /// histogram at the samples' cadence.
    pub fn metrics(&mut self, m: &StepMetrics) -> Result<()> {
        let mut scalars = vec![
            ("loss/critic".to_string(), m.critic_loss),
            ("loss/generator".into(), m.generator_loss),
            ("loss/wasserstein".into(), m.wasserstein),
            ("penalty/unweighted".into(), m.penalty),
            ("penalty/weighted".into(), m.weighted_penalty),
            ("critic_input_grad_norm/mean".into(), m.grad_norm_mean),
            ("critic_input_grad_norm/std".into(), m.grad_norm_std),
            ("hyper/lambda".into(), m.lambda),
            ("hyper/lr_generator".into(), m.lr_generator),
            ("hyper/lr_critic".into(), m.lr_critic),
            ("hyper/n_critic".into(), m.n_critic as f64),
            ("speed/iterations_per_s".into(), m.iters_per_s),
        ];
        for layer in &m.layers {
            scalars.push((format!("layer_grad_norm/{}", layer.name), layer.grad_norm));
            scalars.push((
                format!("layer_max_abs_weight/{}", layer.name),
                layer.max_abs_weight,
            ));
            if let Some(norm) = layer.input_grad_norm {
                scalars.push((format!("layer_input_grad_norm/{}", layer.name), norm));
            }
        }
        let named: Vec<(&str, f64)> = scalars.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.writer.scalars(m.step, &named)?;
        if m.step % self.sample_every == 0 || m.step == 1 {
            let histo = histogram(&m.weight_histogram);
            self.writer
                .value(m.step, "critic/weights", Kind::Histo(histo))?;
        }
        Ok(())
    }

    /// An evaluation's figures: `eval/` the critic's costs, `quality/` the toy measures or the
    /// pictures' sliced Wasserstein distance, mean and per level, and the digits' Frechet
    /// distance and classifier score (of the averaged generator; `quality_raw/` of the raw one).
    pub fn evaluation(&mut self, e: &EvalRecord) -> Result<()> {
        let mut tagged = vec![("eval/train_critic_cost".to_string(), e.train_critic_cost)];
        if let Some(cost) = e.held_out_critic_cost {
            tagged.push(("eval/held_out_critic_cost".into(), cost));
        }
        for (group, toy, swd, digits) in [
            ("quality", &e.toy, &e.swd, &e.digits),
            ("quality_raw", &e.toy_raw, &e.swd_raw, &e.digits_raw),
        ] {
            if let Some(d) = digits {
                tagged.push((format!("{group}/frechet"), d.frechet));
                tagged.push((format!("{group}/classifier_score"), d.classifier_score));
            }
            if let Some(t) = toy {
                tagged.push((format!("{group}/high_quality"), t.high_quality));
                tagged.push((format!("{group}/modes_covered"), t.modes_covered as f64));
                tagged.push((format!("{group}/mode_kl"), t.mode_kl));
            }
            if let Some(swd) = swd {
                tagged.push((format!("{group}/swd"), swd.mean));
                for &(side, d) in &swd.levels {
                    tagged.push((format!("{group}/swd_{side}"), d));
                }
            }
        }
        let scalars: Vec<(&str, f64)> = tagged.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.writer.scalars(e.step, &scalars)
    }

    /// An alert as text (TensorBoard's text tab, `alerts`).
    pub fn alert(&mut self, alert: &Alert) -> Result<()> {
        let text = format!("**{}**: {}", alert.kind.name(), alert.message);
        self.writer
            .value(alert.step, "alerts", Kind::Tensor(text_tensor(&text)))
    }

    /// A sample grid as a PNG (`samples/generated`: the pictures, or the toy plot), and the
    /// first time, the real pictures beside which they are drawn (`samples/real`).
    pub fn samples(
        &mut self,
        step: u64,
        generated: &image::DynamicImage,
        real: Option<image::DynamicImage>,
    ) -> Result<()> {
        self.image(step, "samples/generated", generated)?;
        if let Some(real) = real.filter(|_| !self.real_written) {
            self.image(step, "samples/real", &real)?;
            self.real_written = true;
        }
        Ok(())
    }

    fn image(&mut self, step: u64, tag: &str, picture: &image::DynamicImage) -> Result<()> {
        let rgb = picture.to_rgb8();
        let mut png = Vec::new();
        rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .context("cannot encode the sample grid")?;
        let image = Image {
            height: rgb.height() as i32,
            width: rgb.width() as i32,
            colorspace: 3,
            encoded_image_string: png,
        };
        self.writer.value(step, tag, Kind::Image(image))
    }
}

/// The weight histogram as TensorBoard's: the bins' right edges and counts. TensorBoard shows
/// the buckets; `sum` and `sum_squares` are taken at the bins' centres.
fn histogram(h: &crate::event::Histogram) -> Histogram {
    let bins = h.counts.len().max(1);
    let width = (h.hi - h.lo) / bins as f64;
    let centre = |i: usize| h.lo + (i as f64 + 0.5) * width;
    let counts = h.counts.iter().map(|&c| c as f64);
    Histogram {
        min: h.lo,
        max: h.hi,
        num: counts.clone().sum(),
        sum: counts.clone().enumerate().map(|(i, c)| c * centre(i)).sum(),
        sum_squares: counts
            .clone()
            .enumerate()
            .map(|(i, c)| c * centre(i).powi(2))
            .sum(),
        bucket_limit: (0..h.counts.len())
            .map(|i| h.lo + (i + 1) as f64 * width)
            .collect(),
        bucket: counts.collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire bytes of the messages TensorBoard reads first, field by field as TensorFlow's
    /// `event.proto` numbers them: session_log is 7 (6 is the old log_message), status 1.
    #[test]
    fn events_encode_with_tensorflows_field_numbers() {
        let start = Event {
            wall_time: 0.0,
            step: 7,
            what: Some(What::SessionLog(SessionLog {
                status: SESSION_START,
            })),
        };
        assert_eq!(start.encode_to_vec(), [0x10, 7, (7 << 3) | 2, 2, 0x08, 1]);
        let scalar = Summary {
            value: vec![Value {
                tag: "a".into(),
                kind: Some(Kind::SimpleValue(1.0)),
                metadata: None,
            }],
        };
        // Summary.value is 1; Value.tag 1 and simple_value 2 (a 32-bit float).
        let one = 1.0f32.to_le_bytes();
        let mut expected = vec![(1 << 3) | 2, 8, (1 << 3) | 2, 1, b'a', (2 << 3) | 5];
        expected.extend_from_slice(&one);
        assert_eq!(scalar.encode_to_vec(), expected);
    }

    #[test]
    fn records_read_back_and_a_flipped_byte_fails_its_crc() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        w.scalars(3, &[("loss/critic", -1.5), ("penalty/weighted", 0.25)])
            .unwrap();
        let path = w.path().to_path_buf();
        drop(w);
        let events = read_events(&path).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].what,
            Some(What::FileVersion("brain.Event:2".into()))
        );
        let Some(What::Summary(s)) = &events[1].what else {
            panic!("{:?}", events[1]);
        };
        assert_eq!(events[1].step, 3);
        assert_eq!(s.value[1].tag, "penalty/weighted");
        assert_eq!(s.value[1].kind, Some(Kind::SimpleValue(0.25)));
        // CRC-32C itself: the value of 32 zero bytes in RFC 3720's test vectors.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8a91_36aa);
        // A record cut off (a killed writer) ends the file; the whole ones before it read.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(read_events(&path).unwrap().len(), 1);
        let mut bytes = bytes;
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_events(&path).unwrap_err().to_string();
        assert!(err.contains("fails its CRC"), "{err}");
    }
}
