//! Reading the files an operator points roomgate at: the config itself, `{file: …}`
//! secrets, certificates and keys, and the secrets file.
//!
//! Owns the one rule every such read follows: the path must name a regular file (never a
//! FIFO, a device, a socket or a directory), no larger than a cap for its kind. The type
//! and size are checked with metadata before the file is opened, the file is opened
//! without blocking (a FIFO swapped in after the check cannot hang the reader), checked
//! again on the open handle, and read through a reader bounded by the cap. Errors name the
//! path and the rule that failed, never the content.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::path::Path;

/// The largest config file read (32 MiB: some 250 000 routes).
pub const MAX_CONFIG_BYTES: u64 = 32 << 20;
/// The largest `{file: …}` secret read (64 KiB: a PEM private key is a few KiB).
pub const MAX_SECRET_BYTES: u64 = 64 << 10;
/// The largest certificate chain or private key file read (1 MiB).
pub const MAX_PEM_BYTES: u64 = 1 << 20;
/// The largest secrets file read (4 MiB).
pub const MAX_SECRETS_FILE_BYTES: u64 = 4 << 20;

/// Why a file could not be read. `Display` names the path and the rule, never content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("{path} does not exist")]
    NotFound { path: String },
    #[error("{path} is {kind}, not a regular file")]
    NotRegular { path: String, kind: &'static str },
    #[error("{path} is {size} bytes, over the limit of {cap} bytes")]
    TooLarge { path: String, size: u64, cap: u64 },
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
}

/// What a non-regular file is, for the error.
fn kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// `Ok` when `meta` describes a regular file of at most `cap` bytes.
fn check(path: &Path, meta: &Metadata, cap: u64) -> Result<(), FileError> {
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.display().to_string(),
            kind: kind(meta),
        });
    }
    if meta.len() > cap {
        return Err(FileError::TooLarge {
            path: path.display().to_string(),
            size: meta.len(),
            cap,
        });
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> FileError {
    if e.kind() == std::io::ErrorKind::NotFound {
        FileError::NotFound {
            path: path.display().to_string(),
        }
    } else {
        FileError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// The bytes of the regular file at `path` (symbolic links followed), at most `cap`.
pub fn read_regular(path: &Path, cap: u64) -> Result<Vec<u8>, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    check(path, &meta, cap)?;
    let file = open_nonblocking(path).map_err(|e| io_error(path, e))?;
    // The path may name another file by now: check what was opened.
    let opened = file.metadata().map_err(|e| io_error(path, e))?;
    check(path, &opened, cap)?;
    let mut bytes = Vec::with_capacity(usize::try_from(opened.len()).unwrap_or(0));
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    // Grown since the check.
    if bytes.len() as u64 > cap {
        return Err(FileError::TooLarge {
            path: path.display().to_string(),
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok(bytes)
}

/// [`read_regular`], with a missing file read as `None`.
pub fn read_regular_if_present(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, FileError> {
    match read_regular(path, cap) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(FileError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_regular_file_under_the_cap_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_regular(&path, 10).unwrap(), b"0123456789");
        assert!(matches!(
            read_regular(&path, 9),
            Err(FileError::TooLarge {
                size: 10,
                cap: 9,
                ..
            })
        ));
    }

    // Security property (issue 17, finding 3): devices, directories and FIFOs are refused
    // at once, before anything is read or anyone waits for a writer.
    #[test]
    fn devices_directories_and_fifos_are_refused_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let started = Instant::now();
        for (path, kind) in [
            (Path::new("/dev/zero"), "a character device"),
            (Path::new("/dev/urandom"), "a character device"),
            (dir.path(), "a directory"),
            (fifo.as_path(), "a FIFO"),
        ] {
            match read_regular(path, MAX_SECRET_BYTES) {
                Err(FileError::NotRegular { kind: k, .. }) => assert_eq!(k, kind, "{path:?}"),
                other => panic!("{path:?}: {other:?}"),
            }
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_file_is_named_and_optional_reads_see_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let e = read_regular(&path, 10).unwrap_err();
        assert_eq!(e.to_string(), format!("{} does not exist", path.display()));
        assert_eq!(read_regular_if_present(&path, 10), Ok(None));
    }
}
