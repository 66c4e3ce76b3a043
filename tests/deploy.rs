//! The Kubernetes manifests and the Helm chart under `deploy/` work as shipped: they pass
//! the Kubernetes schemas, the chart renders (with Helm's own engine) the same objects as
//! the plain manifests, the ConfigMap's config passes the real `roomgate check`, and the
//! ports, probe paths, scrape target, user, image tag and grace periods they name agree
//! with the binary (started with that config) and with each other.
//! Docker, compose, systemd and `roomgate probe`: tests/deploy_host.rs.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::deploy::*;
use common::process::Proc;
use common::redis::RedisServer;
use serde_json::{json, Value};

/// Valid values for the Secret's keys (the example Secret's placeholders are refused).
const TOKEN_SECRET: &str = "deploy-test-token-secret-0123456789abcdef";
const SECRETS_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn deployment(objects: &[Value]) -> &Value {
    object(objects, "Deployment")
}

fn container(objects: &[Value]) -> &Value {
    let containers = &deployment(objects)["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers.as_array().map(Vec::len), Some(1));
    &containers[0]
}

/// The container port named `name`.
fn container_port(objects: &[Value], name: &str) -> Option<u16> {
    container(objects)["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["containerPort"].as_u64().expect("number") as u16)
}

/// The `{env: NAME}` references anywhere in a config.
fn env_references(config: &Value, out: &mut Vec<String>) {
    match config {
        Value::Object(map) => {
            if let (1, Some(Value::String(name))) = (map.len(), map.get("env")) {
                out.push(name.clone());
            }
            map.values().for_each(|v| env_references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| env_references(v, out)),
        _ => {}
    }
}

fn example_secret() -> Value {
    documents(&read("deploy/kubernetes/example/secret.yaml")).remove(0)
}

/// `roomgate check` on a config text with these environment variables.
fn check(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(common::bin())
        .args(["check", "--config"])
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .expect("roomgate check runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// Remove what only Helm adds (its bookkeeping labels) and read the ConfigMap's config
/// as a value, so that objects compare by meaning.
fn normalise(mut objects: Vec<Value>) -> Vec<Value> {
    for o in &mut objects {
        for at in ["/metadata/labels", "/spec/template/metadata/labels"] {
            if let Some(map) = o.pointer_mut(at).and_then(Value::as_object_mut) {
                map.remove("helm.sh/chart");
                map.remove("app.kubernetes.io/managed-by");
            }
        }
        if o["kind"] == "ConfigMap" {
            let text = o["data"]["routes.yaml"].as_str().unwrap().to_owned();
            o["data"]["routes.yaml"] = yaml(&text);
        }
    }
    objects.sort_by_key(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]));
    objects
}

/// Write objects to a file and validate it strictly.
fn validate_objects(objects: &[Value]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rendered.yaml");
    let text: Vec<String> = objects
        .iter()
        .map(|o| serde_yaml_ng::to_string(o).unwrap())
        .collect();
    std::fs::write(&path, text.join("---\n")).unwrap();
    kubernetes_validate(&[&path])
}

#[test]
fn kubernetes_manifests_pass_the_strict_kubernetes_schemas() {
    let mut files = yaml_files("deploy/kubernetes");
    files.extend(yaml_files("deploy/kubernetes/example"));
    let paths: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    let (ok, out) = kubernetes_validate(&paths);
    assert!(ok, "{out}");
    // The validator is strict: an unknown field is an error.
    let mut broken = manifests();
    let at = broken
        .iter()
        .position(|o| o["kind"] == "Deployment")
        .unwrap();
    broken[at]["spec"]["template"]["spec"]["securityContext"]["runAsNonRot"] = json!(true);
    assert!(!validate_objects(&broken).0, "a misspelt field is refused");
}

#[test]
fn kubernetes_manifests_hold_every_object_the_deployment_needs() {
    let objects = manifests();
    let mut kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service"
        ]
    );
    assert_eq!(example_secret()["kind"], "Secret");
}

/// The chart's default values render the plain manifests, object for object.
#[test]
fn helm_chart_renders_the_plain_manifests_by_default() {
    let rendered = helm_render(json!({})).expect("the chart renders");
    let (ok, out) = validate_objects(&rendered);
    assert!(ok, "{out}");
    let rendered = normalise(rendered);
    let plain = normalise(manifests());
    let names = |objects: &[Value]| -> Vec<String> {
        objects
            .iter()
            .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
            .collect()
    };
    assert_eq!(names(&rendered), names(&plain));
    for (r, p) in rendered.iter().zip(&plain) {
        assert_eq!(r, p, "{} {} differs", r["kind"], r["metadata"]["name"]);
    }
    assert_eq!(helm_lint_errors(), Vec::<String>::new());
}

#[test]
fn image_tag_chart_app_version_and_labels_are_the_cargo_version() {
    let version = env!("CARGO_PKG_VERSION");
    let objects = manifests();
    assert_eq!(container(&objects)["image"], format!("roomgate:{version}"));
    for o in &objects {
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/version"],
            version
        );
    }
    let chart = yaml(&read("deploy/helm/roomgate/Chart.yaml"));
    assert_eq!(chart["appVersion"], version);
    assert_eq!(chart["name"], "roomgate");
}

/// Non-root, read-only, no capabilities, no escalation, the runtime's seccomp profile:
/// on the pod and on the container, as the image's user.
#[test]
fn deployment_runs_locked_down_as_the_image_user() {
    let objects = manifests();
    let pod = &deployment(&objects)["spec"]["template"]["spec"];
    let c = container(&objects);
    for sc in [&pod["securityContext"], &c["securityContext"]] {
        assert_eq!(sc["runAsNonRoot"], true);
        assert_eq!(sc["runAsUser"], 10001);
        assert_eq!(sc["runAsGroup"], 10001);
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    }
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert!(sc["capabilities"].get("add").is_none());
    assert_eq!(pod["automountServiceAccountToken"], false);
    for key in ["cpu", "memory"] {
        assert!(
            c["resources"]["requests"][key].is_string(),
            "requests.{key}"
        );
        assert!(c["resources"]["limits"][key].is_string(), "limits.{key}");
    }
    // The image runs as the same user (deploy/Dockerfile).
    let user = dockerfile(&read("deploy/Dockerfile"))
        .into_iter()
        .rfind(|i| i.keyword == "USER")
        .expect("USER");
    assert_eq!(user.args, "10001:10001");
}

/// A rollout and a drain never go below the desired count, and a stopping pod has time
/// to leave the endpoints (preStop) and then to drain (shutdown_grace) before SIGKILL.
#[test]
fn rollout_disruption_and_termination_keep_capacity_and_drain() {
    let objects = manifests();
    let (_, config) = configmap_config(&objects);
    let spec = &deployment(&objects)["spec"];
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    assert!(spec["replicas"].as_u64().unwrap() >= 2);
    let pdb = object(&objects, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["spec"]["selector"], spec["selector"]);
    assert_grace_outlasts_the_drain(&objects);
    assert_eq!(seconds(&config["limits"]["shutdown_grace"]), 30);
    // The chart keeps the same sum with other numbers.
    let rendered =
        helm_render(json!({"preStopSleepSeconds": 20, "shutdownGraceSeconds": 90})).unwrap();
    assert_grace_outlasts_the_drain(&rendered);
}

fn assert_grace_outlasts_the_drain(objects: &[Value]) {
    let (_, config) = configmap_config(objects);
    let pod = &deployment(objects)["spec"]["template"]["spec"];
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pre_stop = container(objects)["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("a preStop sleep");
    let drain = seconds(&config["limits"]["shutdown_grace"]);
    assert!(
        pre_stop >= 5,
        "preStop sleeps long enough for the endpoints to go"
    );
    assert!(
        grace > pre_stop + drain,
        "terminationGracePeriodSeconds {grace} > preStop {pre_stop} + shutdown_grace {drain}"
    );
}

/// Every `{env: NAME}` of the ConfigMap's config is a key of the Secret, and with values
/// for those keys the real `roomgate check` accepts the config.
#[test]
fn configmap_config_passes_roomgate_check_with_the_secrets_keys() {
    let objects = manifests();
    let (text, config) = configmap_config(&objects);
    let mut names = Vec::new();
    env_references(&config, &mut names);
    names.sort();
    let secret = example_secret();
    let mut keys: Vec<String> = secret["stringData"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    assert_eq!(names, keys, "the config reads exactly the Secret's keys");
    assert_eq!(
        container(&objects)["envFrom"][0]["secretRef"]["name"],
        secret["metadata"]["name"]
    );
    let (ok, out) = check(
        &text,
        &[
            ("ROOMGATE_REDIS_URL", "redis://:pw@redis:6379/0"),
            ("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET),
            ("ROOMGATE_SECRETS_KEY", SECRETS_KEY),
        ],
    );
    assert!(ok, "{out}");
}

/// An unedited example Secret can never go live: roomgate refuses its placeholders.
#[test]
fn example_secret_placeholders_are_refused_by_roomgate_check() {
    let (text, _) = configmap_config(&manifests());
    let secret = example_secret();
    let env: Vec<(&str, &str)> = secret["stringData"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
        .collect();
    let (ok, out) = check(&text, &env);
    assert!(!ok, "placeholders accepted:\n{out}");
    assert!(out.contains("tokens.keys[0]"), "{out}");
    assert!(out.contains("secrets.key"), "{out}");
}

/// The container ports are the config's listeners, the Service and the NetworkPolicy
/// name ports that exist, and the admin port is open only to the scrapers.
#[test]
fn ports_agree_between_config_container_service_and_network_policy() {
    let objects = manifests();
    let (_, config) = configmap_config(&objects);
    assert_eq!(config["listen"]["http"], "0.0.0.0:8080");
    assert_eq!(config["listen"]["admin"], "0.0.0.0:9090");
    assert_eq!(
        container_port(&objects, "http"),
        Some(listener_port(&config, "http"))
    );
    assert_eq!(
        container_port(&objects, "admin"),
        Some(listener_port(&config, "admin"))
    );
    assert_eq!(container_port(&objects, "https"), None);
    assert!(config["listen"].get("https").is_none());

    let service = object(&objects, "Service");
    assert_eq!(
        service["spec"]["selector"],
        deployment(&objects)["spec"]["selector"]["matchLabels"]
    );
    let targets: Vec<&str> = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["targetPort"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["http"], "the admin port is not in the Service");

    let policy = &object(&objects, "NetworkPolicy")["spec"];
    assert_eq!(
        policy["podSelector"],
        deployment(&objects)["spec"]["selector"]
    );
    let rules = policy["ingress"].as_array().unwrap();
    for rule in rules {
        let ports: Vec<&str> = rule["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_str().unwrap())
            .collect();
        for port in &ports {
            assert!(
                container_port(&objects, port).is_some(),
                "{port} is a container port"
            );
        }
        if ports.contains(&"admin") {
            assert_eq!(ports, ["admin"]);
            assert_eq!(
                rule["from"],
                json!([
                    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
                    {"podSelector": {}}
                ])
            );
        } else {
            assert!(rule.get("from").is_none(), "the public port is open to all");
        }
    }
}

/// The probes and the scrape target reach the admin listener of the real binary started
/// with the ConfigMap's config (listeners moved to free loopback ports), and the config
/// is read from where the Deployment mounts it.
#[tokio::test]
async fn probes_and_scrape_reach_the_admin_listener_of_the_real_binary() {
    let objects = manifests();
    let c = container(&objects);
    let mount = &c["volumeMounts"][0];
    let args: Vec<String> = serde_json::from_value(c["args"].clone()).unwrap();
    let source = &deployment(&objects)["spec"]["template"]["spec"]["volumes"][0]["projected"]
        ["sources"][0]["configMap"];
    assert_eq!(
        config_arg(&args),
        format!(
            "{}/{}",
            mount["mountPath"].as_str().unwrap(),
            source["items"][0]["path"].as_str().unwrap()
        )
    );
    assert_eq!(source["items"][0]["key"], "routes.yaml");

    let (_, mut config) = configmap_config(&objects);
    config["listen"]["http"] = json!("127.0.0.1:0");
    config["listen"]["admin"] = json!("127.0.0.1:0");
    // The room's services on loopback: no lookup of the example's cluster names.
    config["rooms"][0]["host"] = json!("127.0.0.1");
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
    let mut proc = Proc::serve(
        &path,
        &[
            ("ROOMGATE_REDIS_URL", redis.url().as_str()),
            ("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET),
            ("ROOMGATE_SECRETS_KEY", SECRETS_KEY),
        ],
    );
    let admin: SocketAddr = proc.addr("admin").await;
    let public: SocketAddr = proc.addr("http").await;

    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["port"], "admin", "{probe} targets the admin port");
        let r = common::get(admin, "10.0.0.1:9090", get["path"].as_str().unwrap(), &[]).await;
        assert_eq!(r.status, 200, "{probe} {}", get["path"]);
    }
    let annotations = &deployment(&objects)["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(
        annotations["prometheus.io/port"],
        container_port(&objects, "admin").unwrap().to_string()
    );
    let scrape = common::get(
        admin,
        "10.0.0.1:9090",
        annotations["prometheus.io/path"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(scrape.status, 200);
    assert!(String::from_utf8_lossy(&scrape.body).contains("roomgate_open_connections"));
    // The admin paths are not served on the public listener.
    let r = common::get(public, "acme.example.com", "/metrics", &[]).await;
    assert!(!String::from_utf8_lossy(&r.body).contains("roomgate_open_connections"));
    proc.stop().await;
}

fn configmap_redis(objects: &[Value]) -> Value {
    configmap_config(objects).1["redis"].clone()
}

/// Each Redis topology renders the config's redis block of that shape, which the real
/// `roomgate check` accepts, and the chart refuses no topology or two.
#[test]
fn helm_chart_renders_each_redis_topology_and_refuses_none_or_two() {
    let url =
        helm_render(json!({"redis": {"durability": {"replicas": 1, "timeout": "500ms"}}})).unwrap();
    assert_eq!(
        configmap_redis(&url),
        json!({"url": {"env": "ROOMGATE_REDIS_URL"}, "durability": {"replicas": 1, "timeout": "500ms"}})
    );
    let nodes = json!(["redis://redis-0:6379", "redis://redis-1:6379"]);
    let cluster = helm_render(json!({"redis": {"url": null, "cluster": {
        "nodes": nodes, "password": {"env": "ROOMGATE_REDIS_PASSWORD"}}}}))
    .unwrap();
    assert_eq!(
        configmap_redis(&cluster),
        json!({"cluster": {"nodes": nodes, "password": {"env": "ROOMGATE_REDIS_PASSWORD"}}})
    );
    let sentinel = helm_render(json!({"redis": {"url": null, "sentinel": {
        "master": "roomgate", "nodes": ["redis://sentinel:26379"]}}}))
    .unwrap();
    assert_eq!(
        configmap_redis(&sentinel),
        json!({"sentinel": {"master": "roomgate", "nodes": ["redis://sentinel:26379"]}})
    );
    for objects in [&url, &cluster, &sentinel] {
        let (ok, out) = validate_objects(objects);
        assert!(ok, "{out}");
        // Each rendered config is one the binary accepts, with its topology's secrets.
        let (text, _) = configmap_config(objects);
        let (ok, out) = check(
            &text,
            &[
                ("ROOMGATE_REDIS_URL", "redis://:pw@redis:6379/0"),
                ("ROOMGATE_REDIS_PASSWORD", "redis-password"),
                ("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET),
                ("ROOMGATE_SECRETS_KEY", SECRETS_KEY),
            ],
        );
        assert!(
            ok,
            "roomgate check refused {}: {out}",
            configmap_redis(objects)
        );
    }
    let two = helm_render(json!({"redis": {"cluster": {"nodes": nodes}}})).unwrap_err();
    assert!(two.contains("exactly one"), "{two}");
    let none = helm_render(json!({"redis": {"url": null}})).unwrap_err();
    assert!(none.contains("exactly one"), "{none}");
    let no_master =
        helm_render(json!({"redis": {"url": null, "sentinel": {"nodes": ["redis://s:26379"]}}}))
            .unwrap_err();
    assert!(no_master.contains("sentinel.master"), "{no_master}");
}

/// With TLS Secrets the chart mounts each certificate where the config reads it and opens
/// the https port everywhere; without them there is no https anywhere.
#[test]
fn helm_chart_tls_secrets_mount_certificates_and_open_https() {
    let objects = helm_render(json!({"tls": {"secrets": ["acme-tls", "other-tls"], "defaultCertificate": 0}, "replicas": 3})).unwrap();
    let (ok, out) = validate_objects(&objects);
    assert!(ok, "{out}");
    let (_, config) = configmap_config(&objects);
    assert_eq!(config["listen"]["https"], "0.0.0.0:8443");
    assert_eq!(container_port(&objects, "https"), Some(8443));
    assert_eq!(config["tls"]["default_certificate"], 0);
    let c = container(&objects);
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let sources =
        &deployment(&objects)["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"];
    let mounted: Vec<String> = sources
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.get("secret"))
        .flat_map(|s| s["items"].as_array().unwrap().clone())
        .map(|i| format!("{mount}/{}", i["path"].as_str().unwrap()))
        .collect();
    let named: Vec<String> = config["tls"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            [
                p["cert"].as_str().unwrap().to_owned(),
                p["key"].as_str().unwrap().to_owned(),
            ]
        })
        .collect();
    assert_eq!(mounted, named);
    assert_eq!(named.len(), 4);
    let service = object(&objects, "Service");
    assert!(service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["port"] == 443 && p["targetPort"] == "https"));
    let policy =
        serde_json::to_string(&object(&objects, "NetworkPolicy")["spec"]["ingress"][0]).unwrap();
    assert!(policy.contains("https"), "{policy}");
    assert_eq!(deployment(&objects)["spec"]["replicas"], 3);
}

/// Lay out `routes.yaml` as the kubelet does for a ConfigMap volume: the file is a link
/// through `..data` to a timestamped directory; an update writes a new directory and
/// swaps `..data` in one rename.
fn kubelet_write(volume: &Path, generation: u32, config: &str) {
    let dir = volume.join(format!("..2026_01_01_00_00_0{generation}.000000001"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("routes.yaml"), config).unwrap();
    let tmp = volume.join("..data_tmp");
    std::os::unix::fs::symlink(dir.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, volume.join("..data")).unwrap();
    let link = volume.join("routes.yaml");
    if link.symlink_metadata().is_err() {
        std::os::unix::fs::symlink("..data/routes.yaml", &link).unwrap();
    }
}

/// What configmap.yaml promises: an applied ConfigMap change (the kubelet's atomic swap
/// of the mounted volume) is reloaded by the running binary without a restart.
#[tokio::test]
async fn a_configmap_update_is_reloaded_without_a_restart() {
    let (_, mut config) = configmap_config(&manifests());
    config["listen"]["http"] = json!("127.0.0.1:0");
    config["listen"]["admin"] = json!("127.0.0.1:0");
    let redis = RedisServer::start();
    let volume = tempfile::tempdir().unwrap();
    kubelet_write(
        volume.path(),
        1,
        &serde_yaml_ng::to_string(&config).unwrap(),
    );
    let mut proc = Proc::serve(
        &volume.path().join("routes.yaml"),
        &[
            ("ROOMGATE_REDIS_URL", redis.url().as_str()),
            ("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET),
            ("ROOMGATE_SECRETS_KEY", SECRETS_KEY),
        ],
    );
    let admin = proc.addr("admin").await;
    let before = common::process::config_hash(admin).await;
    let ports = |admin| async move {
        let r = common::get(admin, "admin", "/ports", &[]).await;
        r.json()["ports"].to_string()
    };
    assert!(!ports(admin).await.contains("5004"));

    config["rooms"][0]["services"][0]["ports"]
        .as_array_mut()
        .unwrap()
        .push(json!({"num": 5004, "published": true, "public": true}));
    kubelet_write(
        volume.path(),
        2,
        &serde_yaml_ng::to_string(&config).unwrap(),
    );
    let after = common::process::eventually("the swapped config is in service", || async {
        let hash = common::process::config_hash(admin).await;
        (hash != before).then_some(hash)
    })
    .await;
    assert_ne!(after, before);
    assert!(
        ports(admin).await.contains("5004"),
        "the new port is served"
    );
    proc.stop().await;
}
