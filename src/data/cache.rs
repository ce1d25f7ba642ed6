//! The decoded pixels of an image folder, kept on disk so that a second run on the same folder
//! and side starts without decoding again.
//!
//! Where: `$WGANGP_CACHE`, else `$XDG_CACHE_HOME/wgangp-tui`, else `~/.cache/wgangp-tui`. Each
//! entry is two files named by a key: `KEY.rgb` (the pixels, as the loader holds them) and
//! `KEY.json` (side, count, skipped files), written in that order, each atomically, so an entry
//! with its `.json` is whole. The key hashes the folder's path, the side, and every file's path,
//! size and modification time: a changed, added or removed file makes a new entry. Deleting the
//! folder clears the cache.

use std::ffi::OsString;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::folder::{self, FolderError, ImageFolder, Skipped};
use crate::util::files::write_atomically;

/// Bumped whenever the decoding changes what an entry would hold.
const VERSION: u32 = 2;

/// The cache folder this process uses, if a home for it is known.
pub fn default_root() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("WGANGP_CACHE")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("wgangp-tui")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("wgangp-tui")))
}

/// `KEY.json`.
#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    side: usize,
    count: usize,
    /// The skipped files' paths as their bytes (a name need not be UTF-8), and why.
    skipped: Vec<(Vec<u8>, String)>,
}

/// The key of `files` (and the folder) at `side`.
fn key(dir: &Path, side: usize, files: &[PathBuf]) -> String {
    let mut h = DefaultHasher::new();
    (VERSION, side).hash(&mut h);
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.as_os_str().as_bytes().hash(&mut h);
    for file in files {
        file.as_os_str().as_bytes().hash(&mut h);
        let meta = std::fs::metadata(file).ok();
        meta.as_ref().map(|m| m.len()).hash(&mut h);
        let modified = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        modified.hash(&mut h);
    }
    format!("{:016x}-{side}", h.finish())
}

/// Where a load came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Decoded,
    Cache,
}

/// The folder's pictures at `side`: from the cache under `root` when it holds them, else
/// decoded (and then stored there; a cache that cannot be written only costs the next run
/// the decoding).
pub fn load(
    dir: &Path,
    side: usize,
    root: Option<&Path>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(ImageFolder, Source), FolderError> {
    let (files, _) = folder::list_files(dir)?;
    let Some(root) = root else {
        return Ok((folder::load(dir, side, progress)?, Source::Decoded));
    };
    let key = key(dir, side, &files);
    let (json, rgb) = (
        root.join(format!("{key}.json")),
        root.join(format!("{key}.rgb")),
    );
    if let Some(cached) = read(&json, &rgb, side) {
        return Ok((cached, Source::Cache));
    }
    let loaded = folder::load(dir, side, progress)?;
    let _ = write(root, &json, &rgb, &loaded);
    Ok((loaded, Source::Decoded))
}

fn read(json: &Path, rgb: &Path, side: usize) -> Option<ImageFolder> {
    let entry: Entry = serde_json::from_slice(&std::fs::read(json).ok()?).ok()?;
    if entry.version != VERSION || entry.side != side {
        return None;
    }
    let pixels = std::fs::read(rgb).ok()?;
    (pixels.len() == entry.count * side * side * 3).then(|| ImageFolder {
        side,
        pixels,
        count: entry.count,
        skipped: entry
            .skipped
            .into_iter()
            .map(|(path, why)| Skipped {
                path: PathBuf::from(OsString::from_vec(path)),
                why,
            })
            .collect(),
    })
}

fn write(root: &Path, json: &Path, rgb: &Path, loaded: &ImageFolder) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    write_atomically(rgb, &loaded.pixels)?;
    let entry = Entry {
        version: VERSION,
        side: loaded.side,
        count: loaded.count,
        skipped: loaded
            .skipped
            .iter()
            .map(|s| (s.path.as_os_str().as_bytes().to_vec(), s.why.clone()))
            .collect(),
    };
    write_atomically(json, &serde_json::to_vec(&entry)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(path: &Path, colour: [u8; 3]) {
        image::RgbImage::from_pixel(5, 4, image::Rgb(colour))
            .save(path)
            .unwrap();
    }

    #[test]
    fn a_second_load_comes_from_the_cache_until_a_file_changes() {
        let data = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        picture(&data.path().join("a.png"), [10, 20, 30]);
        picture(&data.path().join("b.png"), [40, 50, 60]);
        std::fs::write(data.path().join("c.txt"), "x").unwrap();
        let load_at =
            |side| super::load(data.path(), side, Some(cache.path()), &|_, _| {}).unwrap();
        let (first, source) = load_at(3);
        assert_eq!(source, Source::Decoded);
        let (again, source) = load_at(3);
        assert_eq!(source, Source::Cache);
        assert_eq!(again, first, "the cache gives back what was decoded");
        // Another side is another entry.
        assert_eq!(load_at(2).1, Source::Decoded);
        // A changed file (another size) is decoded again, with its new colour.
        image::RgbImage::from_pixel(6, 6, image::Rgb([200, 0, 0]))
            .save(data.path().join("b.png"))
            .unwrap();
        let (changed, source) = load_at(3);
        assert_eq!(source, Source::Decoded);
        assert_eq!(&changed.image(1)[..3], &[200, 0, 0]);
        // A damaged entry (pixels cut short) is decoded again, not trusted.
        let fresh = tempfile::tempdir().unwrap();
        let load_fresh = || super::load(data.path(), 3, Some(fresh.path()), &|_, _| {}).unwrap();
        assert_eq!(load_fresh().1, Source::Decoded);
        let rgb = std::fs::read_dir(fresh.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "rgb"))
            .unwrap();
        let bytes = std::fs::read(&rgb).unwrap();
        std::fs::write(&rgb, &bytes[..bytes.len() - 1]).unwrap();
        let (reloaded, source) = load_fresh();
        assert_eq!((source, reloaded.count), (Source::Decoded, 2));
    }

    /// A file whose name is not UTF-8 and that is no picture: skipped the same, byte for byte,
    /// whether the folder was decoded or read from the cache.
    #[test]
    fn a_skipped_name_that_is_not_utf8_comes_back_from_the_cache_as_it_was() {
        use std::os::unix::ffi::OsStrExt;
        let data = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        picture(&data.path().join("a.png"), [10, 20, 30]);
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
        std::fs::write(data.path().join(name), "not a picture").unwrap();
        let load = || super::load(data.path(), 3, Some(cache.path()), &|_, _| {}).unwrap();
        let (decoded, source) = load();
        assert_eq!(source, Source::Decoded);
        assert_eq!(decoded.skipped.len(), 1);
        assert_eq!(decoded.skipped[0].path.file_name(), Some(name));
        let (cached, source) = load();
        assert_eq!(source, Source::Cache);
        assert_eq!(cached.skipped, decoded.skipped);
    }
}
