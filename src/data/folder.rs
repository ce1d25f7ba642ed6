//! Folders of pictures: every file under a folder (searched recursively, so the usual
//! class-subfolder layout works as it is, labels ignored) decoded once, in parallel, into
//! square 8-bit RGB images of one side.
//!
//! Each picture becomes RGB: grey, palette and 16-bit images are converted to 8-bit RGB, and
//! transparent pixels are composited onto black. It is then centre-cropped to a square and
//! resized to the side with a Lanczos3 filter (the `image` crate's, whose support widens with
//! the scale factor, so a downscale is antialiased). Files that cannot be used (not a picture,
//! cut short, corrupt, empty, too large, unreadable, a symlink loop) are skipped and listed
//! with the reason; they never stop the load.

use std::collections::HashSet;
use std::fs;
use std::io::BufReader;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::imageops::FilterType;
use image::{ImageReader, Limits, RgbImage};
use rayon::prelude::*;

/// The largest picture decoded, a side (larger ones are skipped as a decompression bomb would
/// be: the decoder is told before it allocates).
pub const MAX_DECODED_SIDE: u32 = 16_384;
/// The most memory one decoder may take.
pub const MAX_DECODER_ALLOC: u64 = 512 << 20;

/// The pictures of a folder at one side, as 8-bit RGB.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFolder {
    pub side: usize,
    /// `count` images of `side * side` pixels, row-major, 3 bytes (R, G, B) a pixel.
    pub pixels: Vec<u8>,
    pub count: usize,
    /// The files left out, each with why, in path order.
    pub skipped: Vec<Skipped>,
}

/// A file that was left out, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
}

impl ImageFolder {
    /// Bytes of one image.
    pub fn image_len(&self) -> usize {
        self.side * self.side * 3
    }

    /// `count` pictures of uniform random bytes, the benchmark's stand-in for a folder.
    pub fn random(side: usize, count: usize, seed: u64) -> Self {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut pixels = vec![0u8; count * side * side * 3];
        rng.fill(&mut pixels[..]);
        ImageFolder {
            side,
            pixels,
            count,
            skipped: Vec::new(),
        }
    }

    /// Image `i`'s bytes.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * self.image_len()..(i + 1) * self.image_len()]
    }
}

/// Why a folder gives no data at all.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("--data {0}: no such folder")]
    Missing(PathBuf),
    #[error("--data {path}: cannot read the folder: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--data {path}: no usable picture in {files} files{first}")]
    NoImages {
        path: PathBuf,
        files: usize,
        /// The first files skipped and why, for the message.
        first: String,
    },
}

/// Every file under `dir`, in path order, and the entries that could not be followed.
pub fn list_files(dir: &Path) -> Result<(Vec<PathBuf>, Vec<Skipped>), FolderError> {
    let meta = fs::metadata(dir).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => FolderError::Missing(dir.to_path_buf()),
        _ => FolderError::Unreadable {
            path: dir.to_path_buf(),
            source,
        },
    })?;
    if !meta.is_dir() {
        return Err(FolderError::Missing(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    // Folders seen, by device and inode: a symlink back up the tree is entered once.
    let mut seen = HashSet::from([(meta.dev(), meta.ino())]);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if folder == dir => {
                return Err(FolderError::Unreadable {
                    path: dir.to_path_buf(),
                    source: e,
                });
            }
            Err(e) => {
                skipped.push(skip(&folder, format!("cannot read the folder: {e}")));
                continue;
            }
        };
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(e) => {
                    skipped.push(skip(&folder, format!("cannot list an entry: {e}")));
                    continue;
                }
            };
            // Follows symlinks: a link to a picture is a picture.
            match fs::metadata(&path) {
                Ok(m) if m.is_dir() => {
                    if seen.insert((m.dev(), m.ino())) {
                        stack.push(path);
                    } else {
                        skipped.push(skip(&path, "a link to a folder already read (a loop)"));
                    }
                }
                Ok(m) if m.is_file() => files.push(path),
                Ok(_) => skipped.push(skip(&path, "not a regular file")),
                Err(e) => skipped.push(skip(&path, format!("cannot follow: {e}"))),
            }
        }
    }
    files.sort();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, skipped))
}

fn skip(path: &Path, why: impl Into<String>) -> Skipped {
    Skipped {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// Decodes one picture into a `side` x `side` RGB image (see the module's description).
pub fn decode(path: &Path, side: u32) -> Result<RgbImage, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err("empty file".into());
    }
    let mut reader = ImageReader::new(BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err("not a picture this program reads".into());
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODED_SIDE);
    limits.max_image_height = Some(MAX_DECODED_SIDE);
    limits.max_alloc = Some(MAX_DECODER_ALLOC);
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| e.to_string())?;
    let rgba = picture.to_rgba8();
    let (w, h) = rgba.dimensions();
    if w == 0 || h == 0 {
        return Err("no pixels".into());
    }
    // Onto black: each colour times its opacity.
    let rgb = RgbImage::from_fn(w, h, |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| ((c as u32 * a as u32 + 127) / 255) as u8;
        image::Rgb([over(r), over(g), over(b)])
    });
    let square = w.min(h);
    let cropped =
        image::imageops::crop_imm(&rgb, (w - square) / 2, (h - square) / 2, square, square)
            .to_image();
    Ok(image::imageops::resize(
        &cropped,
        side,
        side,
        FilterType::Lanczos3,
    ))
}

/// Loads every picture under `dir` at `side`, decoding on the current rayon pool;
/// `progress(done, total)` is called as files finish (from the decoding threads).
pub fn load(
    dir: &Path,
    side: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<ImageFolder, FolderError> {
    let (files, mut skipped) = list_files(dir)?;
    let total = files.len();
    let done = AtomicUsize::new(0);
    let decoded: Vec<Result<RgbImage, String>> = files
        .par_iter()
        .map(|path| {
            let image = decode(path, side as u32);
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            image
        })
        .collect();
    let mut pixels = Vec::new();
    let mut count = 0;
    for (path, image) in files.iter().zip(decoded) {
        match image {
            Ok(image) => {
                pixels.extend_from_slice(image.as_raw());
                count += 1;
            }
            Err(why) => skipped.push(skip(path, why)),
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if count == 0 {
        return Err(FolderError::NoImages {
            path: dir.to_path_buf(),
            files: total,
            first: first_skipped(&skipped, 3),
        });
    }
    Ok(ImageFolder {
        side,
        pixels,
        count,
        skipped,
    })
}

/// The first `n` skipped files and why, for a one-line message: ` (a.txt: not a picture ...;
/// ...)`, or nothing.
pub fn first_skipped(skipped: &[Skipped], n: usize) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let named: Vec<String> = skipped
        .iter()
        .take(n)
        .map(|s| format!("{}: {}", s.path.display(), s.why))
        .collect();
    let more = skipped.len().saturating_sub(n);
    let more = if more > 0 {
        format!("; and {more} more")
    } else {
        String::new()
    };
    format!(" ({}{more})", named.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageFormat, Rgba, RgbaImage};

    /// An 8x4 picture: a 2-pixel red band at each end, a 4x4 blue square in the middle.
    fn banded() -> RgbaImage {
        RgbaImage::from_fn(8, 4, |x, _| {
            if (2..6).contains(&x) {
                Rgba([0, 0, 255, 255])
            } else {
                Rgba([255, 0, 0, 255])
            }
        })
    }

    #[test]
    fn the_centre_square_is_kept_and_resized() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("banded.png");
        banded().save(&path).unwrap();
        // The centre 4x4 is all blue: cropped, then halved, it stays pure blue (a filter's
        // weights sum to 1), with no red from the bands that the crop removed.
        let small = decode(&path, 2).unwrap();
        assert_eq!(small.dimensions(), (2, 2));
        assert!(small.pixels().all(|p| p.0 == [0, 0, 255]), "{small:?}");
        // At the crop's own size nothing is resampled: the pixels are the centre's.
        let same = decode(&path, 4).unwrap();
        assert!(same.pixels().all(|p| p.0 == [0, 0, 255]));
    }

    #[test]
    fn transparency_goes_onto_black_and_grey_becomes_rgb() {
        let dir = tempfile::tempdir().unwrap();
        let half = RgbaImage::from_pixel(3, 3, Rgba([200, 100, 50, 128]));
        let path = dir.path().join("half.png");
        half.save(&path).unwrap();
        // 200 * 128 / 255 = 100.4, 100 * 128 / 255 = 50.2, 50 * 128 / 255 = 25.1.
        let got = decode(&path, 3).unwrap();
        assert!(got.pixels().all(|p| p.0 == [100, 50, 25]), "{got:?}");
        let grey = image::GrayImage::from_pixel(2, 2, image::Luma([77]));
        let path = dir.path().join("grey.bmp");
        grey.save_with_format(&path, ImageFormat::Bmp).unwrap();
        assert!(
            decode(&path, 2)
                .unwrap()
                .pixels()
                .all(|p| p.0 == [77, 77, 77])
        );
        // 16 bits a channel: 0xffff is white, 0x8080 rounds to 128.
        let deep = image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_pixel(
            2,
            2,
            image::Rgb([0xffff, 0x8080, 0]),
        );
        let path = dir.path().join("deep.png");
        deep.save(&path).unwrap();
        assert!(
            decode(&path, 2)
                .unwrap()
                .pixels()
                .all(|p| p.0 == [255, 128, 0])
        );
    }

    /// Each format the loader reads, a solid colour that survives each format's coding.
    #[test]
    fn each_format_decodes_to_its_colour() {
        let dir = tempfile::tempdir().unwrap();
        let colour = [200u8, 40, 90];
        let solid = image::RgbImage::from_pixel(16, 12, image::Rgb(colour));
        for (name, format) in [
            ("a.png", ImageFormat::Png),
            ("b.jpg", ImageFormat::Jpeg),
            ("c.bmp", ImageFormat::Bmp),
            ("d.webp", ImageFormat::WebP),
            ("e.gif", ImageFormat::Gif),
            ("f.tiff", ImageFormat::Tiff),
        ] {
            let path = dir.path().join(name);
            solid.save_with_format(&path, format).unwrap();
            let got = decode(&path, 6).unwrap();
            assert_eq!(got.dimensions(), (6, 6));
            for p in got.pixels() {
                // JPEG's and GIF's codings move a colour by a few levels.
                let off =
                    p.0.iter()
                        .zip(colour)
                        .map(|(a, b)| a.abs_diff(b))
                        .max()
                        .unwrap();
                assert!(off <= 8, "{name}: {:?} for {colour:?}", p.0);
            }
        }
    }

    /// A name that is not UTF-8 is still a file: its picture is used.
    #[test]
    fn a_name_that_is_not_utf8_is_read() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
        banded()
            .save_with_format(dir.path().join(name), ImageFormat::Png)
            .unwrap();
        let loaded = load(dir.path(), 2, &|_, _| {}).unwrap();
        assert_eq!((loaded.count, loaded.skipped.len()), (1, 0));
    }

    #[test]
    fn bad_files_are_skipped_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("cats")).unwrap();
        banded().save(root.join("cats/ok.png")).unwrap();
        std::fs::write(root.join("notes.txt"), "not a picture").unwrap();
        std::fs::write(root.join("empty.png"), "").unwrap();
        let mut png = Vec::new();
        banded()
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        std::fs::write(root.join("cut.png"), &png[..png.len() / 2]).unwrap();
        // A PNG header claiming 100000 x 100000 pixels.
        let mut bomb = png[..33].to_vec();
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        std::fs::write(root.join("bomb.png"), &bomb).unwrap();
        std::os::unix::fs::symlink(root, root.join("cats/loop")).unwrap();
        let loaded = load(root, 4, &|_, _| {}).unwrap();
        assert_eq!(loaded.count, 1);
        assert_eq!(loaded.pixels.len(), 4 * 4 * 3);
        let names: Vec<String> = loaded
            .skipped
            .iter()
            .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["bomb.png", "loop", "cut.png", "empty.png", "notes.txt"]
        );
        let why = |name: &str| {
            let s = loaded
                .skipped
                .iter()
                .find(|s| s.path.ends_with(name))
                .unwrap();
            s.why.clone()
        };
        assert!(why("empty.png").contains("empty"), "{}", why("empty.png"));
        assert!(
            why("notes.txt").contains("not a picture"),
            "{}",
            why("notes.txt")
        );
        assert!(why("loop").contains("loop"), "{}", why("loop"));
        assert!(
            why("bomb.png").to_lowercase().contains("limit"),
            "{}",
            why("bomb.png")
        );
    }

    /// A link to nothing, a FIFO (which would block a decoder for ever) and a picture under
    /// the side limit whose pixels would take the decoder past its memory limit: each skipped,
    /// saying why.
    #[test]
    fn dangling_links_fifos_and_pictures_too_large_to_decode_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        banded().save(root.join("ok.png")).unwrap();
        std::os::unix::fs::symlink(root.join("gone.png"), root.join("dangling.png")).unwrap();
        use std::os::unix::ffi::OsStrExt;
        let fifo = std::ffi::CString::new(root.join("pipe.png").as_os_str().as_bytes()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path and creates a file; nothing else.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        // An 8-bit RGBA PNG header of 16000 x 16000 pixels: 1 GB to decode, under the side
        // limit.
        let side = 16_000u32;
        assert!(side < MAX_DECODED_SIDE);
        assert!(u64::from(side).pow(2) * 4 > MAX_DECODER_ALLOC);
        let mut png = Vec::new();
        banded()
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let mut huge = png[..33].to_vec();
        huge[16..20].copy_from_slice(&side.to_be_bytes());
        huge[20..24].copy_from_slice(&side.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&huge[12..29]);
        huge[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        // A first data chunk (one row's filter byte) and the end: a decoder reads this far
        // before it knows the picture's size in memory.
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut zlib, &[0]).unwrap();
        for (kind, data) in [
            (&b"IDAT"[..], zlib.finish().unwrap()),
            (&b"IEND"[..], Vec::new()),
        ] {
            huge.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(&data);
            huge.extend_from_slice(kind);
            huge.extend_from_slice(&data);
            huge.extend_from_slice(&crc.sum().to_be_bytes());
        }
        std::fs::write(root.join("huge.png"), &huge).unwrap();

        let loaded = load(root, 4, &|_, _| {}).unwrap();
        assert_eq!(loaded.count, 1);
        let why = |name: &str| {
            let found = loaded.skipped.iter().find(|s| s.path.ends_with(name));
            found.map(|s| s.why.clone()).unwrap_or_default()
        };
        assert!(
            why("dangling.png").contains("cannot follow"),
            "{:?}",
            loaded.skipped
        );
        assert!(
            why("pipe.png").contains("not a regular file"),
            "{:?}",
            loaded.skipped
        );
        assert!(
            why("huge.png").to_lowercase().contains("memory limit"),
            "{:?}",
            loaded.skipped
        );
        assert_eq!(loaded.skipped.len(), 3, "{:?}", loaded.skipped);
    }

    #[test]
    fn a_folder_without_pictures_or_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), "text").unwrap();
        let err = load(dir.path(), 4, &|_, _| {}).unwrap_err().to_string();
        assert!(
            err.contains("no usable picture in 1 files") && err.contains("a.txt"),
            "{err}"
        );
        let err = load(&dir.path().join("nope"), 4, &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such folder"), "{err}");
    }
}
