//! Compiles the device kernels' source (`src/model/device/kernels.cu`) with the system C++
//! compiler into the CPU twin that tests and `--device twin` run, the same text NVRTC compiles
//! for a GPU. Also lists each kernel's parameter fields for the layout test.

use std::fmt::Write;
use std::path::PathBuf;

const DIR: &str = "src/model/device";

fn main() {
    let source = std::fs::read_to_string(format!("{DIR}/kernels.cu")).expect("kernels.cu");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("layouts.h"), layouts(&source)).expect("writing layouts.h");
    for file in ["kernels.cu", "twin.cpp", "twin_prelude.h", "gpu_prelude.h"] {
        println!("cargo:rerun-if-changed={DIR}/{file}");
    }
    cc::Build::new()
        .cpp(true)
        .file(format!("{DIR}/twin.cpp"))
        .include(DIR)
        .include(&out)
        .std("c++17")
        .opt_level(2)
        // Products and sums rounded as written, as NVRTC does with --fmad=false.
        .flag("-ffp-contract=off")
        .flag_if_supported("-fno-fast-math")
        .warnings(true)
        .compile("wgangp_twin");
}

/// `LAYOUT(name, "f1,f2", 2, f1, f2)` for every `struct name_params { ... };` in the source.
fn layouts(source: &str) -> String {
    let mut text = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("\nstruct ") {
        rest = &rest[at + 8..];
        let name_end = rest.find(' ').expect("struct name");
        let Some(name) = rest[..name_end].strip_suffix("_params") else {
            continue;
        };
        let body = &rest[rest.find('{').expect("{") + 1..rest.find("};").expect("};")];
        let fields: Vec<&str> = body
            .lines()
            .map(|l| l.split("//").next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .map(|l| {
                let decl = l.strip_suffix(';').expect("one field a line");
                decl.rsplit([' ', '*']).next().expect("field name")
            })
            .collect();
        writeln!(
            text,
            "LAYOUT({name}, \"{}\", {}, {})",
            fields.join(","),
            fields.len(),
            fields.join(", ")
        )
        .unwrap();
    }
    text
}
