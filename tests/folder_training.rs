//! Training on a folder of pictures through the real binary: the folder is written here
//! (coloured squares in class subfolders, a few bad files among them).

mod common;

use std::path::Path;

use common::{records, wgangp};

/// `n` pictures of mixed sizes and formats under `root/a` and `root/b`, and two bad files.
fn write_folder(root: &Path, n: usize) {
    for (i, class) in ["a", "b"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for k in 0..n / 2 {
            let (w, h) = (20 + 3 * k as u32, 16 + 5 * i as u32);
            let colour = [(40 * k) as u8, 200 - 90 * i as u8, 60];
            let picture = image::RgbaImage::from_fn(w, h, |x, y| {
                let inside = x > w / 4 && x < 3 * w / 4 && y > h / 4 && y < 3 * h / 4;
                let [r, g, b] = colour;
                if inside {
                    image::Rgba([r, g, b, 255])
                } else {
                    image::Rgba([0, 0, 0, 128])
                }
            });
            let name = root.join(class).join(format!("{k}"));
            if k % 2 == 0 {
                picture.save(name.with_extension("png")).unwrap();
            } else {
                image::DynamicImage::from(picture)
                    .to_rgb8()
                    .save(name.with_extension("jpg"))
                    .unwrap();
            }
        }
    }
    std::fs::write(root.join("labels.csv"), "a,b\n").unwrap();
    std::fs::write(root.join("a/broken.png"), b"\x89PNG\r\n\x1a\nrest").unwrap();
}

/// The binary with `WGANGP_CACHE` at `cache`; asserts success and returns stderr.
fn train(cache: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgangp-tui"))
        .args(args)
        .env("WGANGP_CACHE", cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// Trains 2 steps on a folder at `size` (`None`: the default), checks the run folder, resumes
/// to step 3 and compares with a run that went to 3 straight, then draws single PNGs.
fn a_folder_trains(size: Option<&str>, family: &str, side: u32) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pictures");
    write_folder(&data, 8);
    let run = dir.path().join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    let cache = dir.path().join("cache");
    let size_flag: Vec<&str> = size.map_or(vec![], |s| vec!["--size", s]);
    let common = [
        &[
            "--no-ui",
            "--batch",
            "4",
            "--n-critic",
            "1",
            "--seed",
            "5",
            "--data",
            data_s,
        ][..],
        &size_flag,
    ]
    .concat();
    let stderr = train(
        &cache,
        &[&common[..], &["--steps", "2", "--out", run_s]].concat(),
    );
    assert!(
        stderr.contains(&format!("8 pictures at {side}x{side}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("skipped 2 files") && stderr.contains("labels.csv"),
        "{stderr}"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["family"], family);
    // Every skipped file is listed in the run folder, with why.
    let listed = std::fs::read_to_string(run.join("skipped-files.txt")).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains("labels.csv\t") && listed.contains("broken.png\t"),
        "{listed}"
    );
    // The samples: a colour grid of 64 pictures.
    let grid = image::open(run.join("samples/step-0000002.png")).unwrap();
    assert_eq!(grid.color(), image::ColorType::Rgb8);
    assert_eq!(grid.width(), 8 * side + 9 * 2);
    let steps = records(&run)
        .iter()
        .filter(|r| r["kind"] == "metrics")
        .count();
    assert_eq!(steps, 2);
    // A second start decodes nothing: the pictures come from the cache; and it goes on exactly
    // as a run that was not stopped.
    let stderr = train(&cache, &["--no-ui", "--resume", run_s, "--steps", "3"]);
    assert!(stderr.contains("from the cache"), "{stderr}");
    assert!(stderr.contains("going on from step 2"), "{stderr}");
    assert!(!stderr.contains("not what this run trained on"), "{stderr}");
    let straight = dir.path().join("straight");
    let straight_s = straight.to_str().unwrap();
    train(
        &cache,
        &[&common[..], &["--steps", "3", "--out", straight_s]].concat(),
    );
    for file in [
        "generator.safetensors",
        "critic.safetensors",
        "optimizer.safetensors",
    ] {
        let read = |run: &Path| std::fs::read(run.join("checkpoints/step-0000003").join(file));
        assert!(
            read(&run).unwrap() == read(&straight).unwrap(),
            "{file} differs after resuming"
        );
    }
    // And sample draws colour pictures from the checkpoint: a grid, and one PNG a sample.
    let png = dir.path().join("drawn.png");
    let singles = dir.path().join("drawn");
    for out in [
        png.to_str().unwrap().to_string(),
        format!("{}/", singles.display()),
    ] {
        let done = wgangp(&["sample", "--from", run_s, "--count", "3", "--out", &out]);
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
    }
    assert_eq!(image::open(&png).unwrap().color(), image::ColorType::Rgb8);
    let mut names: Vec<String> = std::fs::read_dir(&singles)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["000000.png", "000001.png", "000002.png"]);
    for name in names {
        let one = image::open(singles.join(name)).unwrap();
        assert_eq!((one.width(), one.height()), (side, side));
        assert_eq!(one.color(), image::ColorType::Rgb8);
    }
    // Resumed on a folder that changed since: training goes on, and says so.
    image::RgbImage::from_pixel(30, 30, image::Rgb([1, 2, 3]))
        .save(data.join("a/new.png"))
        .unwrap();
    let stderr = train(&cache, &["--no-ui", "--resume", run_s, "--steps", "4"]);
    assert!(
        stderr.contains("the data is not what this run trained on until step 3")
            && stderr.contains("then: 8 pictures")
            && stderr.contains("now: 9 pictures"),
        "{stderr}"
    );
}

#[test]
fn a_folder_trains_at_64_by_default_checkpoints_and_resumes_exactly() {
    a_folder_trains(None, "face64", 64);
}

#[test]
fn a_folder_trains_at_32_checkpoints_and_resumes_exactly() {
    a_folder_trains(Some("32"), "cifar32", 32);
}

/// `n` pictures at 32x32: a red disc on a dark blue ground, its place and size varying.
/// Returns their mean colour.
fn write_discs(root: &Path, n: usize) -> [f64; 3] {
    std::fs::create_dir_all(root).unwrap();
    let mut sum = [0.0; 3];
    for k in 0..n {
        let (cx, cy, r) = (8 + (k * 7) % 16, 8 + (k * 11) % 16, 4 + k % 5);
        let picture = image::RgbImage::from_fn(32, 32, |x, y| {
            let (dx, dy) = (x as i64 - cx as i64, y as i64 - cy as i64);
            if dx * dx + dy * dy <= (r * r) as i64 {
                image::Rgb([220, 40, 30])
            } else {
                image::Rgb([20, 30, 90])
            }
        });
        for p in picture.pixels() {
            for c in 0..3 {
                sum[c] += p[c] as f64;
            }
        }
        picture.save(root.join(format!("{k:03}.png"))).unwrap();
    }
    sum.map(|s| s / (n * 32 * 32) as f64)
}

/// The mean colour of the PNGs in `dir`.
fn mean_colour(dir: &Path) -> [f64; 3] {
    let (mut sum, mut pixels) = ([0.0; 3], 0.0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let picture = image::open(entry.unwrap().path()).unwrap().to_rgb8();
        for p in picture.pixels() {
            for c in 0..3 {
                sum[c] += p[c] as f64;
            }
            pixels += 1.0;
        }
    }
    sum.map(|s| s / pixels)
}

/// After a few hundred critic steps the generated pictures' mean colour has moved towards the
/// data's: at step 1 they are a net's first guesses, about mid-grey.
#[test]
fn a_folder_run_learns_the_pictures_colours() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("discs");
    let data_mean = write_discs(&data, 200);
    let run = dir.path().join("run");
    let (data_s, run_s) = (data.to_str().unwrap(), run.to_str().unwrap());
    let cache = dir.path().join("cache");
    let distance_at = |steps: &str| {
        let args: &[&str] = if run.exists() {
            &["--no-ui", "--resume", run_s, "--steps", steps]
        } else {
            &[
                "--no-ui", "--data", data_s, "--size", "32", "--batch", "16", "--lr", "5e-4",
                "--seed", "3", "--out", run_s, "--steps", steps,
            ]
        };
        train(&cache, args);
        let drawn = dir.path().join(format!("drawn-{steps}"));
        let out = format!("{}/", drawn.display());
        let done = wgangp(&["sample", "--from", run_s, "--count", "32", "--out", &out]);
        assert!(done.status.success());
        let mean = mean_colour(&drawn);
        let distance = (0..3)
            .map(|c| (mean[c] - data_mean[c]).powi(2))
            .sum::<f64>()
            .sqrt();
        (distance, mean)
    };
    let (first, first_mean) = distance_at("1");
    let (later, later_mean) = distance_at("60");
    assert!(
        later < 0.5 * first,
        "data {data_mean:?}; step 1 {first_mean:?} ({first:.1} away); step 60 {later_mean:?} \
         ({later:.1} away)"
    );
}

#[test]
fn a_folder_without_pictures_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "no pictures here").unwrap();
    common::assert_bad_input(
        &["--no-ui", "--data", dir.path().to_str().unwrap()],
        "no usable picture in 1 files",
    );
    common::assert_bad_input(
        &[
            "--no-ui",
            "--data",
            dir.path().to_str().unwrap(),
            "--size",
            "48",
        ],
        "--size",
    );
}

/// Files and folders the training user cannot read: skipped and named in
/// `skipped-files.txt` with why, the rest trains. Root reads everything, so the run is made by
/// another user (setpriv, as CI runs as root); elsewhere the permission bits do the same.
#[test]
fn unreadable_files_and_folders_are_skipped_and_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let data = dir.path().join("pictures");
    write_folder(&data, 4);
    image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]))
        .save(data.join("secret.png"))
        .unwrap();
    std::fs::create_dir(data.join("locked")).unwrap();
    image::RgbImage::from_pixel(8, 8, image::Rgb([4, 5, 6]))
        .save(data.join("locked/inside.png"))
        .unwrap();
    std::fs::set_permissions(
        data.join("secret.png"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    std::fs::set_permissions(data.join("locked"), std::fs::Permissions::from_mode(0o000)).unwrap();
    for folder in [
        dir.path().to_path_buf(),
        data.clone(),
        data.join("a"),
        data.join("b"),
    ] {
        let mode = if folder == dir.path() { 0o777 } else { 0o755 };
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let run = dir.path().join("run");
    let root = std::process::Command::new("id").arg("-u").output().unwrap();
    let as_root = String::from_utf8_lossy(&root.stdout).trim() == "0";
    let mut command = if as_root {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid", "4321", "--regid", "4321", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_wgangp-tui"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_wgangp-tui"))
    };
    let out = command
        .args(["--no-ui", "--data", data.to_str().unwrap(), "--size", "32"])
        .args(["--batch", "2", "--n-critic", "1", "--steps", "1"])
        .args(["--out", run.to_str().unwrap()])
        .env("WGANGP_CACHE", dir.path().join("cache"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let skipped = std::fs::read_to_string(run.join("skipped-files.txt")).unwrap();
    let line = |name: &str| {
        skipped
            .lines()
            .find(|l| l.split('\t').next().is_some_and(|p| p.ends_with(name)))
            .unwrap_or_else(|| panic!("{name} is not in skipped-files.txt:\n{skipped}"))
            .to_string()
    };
    assert!(line("secret.png").contains("ermission denied"), "{skipped}");
    assert!(
        line("locked").contains("cannot read the folder"),
        "{skipped}"
    );
    assert!(!skipped.contains("inside.png"), "{skipped}");
    // The readable pictures trained: 4 of them.
    assert!(
        stderr.contains("4 pictures") || stderr.contains("4 usable"),
        "{stderr}"
    );
}
