//! `dogpipe logs decode` on real files.

use std::process::Command;

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dogpipe-logs-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn decodes_cri_and_docker_files_with_auto_detection() {
    let cri = temp_file(
        "0.log",
        b"2024-05-01T12:00:00Z stdout P hel\n2024-05-01T12:00:00Z stderr F lo\n2024-05-01T12:00:01Z stdout P tail\n",
    );
    let docker = temp_file(
        "c-json.log",
        b"{\"log\":\"x\\u0026y\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\nnot json\nunterminated",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .args(["logs", "decode"])
        .arg(&cri)
        .arg(&docker)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"message\":\"hello\",\"status\":\"error\",\"stream\":\"stderr\",\"time\":\"2024-05-01T12:00:00Z\",\"truncated\":false,\"offset\":67}\n\
         {\"message\":\"tail\",\"status\":\"info\",\"stream\":\"stdout\",\"time\":\"2024-05-01T12:00:01Z\",\"truncated\":false,\"offset\":102}\n\
         {\"message\":\"x&y\",\"status\":\"info\",\"stream\":\"stdout\",\"time\":\"t\",\"truncated\":false,\"offset\":50}\n\
         {\"message\":\"not json\",\"status\":\"info\",\"stream\":null,\"time\":null,\"truncated\":false,\"offset\":59}\n"
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("format cri, 3 lines, 2 messages"),
        "{stderr}"
    );
    assert!(
        stderr.contains("format docker, 2 lines, 2 messages, 1 not parsed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("12 trailing bytes without a newline were not decoded"),
        "{stderr}"
    );
}

#[test]
fn reports_bad_arguments_and_missing_files() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    let (code, err) = run(&["logs", "decode", "--format", "xml", "f"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown format `xml`"), "{err}");
    let (code, err) = run(&["logs", "decode", "--rules", "[{\"type\":\"x\"}]", "f"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("processing rule #0"), "{err}");
    let (code, err) = run(&["logs", "decode", "--encoding", "shift-jis", "f"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown encoding `shift-jis`"), "{err}");
    let (code, err) = run(&["logs", "decode", "/nonexistent/dogpipe.log"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/dogpipe.log"), "{err}");
}

#[test]
fn applies_rules_and_the_size_limit() {
    let file = temp_file("plain.log", b"DEBUG a\nabcdefghijkl\n");
    let out = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .args([
            "logs",
            "decode",
            "--format",
            "raw",
            "--max-message-bytes",
            "10",
            "--rules",
        ])
        .arg(r#"[{"type":"exclude_at_match","name":"d","pattern":"DEBUG"}]"#)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout.contains("\"message\":\"abcdefghij...TRUNCATED...\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"message\":\"...TRUNCATED...kl\""),
        "{stdout}"
    );
}

#[test]
fn decodes_a_utf16_file_with_byte_offsets() {
    let bytes: Vec<u8> = "héllo\nwörld\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let file = temp_file("utf16.log", &bytes);
    let out = Command::new(env!("CARGO_BIN_EXE_dogpipe"))
        .args(["logs", "decode", "--encoding", "utf-16-le"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"message\":\"héllo\",\"status\":\"info\",\"stream\":null,\"time\":null,\"truncated\":false,\"offset\":12}\n\
         {\"message\":\"wörld\",\"status\":\"info\",\"stream\":null,\"time\":null,\"truncated\":false,\"offset\":24}\n"
    );
}
