//! Lambda deployment packages: a source directory zipped deterministically,
//! or a prebuilt zip.
//!
//! Lambda identifies code by the SHA-256 of the package (`CodeSha256`). A zip
//! made with file timestamps, directory order or umask-dependent permissions
//! would change bytes on every build and make every plan show a code update.
//! So entries are sorted by path, every timestamp is 1980-01-01 00:00, and
//! permissions are 0644 (0755 for executables: custom runtimes need their
//! `bootstrap` executable). Editor and interpreter litter (`.git`,
//! `__pycache__`, `*.pyc`, `.DS_Store`) is left out so that running the
//! code locally does not change the package.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

/// Lambda's limit for a package uploaded in the CreateFunction /
/// UpdateFunctionCode request itself.
pub const MAX_ZIPPED: u64 = 50 * 1024 * 1024;
/// Lambda's limit for the unzipped code of a function.
pub const MAX_UNZIPPED: u64 = 250 * 1024 * 1024;
/// Directory depth beyond which a source tree is refused (a symlink loop).
const MAX_DEPTH: usize = 32;

/// Where a function's code comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeSource {
    Dir(PathBuf),
    Zip(PathBuf),
}

impl CodeSource {
    pub fn path(&self) -> &Path {
        match self {
            CodeSource::Dir(p) | CodeSource::Zip(p) => p,
        }
    }
}

/// A built package.
pub struct Package {
    pub bytes: Vec<u8>,
    /// Base64 of the SHA-256 of `bytes`: what Lambda reports as `CodeSha256`.
    pub sha256: String,
    /// Paths of the files inside.
    pub entries: Vec<String>,
    pub unzipped_size: u64,
}

fn skipped(name: &str) -> bool {
    matches!(name, ".git" | "__pycache__" | ".DS_Store") || name.ends_with(".pyc")
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<(String, PathBuf, bool)>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "{} is nested more than {MAX_DEPTH} directories deep (a symbolic link loop?)",
            dir.display()
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for e in entries {
        let e = e.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if skipped(&name) {
            continue;
        }
        let path = e.path();
        // Follows symbolic links: the package holds what the link points at.
        let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if meta.is_dir() {
            walk(root, &path, depth + 1, out)?;
        } else if meta.is_file() {
            let rel =
                path.strip_prefix(root).map_err(|_| format!("{} is outside {}", path.display(), root.display()))?;
            let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            #[cfg(unix)]
            let exec = {
                use std::os::unix::fs::PermissionsExt;
                meta.permissions().mode() & 0o111 != 0
            };
            #[cfg(not(unix))]
            let exec = false;
            out.push((rel.join("/"), path, exec));
        }
    }
    Ok(())
}

/// Zips `dir` deterministically.
pub fn zip_dir(dir: &Path) -> Result<Package, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let mut files = Vec::new();
    walk(dir, dir, 0, &mut files)?;
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut w = ZipWriter::new(Cursor::new(Vec::new()));
    let mut unzipped = 0u64;
    let mut buf = Vec::new();
    for (name, path, exec) in &files {
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(DateTime::default())
            .unix_permissions(if *exec { 0o755 } else { 0o644 });
        buf.clear();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        unzipped += buf.len() as u64;
        w.start_file(name.as_str(), opts)
            .and_then(|_| w.write_all(&buf).map_err(Into::into))
            .map_err(|e| format!("cannot zip {}: {e}", path.display()))?;
    }
    let bytes = w.finish().map_err(|e| format!("cannot zip {}: {e}", dir.display()))?.into_inner();
    Ok(Package {
        sha256: sha256_b64(&bytes),
        bytes,
        entries: files.into_iter().map(|f| f.0).collect(),
        unzipped_size: unzipped,
    })
}

/// Reads a prebuilt zip (and checks it is one).
pub fn read_zip(path: &Path) -> Result<Package, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut a =
        ZipArchive::new(Cursor::new(&bytes)).map_err(|e| format!("{} is not a zip file: {e}", path.display()))?;
    let mut entries = Vec::new();
    let mut unzipped = 0u64;
    for i in 0..a.len() {
        let f = a.by_index(i).map_err(|e| format!("{} is a damaged zip file: {e}", path.display()))?;
        unzipped += f.size();
        if !f.is_dir() {
            let name = f.name().map_err(|e| format!("{} has an unreadable entry name: {e}", path.display()))?;
            entries.push(name.to_string());
        }
    }
    Ok(Package { sha256: sha256_b64(&bytes), bytes, entries, unzipped_size: unzipped })
}

pub fn build(src: &CodeSource) -> Result<Package, String> {
    match src {
        CodeSource::Dir(d) => zip_dir(d),
        CodeSource::Zip(z) => read_zip(z),
    }
}

pub fn sha256_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) {
        std::fs::create_dir_all(dir.join("lib/__pycache__")).unwrap();
        std::fs::write(dir.join("app.py"), "def handler(e, c):\n    return 1\n").unwrap();
        std::fs::write(dir.join("lib/util.py"), "X = 1\n").unwrap();
        std::fs::write(dir.join("lib/__pycache__/util.cpython-312.pyc"), "junk").unwrap();
    }

    #[test]
    fn same_source_same_bytes_whatever_the_timestamps() {
        let a = tempfile::tempdir().unwrap();
        tree(a.path());
        let first = zip_dir(a.path()).unwrap();
        // Same content written later, in another order, elsewhere.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(b.path().join("lib")).unwrap();
        std::fs::write(b.path().join("lib/util.py"), "X = 1\n").unwrap();
        std::fs::write(b.path().join("app.py"), "def handler(e, c):\n    return 1\n").unwrap();
        let second = zip_dir(b.path()).unwrap();
        assert_eq!(first.bytes, second.bytes);
        assert_eq!(first.sha256, second.sha256);
        assert_eq!(first.entries, vec!["app.py", "lib/util.py"]);

        std::fs::write(b.path().join("app.py"), "def handler(e, c):\n    return 2\n").unwrap();
        assert_ne!(zip_dir(b.path()).unwrap().sha256, first.sha256);
    }

    #[test]
    fn the_package_reads_back_with_fixed_metadata() {
        let a = tempfile::tempdir().unwrap();
        tree(a.path());
        let p = zip_dir(a.path()).unwrap();
        let zpath = a.path().join("out.zip");
        std::fs::write(&zpath, &p.bytes).unwrap();
        let back = read_zip(&zpath).unwrap();
        assert_eq!(back.sha256, p.sha256);
        assert_eq!(back.entries, p.entries);
        let mut z = ZipArchive::new(Cursor::new(&p.bytes)).unwrap();
        let f = z.by_name("app.py").unwrap();
        assert_eq!(f.unix_mode().map(|m| m & 0o777), Some(0o644));
        assert_eq!(f.last_modified(), Some(DateTime::default()));
        assert!(read_zip(&a.path().join("app.py")).is_err());
    }
}
