//! The files an `upload` line hands to the page: read by the server, from the directories
//! the operator named with `--upload-dir` only.
//!
//! It owns resolving a path (relative paths against the first directory; symlinks resolved
//! before the check, so a link cannot point out of a directory), the size caps, and the
//! refusals that say what to do. It must not decide the line's tier (the classifier does)
//! and reads nothing outside the directories.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use shared_protocol::frame::UploadFile;

/// Largest file `upload` reads.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Largest total of one `upload` line (its base64 must fit in one frame with room to spare).
pub const MAX_TOTAL_BYTES: u64 = 10 * 1024 * 1024;

/// Why an `upload` line was not run. Each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefusal {
    #[error("`upload` reads files only from the directories --upload-dir names, and this server was started without one; restart it with --upload-dir DIR")]
    NoDirectory,
    #[error("usage: upload <input> <file…> (the input, then one or more files)")]
    Usage,
    #[error("{path}: {why}")]
    Unreadable { path: String, why: String },
    #[error("{path} resolves to {resolved}, outside the upload directories ({dirs}); put the file in one of them")]
    Outside {
        path: String,
        resolved: String,
        dirs: String,
    },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is {size} bytes, over the {max} an upload may carry")]
    TooLarge { path: String, size: u64, max: u64 },
}

/// A file's type from its name, for the page's `File.type` (what a browser would guess).
fn mime_of(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "txt" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "zip" => "application/zip",
        _ => "",
    }
}

/// The files `paths` name, read from `dirs`.
pub fn load(dirs: &[PathBuf], paths: &[String]) -> Result<Vec<UploadFile>, UploadRefusal> {
    let Some(first) = dirs.first() else {
        return Err(UploadRefusal::NoDirectory);
    };
    if paths.is_empty() {
        return Err(UploadRefusal::Usage);
    }
    let roots: Vec<PathBuf> = dirs.iter().filter_map(|d| d.canonicalize().ok()).collect();
    let shown = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut files = Vec::with_capacity(paths.len());
    let mut total = 0u64;
    for path in paths {
        let given = Path::new(path);
        let joined = if given.is_absolute() {
            given.to_path_buf()
        } else {
            first.join(given)
        };
        let unreadable = |e: std::io::Error| UploadRefusal::Unreadable {
            path: path.clone(),
            why: e.to_string(),
        };
        let resolved = joined.canonicalize().map_err(unreadable)?;
        if !roots.iter().any(|root| resolved.starts_with(root)) {
            return Err(UploadRefusal::Outside {
                path: path.clone(),
                resolved: resolved.display().to_string(),
                dirs: shown,
            });
        }
        let meta = std::fs::metadata(&resolved).map_err(unreadable)?;
        if !meta.is_file() {
            return Err(UploadRefusal::NotAFile { path: path.clone() });
        }
        if meta.len() > MAX_FILE_BYTES || total + meta.len() > MAX_TOTAL_BYTES {
            return Err(UploadRefusal::TooLarge {
                path: path.clone(),
                size: meta.len(),
                max: MAX_FILE_BYTES.min(MAX_TOTAL_BYTES - total),
            });
        }
        let bytes = std::fs::read(&resolved).map_err(unreadable)?;
        total += bytes.len() as u64;
        let name = resolved
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push(UploadFile {
            mime: mime_of(&name).to_string(),
            name,
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn files_in_the_directory_are_read_with_their_name_and_type() {
        let d = dir();
        std::fs::write(d.path().join("notes.txt"), "hello").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/data.csv"), "a,b").unwrap();
        let files = load(
            &[d.path().to_path_buf()],
            &["notes.txt".into(), "sub/data.csv".into()],
        )
        .unwrap();
        assert_eq!(files[0].name, "notes.txt");
        assert_eq!(files[0].mime, "text/plain");
        assert_eq!(files[0].data, "aGVsbG8=");
        assert_eq!(files[1].mime, "text/csv");
        let absolute = d.path().join("notes.txt").display().to_string();
        assert_eq!(
            load(&[d.path().to_path_buf()], &[absolute]).unwrap().len(),
            1
        );
    }

    #[test]
    fn nothing_outside_the_directories_is_read() {
        let d = dir();
        let outside = dir();
        std::fs::write(outside.path().join("secret.txt"), "no").unwrap();
        let dirs = [d.path().to_path_buf()];
        assert_eq!(load(&[], &["x".into()]), Err(UploadRefusal::NoDirectory));
        assert!(matches!(
            load(
                &dirs,
                &["../".to_string()
                    + &outside.path().file_name().unwrap().to_string_lossy()
                    + "/secret.txt"]
            ),
            Err(UploadRefusal::Outside { .. })
        ));
        let absolute = outside.path().join("secret.txt").display().to_string();
        assert!(matches!(
            load(&dirs, &[absolute]),
            Err(UploadRefusal::Outside { .. })
        ));
        // A link inside that points outside is followed before the check.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(
                outside.path().join("secret.txt"),
                d.path().join("link.txt"),
            )
            .unwrap();
            let refused = load(&dirs, &["link.txt".into()]).unwrap_err().to_string();
            assert!(
                refused.contains("outside the upload directories"),
                "{refused}"
            );
        }
        assert!(matches!(
            load(&dirs, &["missing.txt".into()]),
            Err(UploadRefusal::Unreadable { .. })
        ));
        std::fs::create_dir(d.path().join("folder")).unwrap();
        assert_eq!(
            load(&dirs, &["folder".into()]),
            Err(UploadRefusal::NotAFile {
                path: "folder".into()
            })
        );
        assert_eq!(load(&dirs, &[]), Err(UploadRefusal::Usage));
    }

    #[test]
    fn a_file_over_the_cap_is_refused() {
        let d = dir();
        let big = std::fs::File::create(d.path().join("big.bin")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(
            load(&[d.path().to_path_buf()], &["big.bin".into()]),
            Err(UploadRefusal::TooLarge { .. })
        ));
    }
}
