//! The file sink: each request as a body file plus one line of `requests.jsonl`.

use super::{ForwardError, Sink, io_error};
use crate::Payload;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// The name of the request index in a file sink's directory.
pub(crate) const INDEX_FILE: &str = "requests.jsonl";

/// Writes each payload as `NNNNNN.body` in a directory and describes it with one line of
/// `requests.jsonl`:
///
/// ```text
/// {"seq":1,"path":"/api/v2/series","content_type":"application/x-protobuf","content_encoding":"zstd","body_file":"000001.body","bytes":1234}
/// ```
///
/// `content_encoding` is `null` for uncompressed bodies. Opening a directory that already holds
/// requests continues the numbering.
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    index: File,
    next_seq: u64,
}

impl FileSink {
    /// Creates `dir` (and parents) if needed and opens its `requests.jsonl` for appending.
    ///
    /// # Errors
    /// [`ForwardError::Io`] when the directory or index cannot be created or read.
    pub fn create(dir: impl AsRef<Path>) -> Result<FileSink, ForwardError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let index_path = dir.join(INDEX_FILE);
        let mut next_seq = 1;
        if let Ok(existing) = File::open(&index_path) {
            for line in BufReader::new(existing).lines() {
                let line = line.map_err(io_error(&index_path))?;
                if let Some(seq) = seq_of(&line) {
                    next_seq = next_seq.max(seq.saturating_add(1));
                }
            }
        }
        let index = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&index_path)
            .map_err(io_error(&index_path))?;
        Ok(FileSink {
            dir,
            index,
            next_seq,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The `seq` of an index line written by this sink.
fn seq_of(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("{\"seq\":")?;
    let end = rest.find(',')?;
    rest.get(..end)?.parse().ok()
}

impl Sink for FileSink {
    fn send(&mut self, payload: Payload) -> Result<(), ForwardError> {
        // A body file without its index line (the process died between the two writes) keeps
        // its number: skip past such orphans instead of failing on them.
        let (seq, body_file, body_path, mut file) = loop {
            let seq = self.next_seq;
            let body_file = format!("{seq:06}.body");
            let body_path = self.dir.join(&body_file);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&body_path)
            {
                Ok(file) => break (seq, body_file, body_path, file),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && seq < u64::MAX => {
                    self.next_seq += 1;
                }
                Err(e) => return Err(io_error(&body_path)(e)),
            }
        };
        file.write_all(payload.body())
            .map_err(io_error(&body_path))?;
        let encoding = match payload.content_encoding() {
            Some(e) => format!("\"{e}\""),
            None => "null".to_string(),
        };
        let line = format!(
            "{{\"seq\":{seq},\"path\":\"{}\",\"content_type\":\"{}\",\"content_encoding\":{encoding},\"body_file\":\"{body_file}\",\"bytes\":{}}}\n",
            payload.path(),
            payload.content_type(),
            payload.body().len()
        );
        let index_path = self.dir.join(INDEX_FILE);
        self.index
            .write_all(line.as_bytes())
            .map_err(io_error(&index_path))?;
        self.index.flush().map_err(io_error(&index_path))?;
        self.next_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Compression, Endpoint};

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("dogpipe-file-sink-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_orphan_body_left_by_a_crash_is_skipped() {
        let dir = std::env::temp_dir().join(format!("dogpipe-orphan-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("000001.body"), b"half-written").unwrap();
        let mut sink = FileSink::create(&dir).unwrap();
        let payload = crate::Payload::new(
            crate::Endpoint::SeriesV2,
            crate::Compression::None,
            b"x".to_vec(),
        );
        sink.send(payload).unwrap();
        let index = std::fs::read_to_string(dir.join(INDEX_FILE)).unwrap();
        assert!(
            index.contains("\"seq\":2") && index.contains("000002.body"),
            "{index}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_body_files_and_index_lines_and_continues_numbering() {
        let dir = temp_dir("numbering");
        let mut sink = FileSink::create(&dir).unwrap();
        sink.send(Payload::new(
            Endpoint::SeriesV2,
            Compression::default(),
            vec![1, 2, 3],
        ))
        .unwrap();
        drop(sink);
        let mut sink = FileSink::create(&dir).unwrap();
        sink.send(Payload::new(
            Endpoint::Events,
            Compression::None,
            b"{}".to_vec(),
        ))
        .unwrap();
        let index = fs::read_to_string(dir.join(INDEX_FILE)).unwrap();
        assert_eq!(
            index,
            "{\"seq\":1,\"path\":\"/api/v2/series\",\"content_type\":\"application/x-protobuf\",\"content_encoding\":\"zstd\",\"body_file\":\"000001.body\",\"bytes\":3}\n\
             {\"seq\":2,\"path\":\"/intake/\",\"content_type\":\"application/json\",\"content_encoding\":null,\"body_file\":\"000002.body\",\"bytes\":2}\n"
        );
        assert_eq!(fs::read(dir.join("000001.body")).unwrap(), [1, 2, 3]);
        assert_eq!(fs::read(dir.join("000002.body")).unwrap(), b"{}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_the_path() {
        let file = temp_dir("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let err = FileSink::create(&file).unwrap_err();
        assert!(
            err.to_string().contains("dogpipe-file-sink-not-a-dir"),
            "{err}"
        );
        fs::remove_file(&file).unwrap();
    }
}
