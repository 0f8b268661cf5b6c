//! The registry: where each file was read up to (acknowledged by the sink), on disk as JSON,
//! written atomically.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// How many first bytes of a file its fingerprint covers (at most).
pub(crate) const FINGERPRINT_BYTES: usize = 1024;

/// What tells a file apart from another one at the same path: device, inode, and a hash of its
/// first bytes (which changes when the inode is reused or the file is truncated and rewritten).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Identity {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    /// Bytes hashed (fewer than [`FINGERPRINT_BYTES`] while the file is small).
    pub(crate) fp_len: u64,
    pub(crate) fp: u64,
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The hash of the first `len` bytes of `file`, `None` if it is shorter now.
pub(crate) fn fingerprint(file: &File, len: u64) -> io::Result<Option<u64>> {
    let mut buf = [0u8; FINGERPRINT_BYTES];
    let want = usize::try_from(len)
        .unwrap_or(FINGERPRINT_BYTES)
        .min(FINGERPRINT_BYTES);
    let mut got = 0;
    while got < want {
        let Some(slot) = buf.get_mut(got..want) else {
            break;
        };
        let n = file.read_at(slot, got as u64)?;
        if n == 0 {
            return Ok(None);
        }
        got += n;
    }
    Ok(Some(fnv1a(buf.get(..want).unwrap_or_default())))
}

impl Identity {
    /// The identity of an open file now (fingerprint over as many first bytes as it has, up to
    /// [`FINGERPRINT_BYTES`]).
    pub(crate) fn of(file: &File) -> io::Result<Identity> {
        let meta = file.metadata()?;
        let fp_len = meta.len().min(FINGERPRINT_BYTES as u64);
        Ok(Identity {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len,
            fp: fingerprint(file, fp_len)?.unwrap_or(0),
        })
    }

    /// Whether `file` (known to be the same inode) still starts with the bytes fingerprinted.
    pub(crate) fn content_matches(&self, file: &File) -> io::Result<bool> {
        Ok(fingerprint(file, self.fp_len)? == Some(self.fp))
    }
}

/// One registry entry: a file (by path and identity) and the offset up to which its messages
/// were accepted by the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) path: String,
    pub(crate) identity: Identity,
    pub(crate) offset: u64,
}

/// The registry in memory: entries by the tailer's file id, and the file they are saved to.
#[derive(Debug)]
pub(crate) struct Registry {
    pub(crate) entries: BTreeMap<u64, Entry>,
    path: PathBuf,
    dirty: bool,
}

/// The registry file's name in the run directory.
pub(crate) const REGISTRY_FILE: &str = "registry.json";

impl Registry {
    /// The entries saved in `run_dir` (none if there is no registry yet). Unreadable or
    /// malformed files are an error: the caller decides whether to start over.
    pub(crate) fn load(run_dir: &Path) -> Result<(Registry, Vec<Entry>), String> {
        let path = run_dir.join(REGISTRY_FILE);
        let registry = Registry {
            entries: BTreeMap::new(),
            path: path.clone(),
            dirty: false,
        };
        let mut text = String::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_string(&mut text)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((registry, Vec::new())),
            Err(e) => return Err(format!("cannot open `{}`: {e}", path.display())),
        }
        let bad = |what: &str| format!("`{}` is not a dogpipe registry: {what}", path.display());
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
        let files = value
            .get("files")
            .and_then(|f| f.as_array())
            .ok_or_else(|| bad("no `files` array"))?;
        let mut saved = Vec::new();
        for f in files {
            let num = |k: &str| f.get(k).and_then(serde_json::Value::as_u64);
            let num_str = |k: &str| {
                f.get(k)
                    .and_then(serde_json::Value::as_str)
                    .and_then(|s| s.parse::<u64>().ok())
            };
            let (Some(path), Some(dev), Some(ino), Some(fp_len), Some(fp), Some(offset)) = (
                f.get("path").and_then(serde_json::Value::as_str),
                num("dev"),
                num("ino"),
                num("fingerprint_bytes"),
                num_str("fingerprint"),
                num_str("offset"),
            ) else {
                return Err(bad("an entry lacks path, dev, ino, fingerprint or offset"));
            };
            saved.push(Entry {
                path: path.to_string(),
                identity: Identity {
                    dev,
                    ino,
                    fp_len,
                    fp,
                },
                offset,
            });
        }
        Ok((registry, saved))
    }

    /// An empty registry saved in `run_dir`.
    pub(crate) fn empty(run_dir: &Path) -> Registry {
        Registry {
            entries: BTreeMap::new(),
            path: run_dir.join(REGISTRY_FILE),
            dirty: false,
        }
    }

    pub(crate) fn set(&mut self, id: u64, entry: Entry) {
        self.entries.insert(id, entry);
        self.dirty = true;
    }

    pub(crate) fn set_offset(&mut self, id: u64, offset: u64) {
        if let Some(e) = self.entries.get_mut(&id) {
            if e.offset != offset {
                e.offset = offset;
                self.dirty = true;
            }
        }
    }

    pub(crate) fn remove(&mut self, id: u64) {
        if self.entries.remove(&id).is_some() {
            self.dirty = true;
        }
    }

    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The JSON text of the registry.
    pub(crate) fn to_json(&self) -> String {
        let files: Vec<serde_json::Value> = self
            .entries
            .values()
            .map(|e| {
                serde_json::json!({
                    "path": e.path,
                    "dev": e.identity.dev,
                    "ino": e.identity.ino,
                    "fingerprint_bytes": e.identity.fp_len,
                    "fingerprint": e.identity.fp.to_string(),
                    "offset": e.offset.to_string(),
                })
            })
            .collect();
        serde_json::json!({ "version": 1, "files": files }).to_string()
    }

    /// Writes the registry: a temporary file beside it, fsync, rename over the old one.
    pub(crate) fn write(&mut self) -> io::Result<()> {
        let text = self.to_json();
        let tmp = self.path.with_extension("json.tmp");
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &self.path)?;
        self.dirty = false;
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_write_and_load_and_the_temp_file_is_gone() {
        let dir = std::env::temp_dir().join(format!("dogpipe-registry-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (mut r, saved) = Registry::load(&dir).unwrap();
        assert!(saved.is_empty());
        let entry = Entry {
            path: "/p/0.log".into(),
            identity: Identity {
                dev: 1,
                ino: 2,
                fp_len: 3,
                fp: u64::MAX,
            },
            offset: 42,
        };
        r.set(7, entry.clone());
        assert!(r.is_dirty());
        r.write().unwrap();
        assert!(!r.is_dirty());
        assert!(!dir.join("registry.json.tmp").exists());
        let (_, saved) = Registry::load(&dir).unwrap();
        assert_eq!(saved, [entry]);
        fs::write(dir.join(REGISTRY_FILE), b"{").unwrap();
        let err = Registry::load(&dir).unwrap_err();
        assert!(err.contains("is not a dogpipe registry"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fingerprint_tells_rewritten_content_apart() {
        let path = std::env::temp_dir().join(format!("dogpipe-fp-{}", std::process::id()));
        fs::write(&path, b"first line\n").unwrap();
        let f = File::open(&path).unwrap();
        let id = Identity::of(&f).unwrap();
        assert_eq!(id.fp_len, 11);
        assert!(id.content_matches(&f).unwrap());
        fs::write(&path, b"other line\nmore").unwrap();
        assert!(!id.content_matches(&f).unwrap());
        fs::write(&path, b"short").unwrap();
        assert!(!id.content_matches(&f).unwrap());
        fs::remove_file(&path).unwrap();
    }
}
