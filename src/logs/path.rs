//! Metadata from a Kubernetes pod log path.

use std::io;
use std::path::Path;

/// What `/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log` tells about a file.
///
/// ```
/// let p = dogpipe::PodLogPath::parse("/var/log/pods/ns_web-1_0f3c/app/2.log").unwrap();
/// assert_eq!((p.namespace(), p.pod(), p.uid(), p.container(), p.restart()), ("ns", "web-1", "0f3c", "app", 2));
/// assert_eq!(p.tags(), [
///     "filename:2.log", "dirname:/var/log/pods/ns_web-1_0f3c/app",
///     "kube_namespace:ns", "pod_name:web-1", "kube_container_name:app",
/// ]);
/// assert_eq!((p.source(), p.service()), ("app", "app"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodLogPath<'p> {
    dirname: &'p str,
    filename: &'p str,
    namespace: &'p str,
    pod: &'p str,
    uid: &'p str,
    container: &'p str,
    restart: u32,
}

impl<'p> PodLogPath<'p> {
    /// Parses the last three components of a path in the kubelet ≥ 1.14 layout (the pods
    /// directory itself may be anywhere). `None` for any other layout.
    pub fn parse(path: &'p str) -> Option<PodLogPath<'p>> {
        let (dirname, filename) = path.rsplit_once('/')?;
        let restart = filename.strip_suffix(".log")?;
        if restart.is_empty() || !restart.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let restart = restart.parse().ok()?;
        let (pod_dir, container) = dirname.rsplit_once('/')?;
        let pod_dir = pod_dir.rsplit('/').next()?;
        // Namespaces, pod names and UIDs cannot hold `_`: exactly three parts.
        let mut parts = pod_dir.split('_');
        let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || [namespace, pod, uid, container].contains(&"") {
            return None;
        }
        Some(PodLogPath {
            dirname,
            filename,
            namespace,
            pod,
            uid,
            container,
            restart,
        })
    }

    /// The pod's namespace.
    pub fn namespace(&self) -> &'p str {
        self.namespace
    }

    /// The pod's name.
    pub fn pod(&self) -> &'p str {
        self.pod
    }

    /// The pod's UID.
    pub fn uid(&self) -> &'p str {
        self.uid
    }

    /// The container's name.
    pub fn container(&self) -> &'p str {
        self.container
    }

    /// The container's restart count (the file name).
    pub fn restart(&self) -> u32 {
        self.restart
    }

    /// The default `source` of the messages: the container name (the Agent uses the image short
    /// name, which the path does not give; explicit configuration wins over both).
    pub fn source(&self) -> &'p str {
        self.container
    }

    /// The default `service`, like [`source`](PodLogPath::source).
    pub fn service(&self) -> &'p str {
        self.container
    }

    /// The container ID of this file, from the kubelet's symlinks in `containers_dir` (normally
    /// `/var/log/containers`): the link named `<pod>_<namespace>_<container>-<id>.log` that points
    /// to this file. `Ok(None)` when there is none (the link is removed with the pod).
    ///
    /// # Errors
    ///
    /// Reading `containers_dir` failed.
    pub fn container_id_in(&self, containers_dir: &Path) -> io::Result<Option<String>> {
        let prefix = format!("{}_{}_{}-", self.pod, self.namespace, self.container);
        let this = Path::new(self.dirname).join(self.filename);
        for entry in std::fs::read_dir(containers_dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(&prefix) {
                continue;
            }
            let Some(id) = container_id_from_symlink_name(name) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue;
            };
            let target = if target.is_relative() {
                containers_dir.join(target)
            } else {
                target
            };
            if target == this {
                return Ok(Some(id.to_string()));
            }
        }
        Ok(None)
    }

    /// The tags of every message of the file: the Agent's tailer tags `filename:` and `dirname:`,
    /// then `kube_namespace:`, `pod_name:` and `kube_container_name:`.
    pub fn tags(&self) -> Vec<String> {
        vec![
            format!("filename:{}", self.filename),
            format!("dirname:{}", self.dirname),
            format!("kube_namespace:{}", self.namespace),
            format!("pod_name:{}", self.pod),
            format!("kube_container_name:{}", self.container),
        ]
    }
}

/// The container ID in the name of a `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`
/// symlink: the part after the last `-`, without extension, if it is 64 hexadecimal digits (the
/// Agent's check that a pod file belongs to the expected container).
///
/// ```
/// let id = "0123456789abcdef".repeat(4);
/// let name = format!("web-1_ns_app-{id}.log");
/// assert_eq!(dogpipe::container_id_from_symlink_name(&name), Some(id.as_str()));
/// assert_eq!(dogpipe::container_id_from_symlink_name("web-1_ns_app-xyz.log"), None);
/// ```
pub fn container_id_from_symlink_name(name: &str) -> Option<&str> {
    let name = name.rsplit('/').next()?;
    let (_, id) = name.rsplit_once('-')?;
    let id = id.split_once('.').map_or(id, |(stem, _)| stem);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_other_layouts() {
        for path in [
            "/var/log/pods/uid/app/0.log",
            "/var/log/pods/uid/app_0.log",
            "/var/log/pods/ns_p_uid/app/0.log.20240501-120000",
            "/var/log/pods/ns_p_uid/app/x.log",
            "/var/log/pods/ns_p_uid_x/app/0.log",
            "/var/log/pods/ns__uid/app/0.log",
            "0.log",
        ] {
            assert_eq!(PodLogPath::parse(path), None, "{path}");
        }
    }

    #[test]
    fn finds_the_container_id_from_the_symlink_pointing_to_the_file() {
        let root = std::env::temp_dir().join(format!("dogpipe-path-{}", std::process::id()));
        let pods = root.join("pods/ns_web-1_u1/app");
        let containers = root.join("containers");
        std::fs::create_dir_all(&pods).unwrap();
        std::fs::create_dir_all(&containers).unwrap();
        let file = pods.join("1.log");
        std::fs::write(&file, b"").unwrap();
        let (old, new) = ("a".repeat(64), "b".repeat(64));
        // The previous container's link points to 0.log; the current one to 1.log.
        let link = |id: &str, target: &std::path::Path| {
            let name = containers.join(format!("web-1_ns_app-{id}.log"));
            let _ = std::fs::remove_file(&name);
            std::os::unix::fs::symlink(target, name).unwrap();
        };
        link(&old, &pods.join("0.log"));
        link(&new, &file);
        let path = file.to_str().unwrap();
        let parsed = PodLogPath::parse(path).unwrap();
        assert_eq!(parsed.container_id_in(&containers).unwrap(), Some(new));
        let other = pods.join("2.log");
        let other = other.to_str().unwrap();
        assert_eq!(
            PodLogPath::parse(other)
                .unwrap()
                .container_id_in(&containers)
                .unwrap(),
            None
        );
        assert!(parsed.container_id_in(&root.join("missing")).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn accepts_a_relative_pods_directory() {
        let p = PodLogPath::parse("ns_p_u/c/10.log").unwrap();
        assert_eq!((p.namespace(), p.restart()), ("ns", 10));
    }
}
