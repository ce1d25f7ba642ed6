//! The IDX loader on the embedded data, real gzipped and raw files, and broken files.

use std::io::Write;

use wgangp_tui::data::idx::{IdxError, IdxImages, encode_images, parse_images};
use wgangp_tui::data::{DataError, EMBEDDED_MNIST, load_idx};

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn embedded_mnist_is_the_10k_training_subset() {
    let images = parse_images(EMBEDDED_MNIST).unwrap();
    assert_eq!((images.count, images.rows, images.cols), (10_000, 28, 28));
    // MNIST digits are white strokes on black: mostly zeros, some full-intensity pixels.
    let zeros =
        images.pixels.iter().filter(|&&p| p == 0).count() as f64 / images.pixels.len() as f64;
    assert!((0.7..0.9).contains(&zeros), "background share {zeros}");
    assert!(images.pixels.contains(&255));
    // The embedded file is the asset in the repository, byte for byte.
    let asset = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/mnist/train10k-images-idx3-ubyte.gz"
    ))
    .unwrap();
    assert_eq!(asset, EMBEDDED_MNIST);
}

#[test]
fn raw_and_gzipped_files_load_the_same_images() {
    let dir = tempfile::tempdir().unwrap();
    let raw = gunzip(EMBEDDED_MNIST);
    assert_eq!(&raw[..4], &[0, 0, 8, 3]);
    let (raw_path, gz_path) = (
        dir.path().join("train-images-idx3-ubyte"),
        dir.path().join("x.gz"),
    );
    std::fs::write(&raw_path, &raw).unwrap();
    std::fs::write(&gz_path, gzip(&raw)).unwrap();
    let a = load_idx(&raw_path).unwrap();
    let b = load_idx(&gz_path).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, parse_images(EMBEDDED_MNIST).unwrap());
    assert_eq!(encode_images(&a), raw);
}

fn header(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    [0x803u32, count, rows, cols]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect()
}

#[test]
fn broken_files_are_refused_with_the_reason() {
    assert_eq!(parse_images(&[0, 0, 8]), Err(IdxError::TooShort(3)));
    let mut labels = header(1, 28, 28);
    labels[3] = 0x01;
    assert_eq!(parse_images(&labels), Err(IdxError::BadMagic(0x801)));
    let mut short = header(2, 28, 28);
    short.extend(vec![0u8; 28 * 28 + 5]);
    assert!(matches!(
        parse_images(&short),
        Err(IdxError::SizeMismatch {
            count: 2,
            expected: 1568,
            actual: 789,
            ..
        })
    ));
    // A header claiming 4G x 4G x 4G images must not overflow the size check.
    assert!(matches!(
        parse_images(&header(u32::MAX, u32::MAX, u32::MAX)),
        Err(IdxError::SizeMismatch { .. })
    ));
    assert_eq!(parse_images(&header(0, 28, 28)), Err(IdxError::Empty));
    let mut gz = gzip(&header(1, 1, 1));
    gz.truncate(gz.len() - 6);
    assert!(matches!(parse_images(&gz), Err(IdxError::Gzip(_))));
    let mut msg = IdxError::SizeMismatch {
        count: 2,
        rows: 28,
        cols: 28,
        expected: 1568,
        actual: 789,
    }
    .to_string();
    msg.make_ascii_lowercase();
    assert!(msg.contains("1568") && msg.contains("789"), "{msg}");
}

#[test]
fn files_the_model_cannot_take_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let small = IdxImages {
        count: 2,
        rows: 32,
        cols: 32,
        pixels: vec![7; 2 * 32 * 32],
    };
    let path = dir.path().join("cifar-ish.idx");
    std::fs::write(&path, encode_images(&small)).unwrap();
    let err = load_idx(&path).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::ImageSize {
                rows: 32,
                cols: 32,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("32x32") && err.to_string().contains("28x28"),
        "{err}"
    );
    assert!(matches!(load_idx(dir.path()), Err(DataError::Io { .. })));
    assert!(matches!(
        load_idx(&dir.path().join("missing")),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn label_files_give_their_digits_and_broken_ones_the_reason() {
    use wgangp_tui::data::idx::parse_labels;
    let file = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("assets/mnist/train10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    let labels = parse_labels(&file).unwrap();
    let mut counts = [0usize; 10];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    // The counts PROVENANCE.md gives for the 10k subset.
    assert_eq!(
        counts,
        [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    );
    assert_eq!(parse_labels(&gzip(&gunzip(&file))), Ok(labels));

    let labels_file = |magic: u32, count: u32, body: &[u8]| {
        let mut bytes = magic.to_be_bytes().to_vec();
        bytes.extend(count.to_be_bytes());
        bytes.extend(body);
        bytes
    };
    assert_eq!(
        parse_labels(&labels_file(0x801, 3, &[1, 2, 3])),
        Ok(vec![1, 2, 3])
    );
    assert_eq!(
        parse_labels(&labels_file(0x803, 3, &[1, 2, 3])),
        Err(IdxError::BadLabelMagic(0x803))
    );
    assert_eq!(
        parse_labels(&labels_file(0x801, 4, &[1, 2, 3])),
        Err(IdxError::LabelCount {
            count: 4,
            actual: 3
        })
    );
    assert_eq!(
        parse_labels(&labels_file(0x801, 2, &[1, 12])),
        Err(IdxError::NotADigit(12))
    );
    assert_eq!(parse_labels(&[0, 0, 8]), Err(IdxError::TooShort(3)));
}
