//! Container selection on real files through the real logs pipeline, configured from settings:
//! include/exclude lists, collect-all, and the per-pod logs config file.

use dogpipe::{BatchConfig, FileSink, LogsConfig, LogsPipeline, LogsStats, Settings};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dogpipe-select-it-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn write_file(pods: &Path, rel: &str, lines: &[&str]) {
    let path = pods.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text: String = lines
        .iter()
        .map(|l| format!("2024-05-01T12:00:00.000000000Z stdout F {l}\n"))
        .collect();
    fs::write(path, text).unwrap();
}

/// Every message the file sink wrote, in order.
fn delivered(out: &Path) -> Vec<serde_json::Value> {
    let Ok(index) = fs::read_to_string(out.join("requests.jsonl")) else {
        return Vec::new();
    };
    let mut messages = Vec::new();
    for line in index.lines() {
        let req: serde_json::Value = serde_json::from_str(line).unwrap();
        let body = fs::read(out.join(req["body_file"].as_str().unwrap())).unwrap();
        let array: Vec<serde_json::Value> =
            serde_json::from_slice(&zstd::decode_all(&body[..]).unwrap()).unwrap();
        messages.extend(array);
    }
    messages
}

/// Runs the pipeline configured by `vars` (plus the directories) until `done` holds for the
/// delivered messages and the counters (a generous deadline, never asserted on), then stops.
fn run(
    dir: &Path,
    vars: &[(&str, &str)],
    done: impl Fn(&[serde_json::Value], &LogsStats) -> bool,
) -> (Vec<serde_json::Value>, LogsStats) {
    let (pods, run, out) = (dir.join("pods"), dir.join("run"), dir.join("out"));
    let mut all: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.push(("DOGPIPE_POD_LOGS_DIR".into(), pods.display().to_string()));
    all.push(("DD_LOGS_CONFIG_RUN_PATH".into(), run.display().to_string()));
    all.push(("DD_LOGS_ENABLED".into(), "true".into()));
    let config = LogsConfig::from_settings(&Settings::new(all, None).unwrap())
        .unwrap()
        .with_scan_period(Duration::from_millis(50))
        .with_batch(BatchConfig::default().with_wait(Duration::from_millis(50)));
    let handle = LogsPipeline::start(config, Box::new(FileSink::create(&out).unwrap()), "node-1");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(&delivered(&out), &handle.stats()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = handle.stop();
    (delivered(&out), stats)
}

fn messages(delivered: &[serde_json::Value]) -> Vec<&str> {
    delivered
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect()
}

#[test]
fn an_excluded_namespace_is_not_shipped_and_an_image_rule_changes_nothing() {
    let dir = temp("exclude");
    let pods = dir.join("pods");
    write_file(&pods, "skip_web-1_u1/app/0.log", &["from skip"]);
    write_file(
        &pods,
        "keep_web-2_u2/app/0.log",
        &["from keep 1", "from keep 2"],
    );
    // `image:` cannot match file-discovered containers: it neither includes `skip` back nor
    // excludes `keep`.
    let (got, stats) = run(
        &dir,
        &[
            ("DD_LOGS_CONFIG_CONTAINER_COLLECT_ALL", "true"),
            ("DD_CONTAINER_EXCLUDE", "kube_namespace:^skip$ image:.*"),
            ("DD_CONTAINER_INCLUDE", "image:.*"),
            ("DD_CONTAINER_EXCLUDE_LOGS", "pod:web-2"),
        ],
        |m, s| m.len() >= 2 && s.files_excluded >= 1,
    );
    assert_eq!(messages(&got), ["from keep 1", "from keep 2"]);
    assert_eq!(stats.files_excluded, 1, "{stats:?}");
    assert_eq!(stats.files_opened, 1, "the excluded file is never opened");
    assert_eq!(
        stats.filter_entries_ignored, 1,
        "`pod:` is not a known prefix"
    );
    let registry = fs::read_to_string(dir.join("run/registry.json")).unwrap();
    assert!(!registry.contains("skip_web-1"), "{registry}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_collect_all_only_the_configured_container_is_shipped_with_its_config() {
    let dir = temp("configured");
    let pods = dir.join("pods");
    write_file(
        &pods,
        "shop_api-7f9c_u1/api/0.log",
        &[
            "GET /cart user=alice",
            "DEBUG noisy",
            "login password=hunter2",
            "GET /pay user=bob",
        ],
    );
    write_file(&pods, "shop_api-7f9c_u1/sidecar/0.log", &["sidecar line"]);
    write_file(&pods, "other_api-1_u2/api/0.log", &["other namespace"]);
    let config = dir.join("pods.yaml");
    fs::write(
        &config,
        r#"
- kube_namespace: shop
  pod_name: api-.*
  container_name: api
  source: java
  service: shop-api
  tags: [team:shop]
  log_processing_rules:
    - {type: exclude_at_match, name: no_debug, pattern: "^DEBUG"}
    # Sees the global rule's output: global rules run first.
    - {type: exclude_at_match, name: masked, pattern: 'password=\*\*\*'}
    - {type: mask_sequences, name: users, pattern: 'user=\w+', replace_placeholder: "user=[U]"}
# Also matches the api container, but the first matching entry wins.
- kube_namespace: shop
  container_name: api
  source: never-used
"#,
    )
    .unwrap();
    let global = r#"[{"type":"mask_sequences","name":"pw","pattern":"password=\\S+","replace_placeholder":"password=***"}]"#;
    let (got, stats) = run(
        &dir,
        &[
            ("DOGPIPE_LOGS_CONFIG_FILE", config.to_str().unwrap()),
            ("DD_LOGS_CONFIG_PROCESSING_RULES", global),
        ],
        |m, s| m.len() >= 2 && s.files_not_configured >= 2,
    );
    assert_eq!(messages(&got), ["GET /cart user=[U]", "GET /pay user=[U]"]);
    for m in &got {
        assert_eq!(m["ddsource"], "java");
        assert_eq!(m["service"], "shop-api");
        let tags = m["ddtags"].as_str().unwrap();
        assert!(
            tags.ends_with(
                "kube_namespace:shop,pod_name:api-7f9c,kube_container_name:api,team:shop"
            ),
            "{tags}"
        );
    }
    // Neither the sidecar nor the api container of another namespace matches an entry.
    assert_eq!(stats.files_not_configured, 2, "{stats:?}");
    assert_eq!(stats.files_opened, 1, "{stats:?}");
    assert_eq!(stats.files_excluded, 0);
    fs::remove_dir_all(&dir).unwrap();
}
