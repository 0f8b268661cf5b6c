//! Origin detection: from a sender's PID to its container id, through `/proc/<pid>/cgroup`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a PID's container id is trusted (the Agent caches one minute).
const TTL: Duration = Duration::from_secs(60);
/// Entries kept at most; the cache is emptied when full (PIDs are reused, so it must not grow).
const MAX_ENTRIES: usize = 4096;

/// The container id in the contents of a `/proc/<pid>/cgroup` file (cgroup v1 or v2): the last
/// path segment of any line that is, or ends with, 64 hexadecimal digits, after removing a
/// `.scope` suffix and a runtime prefix (`docker-`, `cri-containerd-`, `crio-`, …).
///
/// Limitation: under a private cgroup namespace the path is `/` and no id can be found; the Agent
/// then reads `/proc/<pid>/mountinfo`, which dogpipe does not do yet.
pub(crate) fn container_id_from_cgroup(contents: &str) -> Option<&str> {
    contents.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.rsplit('/').find_map(|segment| {
            let segment = segment.strip_suffix(".scope").unwrap_or(segment);
            let id = segment.rsplit(['-', ':']).next().unwrap_or(segment);
            (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
        })
    })
}

/// A per-thread cache from PID to container id.
pub(crate) struct OriginCache {
    proc_root: PathBuf,
    entries: HashMap<i32, (Option<Arc<str>>, Instant)>,
}

impl OriginCache {
    pub(crate) fn new(proc_root: &Path) -> OriginCache {
        OriginCache {
            proc_root: proc_root.to_path_buf(),
            entries: HashMap::new(),
        }
    }

    /// The container id of `pid`, `None` when it has none or cannot be read (PID 0 means the
    /// sender is in another PID namespace).
    pub(crate) fn container_id(&mut self, pid: i32) -> Option<Arc<str>> {
        if pid <= 0 {
            return None;
        }
        let now = Instant::now();
        if let Some((id, at)) = self.entries.get(&pid) {
            if now.duration_since(*at) < TTL {
                return id.clone();
            }
        }
        let path = self.proc_root.join(pid.to_string()).join("cgroup");
        let id = std::fs::read_to_string(path)
            .ok()
            .and_then(|c| container_id_from_cgroup(&c).map(Arc::from));
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(pid, (id.clone(), now));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3e6b2a0f1c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f";

    #[test]
    fn finds_ids_in_cgroup_v1_paths() {
        let c =
            format!("12:memory:/kubepods/burstable/pod1234-5678/{ID}\n11:cpu:/kubepods/x/{ID}\n");
        assert_eq!(container_id_from_cgroup(&c), Some(ID));
        let c = format!("4:pids:/docker/{ID}\n");
        assert_eq!(container_id_from_cgroup(&c), Some(ID));
    }

    #[test]
    fn finds_ids_in_cgroup_v2_systemd_scopes() {
        let c = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(container_id_from_cgroup(&c), Some(ID));
        let c = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(container_id_from_cgroup(&c), Some(ID));
    }

    #[test]
    fn finds_nothing_outside_containers() {
        assert_eq!(
            container_id_from_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n"),
            None
        );
        assert_eq!(container_id_from_cgroup("0::/\n"), None);
        assert_eq!(container_id_from_cgroup("garbage"), None);
        assert_eq!(container_id_from_cgroup(""), None);
    }

    #[test]
    fn reads_and_caches_through_a_fake_proc_root() {
        let dir = std::env::temp_dir().join(format!("dogpipe-origin-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("42")).unwrap();
        std::fs::write(dir.join("42/cgroup"), format!("0::/docker-{ID}.scope\n")).unwrap();
        let mut cache = OriginCache::new(&dir);
        assert_eq!(cache.container_id(42).as_deref(), Some(ID));
        std::fs::remove_dir_all(&dir).unwrap();
        // Cached: still known after the file is gone.
        assert_eq!(cache.container_id(42).as_deref(), Some(ID));
        assert_eq!(cache.container_id(0), None);
        assert_eq!(cache.container_id(43), None);
    }
}
