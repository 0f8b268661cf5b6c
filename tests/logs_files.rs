//! The decoder on real files, read as a tailer would: resuming at the settled offset after a stop
//! loses no line and repeats none.

use dogpipe::{Decoder, DecoderConfig, LogFormat, OwnedLogMessage};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::time::Instant;

const TS: &str = "2024-05-01T12:00:00.000000001Z";

fn cri_file() -> (std::path::PathBuf, Vec<String>) {
    let mut text = String::new();
    let mut expected = Vec::new();
    for i in 0..300 {
        let line = format!("line {i} {}", "x".repeat(i % 37));
        if i % 5 == 0 {
            let (a, b) = line.split_at(line.len() / 2);
            text.push_str(&format!("{TS} stdout P {a}\n{TS} stderr F {b}\n"));
        } else {
            text.push_str(&format!("{TS} stdout F {line}\n"));
        }
        if i % 9 == 0 {
            text.push_str(&format!("{TS} stdout F   \n"));
        }
        expected.push(line.trim_end().to_string());
    }
    let dir = std::env::temp_dir().join(format!("dogpipe-logs-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("0.log");
    std::fs::write(&path, text).unwrap();
    (path, expected)
}

/// Reads `file` from `offset` in `read`-byte reads until `stop_after` bytes, then stops the
/// decoder (as a tailer does); returns the messages and the offset to resume from.
fn tail(
    path: &std::path::Path,
    offset: u64,
    read: usize,
    stop_after: u64,
) -> (Vec<OwnedLogMessage>, u64) {
    let mut file = File::open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let config = DecoderConfig::default()
        .with_format(LogFormat::Cri)
        .with_start_offset(offset);
    let mut decoder = Decoder::new(config);
    let now = Instant::now();
    let mut out = Vec::new();
    let mut taken = 0u64;
    while taken < stop_after {
        let n = decoder
            .read_from(&mut file, read, now, |m| out.push(m.to_owned()))
            .unwrap();
        if n == 0 {
            break;
        }
        taken += n as u64;
    }
    // Stopping: messages not yet complete are not emitted; resume from the settled offset.
    (out, decoder.settled_offset())
}

#[test]
fn resuming_at_the_settled_offset_delivers_every_line_exactly_once() {
    let (path, expected) = cri_file();
    let size = std::fs::metadata(&path).unwrap().len();
    for (read, stop) in [(4096, 1000), (7, 333), (100, 5000), (64 * 1024, u64::MAX)] {
        let mut delivered = Vec::new();
        let mut offset = 0;
        let mut rounds = 0;
        while offset < size {
            let (messages, resume) = tail(&path, offset, read, stop);
            let mut last = offset;
            for m in &messages {
                assert!(
                    m.end_offset > last && m.end_offset <= resume,
                    "offsets grow"
                );
                last = m.end_offset;
            }
            delivered.extend(
                messages
                    .into_iter()
                    .map(|m| String::from_utf8(m.content).unwrap()),
            );
            assert!(resume > offset || resume == size, "progress");
            offset = resume;
            rounds += 1;
            assert!(rounds < 10_000);
        }
        assert_eq!(delivered, expected, "read {read}, stop after {stop}");
    }
}
