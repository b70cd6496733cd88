//! The conformance material built into the binary (`build.rs`): the clause catalogue, the suites,
//! the vectors and the simulator scenarios. The loaders read folders, so the material is unpacked
//! once per process into a fresh private folder under the system's temporary folder (mode 0700,
//! never an existing one) and removed by [`cleanup`]; `--suites`, `--vectors` and
//! `--requirements` point the tool at other folders instead.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

include!(concat!(env!("OUT_DIR"), "/embedded_files.rs"));

/// Why the embedded material could not be unpacked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the conformance material built into yrdx could not be unpacked into {path}: {message}")]
pub struct UnpackError {
    /// The folder or file being written.
    pub path: String,
    /// The I/O error.
    pub message: String,
}

static UNPACKED: OnceLock<Result<PathBuf, UnpackError>> = OnceLock::new();
static REMOVED: Mutex<bool> = Mutex::new(false);

/// The embedded files: (path relative to the material's root, bytes), in path order.
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    FILES
}

fn unpack() -> Result<PathBuf, UnpackError> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let root = std::env::temp_dir().join(format!("yrdx-conformance-{}-{nanos}", std::process::id()));
    let fail = |p: &Path, e: std::io::Error| UnpackError { path: p.display().to_string(), message: e.to_string() };
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    // `create`, not `create_all`: a folder someone else prepared is never used.
    builder.create(&root).map_err(|e| fail(&root, e))?;
    for (rel, bytes) in FILES {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| fail(&path, e))?;
    }
    Ok(root)
}

/// The folder the embedded material is unpacked in (unpacked on first use).
pub fn root() -> Result<&'static Path, UnpackError> {
    UNPACKED.get_or_init(unpack).as_ref().map(PathBuf::as_path).map_err(Clone::clone)
}

/// `rel` inside the unpacked material; when it could not be unpacked, a path whose text says
/// why, so the loader that reads it reports the cause.
pub fn path(rel: &str) -> PathBuf {
    match root() {
        Ok(r) => r.join(rel),
        Err(e) => PathBuf::from(format!("<{e}>")).join(rel),
    }
}

/// Removes the unpacked folder (at the end of a command); later calls of [`path`] in this
/// process would find it gone.
pub fn cleanup() {
    let Ok(mut removed) = REMOVED.lock() else { return };
    if let Some(Ok(root)) = UNPACKED.get() {
        if !*removed {
            let _ = std::fs::remove_dir_all(root);
            *removed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_material_is_embedded_and_unpacks_as_in_the_source_tree() {
        let names: Vec<&str> = files().iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"requirements.toml"), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("suites/gateway/")), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("vectors/jiangsu/valid/")), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("scenarios/")), "{names:?}");
        let root = root().expect("unpacks");
        let source = Path::new(env!("CARGO_MANIFEST_DIR"));
        for (rel, bytes) in files() {
            assert_eq!(std::fs::read(root.join(rel)).expect("unpacked"), *bytes, "{rel}");
            assert_eq!(std::fs::read(source.join(rel)).expect("source"), *bytes, "{rel} as in the source tree");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "a private folder");
        }
        cleanup();
        assert!(!root.exists());
    }
}
