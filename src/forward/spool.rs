//! The on-disk spool: one file per payload, named so that a restart finds the order and format.

use super::{ForwardError, io_error};
use crate::{Compression, Endpoint};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A payload found in the spool directory.
#[derive(Debug)]
pub(crate) struct Spooled {
    pub(crate) seq: u64,
    pub(crate) endpoint: Endpoint,
    pub(crate) compression: Compression,
    pub(crate) path: PathBuf,
    pub(crate) len: usize,
}

/// A bounded directory of payloads.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    bytes: u64,
}

const SUFFIX: &str = ".payload";

fn file_name(seq: u64, endpoint: Endpoint, compression: Compression) -> String {
    format!(
        "{seq:020}.{}.{}{SUFFIX}",
        endpoint.name(),
        compression.kind()
    )
}

/// Parses `<seq>.<endpoint>.<compression>.payload`.
fn parse_name(name: &str) -> Option<(u64, Endpoint, Compression)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let mut parts = stem.split('.');
    let seq = parts.next()?.parse().ok()?;
    let endpoint = Endpoint::from_name(parts.next()?)?;
    let compression = match parts.next()? {
        "zstd" => Compression::default(),
        "zlib" => Compression::ZLIB_DEFAULT,
        "gzip" => Compression::GZIP_DEFAULT,
        "none" => Compression::None,
        _ => return None,
    };
    parts
        .next()
        .is_none()
        .then_some((seq, endpoint, compression))
}

impl Spool {
    /// Opens (creating) `dir`; returns the spool, the payloads it holds in order, and the names
    /// of files it did not recognise (left alone).
    pub(crate) fn open(
        dir: &Path,
        max_bytes: u64,
    ) -> Result<(Spool, Vec<Spooled>, Vec<String>), ForwardError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        let mut bytes = 0u64;
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.ends_with(".tmp") {
                // A write interrupted by a crash: never renamed, so never acknowledged.
                let _ = fs::remove_file(&path);
                continue;
            }
            match (parse_name(&name), entry.metadata()) {
                (Some((seq, endpoint, compression)), Ok(meta)) if meta.is_file() => {
                    bytes = bytes.saturating_add(meta.len());
                    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
                    found.push(Spooled {
                        seq,
                        endpoint,
                        compression,
                        path,
                        len,
                    });
                }
                _ => unknown.push(name),
            }
        }
        found.sort_by_key(|s| s.seq);
        Ok((
            Spool {
                dir: dir.to_path_buf(),
                max_bytes,
                bytes,
            },
            found,
            unknown,
        ))
    }

    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.bytes.saturating_add(len as u64) <= self.max_bytes
    }

    pub(crate) fn fits_at_all(&self, len: usize) -> bool {
        len as u64 <= self.max_bytes
    }

    /// Writes a payload (to a temporary name, then renamed) and returns its path.
    pub(crate) fn write(
        &mut self,
        seq: u64,
        endpoint: Endpoint,
        compression: Compression,
        body: &[u8],
    ) -> Result<PathBuf, ForwardError> {
        let path = self.dir.join(file_name(seq, endpoint, compression));
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(body)?;
            f.sync_data()?;
            fs::rename(&tmp, &path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(ForwardError::Io { path, source: e });
        }
        self.bytes = self.bytes.saturating_add(body.len() as u64);
        Ok(path)
    }

    pub(crate) fn read(&self, path: &Path) -> Result<Vec<u8>, ForwardError> {
        fs::read(path).map_err(io_error(path))
    }

    /// Removes a payload file of `len` bytes.
    pub(crate) fn remove(&mut self, path: &Path, len: usize) {
        let _ = fs::remove_file(path);
        self.bytes = self.bytes.saturating_sub(len as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_strangers_are_rejected() {
        for e in Endpoint::ALL {
            for c in [
                Compression::default(),
                Compression::ZLIB_DEFAULT,
                Compression::None,
            ] {
                let name = file_name(42, e, c);
                assert_eq!(parse_name(&name), Some((42, e, c)));
            }
        }
        for bad in [
            "x.payload",
            "1.series_v2.zstd",
            "1.nope.zstd.payload",
            "1.series_v2.lz4.payload",
            "1.series_v2.zstd.x.payload",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }
}
