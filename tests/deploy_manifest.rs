//! The Kubernetes manifests: well-formed, shaped like the seed's DaemonSet, and every `DD_*`
//! variable they set is one dogpipe reads.

use yaml_rust2::{Yaml, YamlLoader};

fn load(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    YamlLoader::load_from_str(&text).unwrap()
}

fn daemonset() -> Yaml {
    load("deploy/kubernetes/daemonset.yaml")
        .into_iter()
        .find(|d| d["kind"].as_str() == Some("DaemonSet"))
        .expect("a DaemonSet")
}

#[test]
fn every_variable_the_daemonset_sets_is_understood() {
    let ds = daemonset();
    let container = &ds["spec"]["template"]["spec"]["containers"][0];
    let names: Vec<String> = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "DD_API_KEY"));
    let settings =
        dogpipe::Settings::new(names.iter().map(|n| (n.clone(), "x".to_string())), None).unwrap();
    assert_eq!(settings.unknown_variables(), Vec::<&str>::new());
}

#[test]
fn the_daemonset_has_the_seed_shape() {
    let ds = daemonset();
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"].as_str(), Some("dogpipe"));
    let c = &pod["containers"][0];
    let port = &c["ports"][0];
    assert_eq!(
        (port["containerPort"].as_i64(), port["protocol"].as_str()),
        (Some(8125), Some("UDP"))
    );
    assert!(c["resources"]["limits"]["memory"].as_str().is_some());
    assert!(c["livenessProbe"].as_hash().is_some());
    let key = &c["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("DD_API_KEY"))
        .unwrap()["valueFrom"]["secretKeyRef"];
    assert!(
        key["name"].as_str().is_some(),
        "the API key comes from a Secret"
    );
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    for path in [
        "/var/log/pods",
        "/var/lib/docker/containers",
        "/opt/dogpipe/run",
    ] {
        assert!(mounts.contains(&path), "{path} mounted: {mounts:?}");
    }
    let rbac = load("deploy/kubernetes/rbac.yaml");
    let kinds: Vec<&str> = rbac.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
    );
}
