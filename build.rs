//! Lists every file under `rules/` for `demo`, which carries the shipped rules inside the
//! binary so that it runs from any directory (an installed binary, a container).
//!
//! Writes `$OUT_DIR/shipped_rules.rs`: one slice of `(path under rules/, include_str!(file))`,
//! sorted, so that the build reads each file itself and a changed rule rebuilds the binary.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=rules");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .expect("walked below rules/")
            .components()
            .map(|c| c.as_os_str().to_str().expect("rule file names are UTF-8"))
            .collect::<Vec<_>>()
            .join("/");
        let absolute = file.to_str().expect("the rules path is UTF-8");
        out.push_str(&format!(
            "    ({relative:?}, include_str!({absolute:?})),\n"
        ));
    }
    out.push_str("]\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("shipped_rules.rs");
    std::fs::write(&dest, out).expect("write shipped_rules.rs");
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("read a rules/ entry").path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}
