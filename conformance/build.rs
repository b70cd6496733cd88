//! Embeds the conformance material — the clause catalogue (`requirements.toml`), the suites, the
//! vectors and the simulator scenarios — in the library, so an installed `yrdx` binary needs no
//! source tree (`src/embedded.rs` unpacks it at run time; `--suites`/`--vectors` override it).
//! Only file contents are embedded (`include_bytes!`), under paths relative to this folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The folders and files embedded, relative to the crate's folder.
const MATERIAL: [&str; 4] = ["requirements.toml", "suites", "vectors", "scenarios"];

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let here = root.join(rel);
    if here.is_file() {
        out.push(rel.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(&here)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        walk(root, &rel.join(e.file_name()), out)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let mut files = Vec::new();
    for m in MATERIAL {
        println!("cargo:rerun-if-changed={m}");
        walk(&root, Path::new(m), &mut files)?;
    }
    let mut code = String::from("/// Every embedded file: its path relative to `conformance/`, and its bytes.\n");
    code.push_str("pub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        let rel = f.to_str().ok_or("a non-UTF-8 file name in the conformance material")?.replace('\\', "/");
        let abs = root.join(f);
        let abs = abs.to_str().ok_or("a non-UTF-8 path to the conformance material")?;
        writeln!(code, "    ({rel:?}, include_bytes!({abs:?})),")?;
    }
    code.push_str("];\n");
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR")?).join("embedded_files.rs"), code)?;
    Ok(())
}
