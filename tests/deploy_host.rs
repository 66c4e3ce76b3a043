//! The Docker, compose and systemd files under `deploy/` work as shipped, and so does
//! `roomgate probe`, the image's health check: the Dockerfile's paths, user and ports
//! agree with the configs; the build context is the sources only (docker-py's matcher);
//! the compose files pass docker-compose's own validation and their configs run; the
//! unit passes `systemd-analyze verify`; and a secrets file written by root stays
//! readable by the service user.
//! The Kubernetes manifests and the Helm chart: tests/deploy.rs; `roomgate probe`:
//! tests/probe.rs.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use common::deploy::*;
use common::process::Proc;
use common::redis::RedisServer;
use serde_json::{json, Value};

const TOKEN_SECRET: &str = "deploy-test-token-secret-0123456789abcdef";
const SECRETS_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn port_of(url: &str) -> u16 {
    let uri: http::Uri = url.parse().unwrap();
    uri.port_u16().expect("an explicit port")
}

fn compose_config(files: &[&str]) -> Value {
    let mut cmd = Command::new("docker-compose");
    for f in files {
        cmd.args(["-f", f]);
    }
    let out = cmd
        .arg("config")
        .current_dir(root().join("deploy"))
        .env("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET)
        .env("ROOMGATE_SECRETS_KEY", SECRETS_KEY)
        .output()
        .expect("docker-compose runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "docker-compose config {files:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    yaml(&String::from_utf8_lossy(&out.stdout))
}

/// The image's user, its health check and its command agree with the configs it runs:
/// the health check probes the admin port of the Kubernetes and compose configs, and the
/// config path is the one the Deployment mounts and the unit reads.
#[test]
fn dockerfile_user_health_check_ports_and_config_path_agree() {
    for from in instructions("FROM") {
        let image = from.split_whitespace().next().unwrap();
        let (_, tag) = image.split_once(':').expect("a pinned tag");
        assert!(!tag.is_empty() && tag != "latest", "{image}");
    }
    assert_eq!(instructions("USER"), ["10001:10001"]);
    let run = instructions("RUN").join(" ");
    assert!(
        run.contains("--uid 10001") && run.contains("--gid 10001"),
        "{run}"
    );

    let health = instructions("HEALTHCHECK");
    assert_eq!(health.len(), 1);
    let command = exec_form(&health[0]);
    let url = probe_url(&command);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let (_, k8s) = configmap_config(&manifests());
    let compose = yaml(&read("deploy/compose/routes.yaml"));
    assert_eq!(port_of(&url), listener_port(&k8s, "admin"));
    assert_eq!(port_of(&url), listener_port(&compose, "admin"));

    let mut exposed: Vec<u16> = instructions("EXPOSE")
        .join(" ")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    exposed.sort();
    assert_eq!(exposed, [8080, 8443, 9090]);
    assert_eq!(
        listener_port(&yaml(&read("deploy/compose/routes.tls.yaml")), "https"),
        8443
    );

    let entrypoint = exec_form(&instructions("ENTRYPOINT")[0]);
    assert_eq!(entrypoint, ["/usr/local/bin/roomgate"]);
    assert_eq!(command[0], entrypoint[0]);
    let cmd = exec_form(&instructions("CMD")[0]);
    assert_eq!(cmd[0], "serve");
    let unit = unit_directives(&read("deploy/systemd/roomgate.service"));
    let exec_start: Vec<String> = directive(&unit, "ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(exec_start[0], entrypoint[0]);
    let k8s_args: Vec<String> = serde_json::from_value(
        object(&manifests(), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
            .clone(),
    )
    .unwrap();
    assert_eq!(config_arg(&cmd), "/etc/roomgate/routes.yaml");
    assert_eq!(config_arg(&exec_start), config_arg(&cmd));
    assert_eq!(config_arg(&k8s_args), config_arg(&cmd));
}

/// The build context is the sources the build needs: no target/, .git, caches or
/// node_modules (gigabytes after a test run), and a copy of it is a complete Cargo
/// package for the Dockerfile's build.
#[test]
fn docker_build_context_holds_only_the_sources_the_build_needs() {
    let context = docker_context();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "src/main.rs",
        "src/lib.rs",
        "benches/route.rs",
    ] {
        assert!(context.iter().any(|f| f == needed), "{needed} is sent");
    }
    for f in &context {
        let allowed = f.starts_with("src")
            || f.starts_with("benches/") && f.ends_with(".rs")
            || [
                "Cargo.toml",
                "Cargo.lock",
                ".dockerignore",
                "deploy/Dockerfile",
            ]
            .contains(&f.as_str());
        assert!(allowed, "{f} is in the build context");
    }
    let bytes: u64 = context
        .iter()
        .filter_map(|f| std::fs::metadata(root().join(f)).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    assert!(bytes < 8 << 20, "the context is {bytes} bytes");

    // Each COPY of the build stage names files of the context.
    let dir = tempfile::tempdir().unwrap();
    for copy in instructions("COPY")
        .iter()
        .filter(|c| !c.starts_with("--from"))
    {
        let parts: Vec<&str> = copy.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            let matched: Vec<&String> = context
                .iter()
                .filter(|f| glob_match(source, f) || f.starts_with(&format!("{source}/")))
                .collect();
            assert!(
                !matched.is_empty(),
                "COPY {source} finds files in the context"
            );
            for f in matched {
                let to = dir.path().join(f);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                if root().join(f).is_file() {
                    std::fs::copy(root().join(f), &to).unwrap();
                }
            }
        }
    }
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--offline",
            "--locked",
            "--no-deps",
            "--format-version",
            "1",
        ])
        .current_dir(dir.path())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let targets = serde_json::to_string(&metadata["packages"][0]["targets"]).unwrap();
    assert!(targets.contains("\"name\":\"roomgate\""), "{targets}");
}

/// `*` within one path segment, as a Dockerfile COPY source.
fn glob_match(pattern: &str, path: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == path,
        Some((head, tail)) => {
            path.len() >= head.len() + tail.len()
                && path.starts_with(head)
                && path.ends_with(tail)
                && !path[head.len()..path.len() - tail.len()].contains('/')
        }
    }
}

/// docker-compose validates both files; Redis and roomgate have health checks and
/// restart policies; roomgate waits for a healthy Redis, stops within a grace longer
/// than its drain, and publishes 8443 only with the TLS override.
#[test]
fn compose_files_validate_with_health_checks_restarts_and_opt_in_tls() {
    let base = compose_config(&["docker-compose.yml"]);
    let redis = &base["services"]["redis"];
    let roomgate = &base["services"]["roomgate"];
    assert_eq!(
        redis["healthcheck"]["test"],
        json!(["CMD", "redis-cli", "ping"])
    );
    for service in [redis, roomgate] {
        assert_eq!(service["restart"], "unless-stopped");
    }
    assert_eq!(
        roomgate["depends_on"]["redis"]["condition"],
        "service_healthy"
    );
    assert_eq!(
        roomgate["image"],
        format!("roomgate:{}", env!("CARGO_PKG_VERSION"))
    );
    let health: Vec<String> =
        serde_json::from_value(roomgate["healthcheck"]["test"].clone()).unwrap();
    assert_eq!(health[0], "CMD");
    let config = yaml(&read("deploy/compose/routes.yaml"));
    assert_eq!(
        port_of(&probe_url(&health[1..])),
        listener_port(&config, "admin")
    );
    assert!(seconds(&roomgate["stop_grace_period"]) > seconds(&config["limits"]["shutdown_grace"]));
    let published = |service: &Value| -> Vec<u64> {
        service["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["published"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(published(roomgate), [8080], "no 8443 without certificates");
    assert!(roomgate.get("command").is_none());

    let tls = compose_config(&["docker-compose.yml", "docker-compose.tls.yml"]);
    let roomgate = &tls["services"]["roomgate"];
    assert_eq!(published(roomgate), [8080, 8443]);
    let command: Vec<String> = serde_json::from_value(roomgate["command"].clone()).unwrap();
    let volume = roomgate["volumes"][0]["target"]
        .as_str()
        .or_else(|| roomgate["volumes"][0].as_str())
        .unwrap()
        .to_owned();
    assert!(volume.contains("/etc/roomgate"), "{volume}");
    assert_eq!(config_arg(&command), "/etc/roomgate/routes.tls.yaml");

    // The validator is not a formality: a misspelt key is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad = read("deploy/docker-compose.yml")
        .replace("restart: unless-stopped", "restrat: unless-stopped");
    std::fs::write(dir.path().join("docker-compose.yml"), bad).unwrap();
    let out = Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(dir.path())
        .env("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET)
        .env("ROOMGATE_SECRETS_KEY", SECRETS_KEY)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a misspelt key passes docker-compose"
    );
}

/// Both compose configs run: the real binary serves the plain one and, with certificates
/// in compose/certs/, the TLS one (listeners moved to free loopback ports); their rooms
/// and routes are the same.
#[tokio::test]
async fn compose_configs_run_with_and_without_tls() {
    let plain = yaml(&read("deploy/compose/routes.yaml"));
    let with_tls = yaml(&read("deploy/compose/routes.tls.yaml"));
    for key in ["redis", "tokens", "secrets", "limits", "rooms", "routes"] {
        assert_eq!(plain[key], with_tls[key], "{key}");
    }
    assert!(plain.get("tls").is_none() && plain["listen"].get("https").is_none());
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    let certs = common::tls::issue(dir.path());
    std::fs::copy(&certs.a.cert, dir.path().join("certs/tls.crt")).unwrap();
    std::fs::copy(&certs.a.key, dir.path().join("certs/tls.key")).unwrap();
    for (name, mut config, listeners) in [
        ("routes.yaml", plain, &["http", "admin"][..]),
        ("routes.tls.yaml", with_tls, &["http", "https", "admin"][..]),
    ] {
        for l in listeners {
            config["listen"][*l] = json!("127.0.0.1:0");
        }
        let path = dir.path().join(name);
        std::fs::write(&path, serde_yaml_ng::to_string(&config).unwrap()).unwrap();
        let mut proc = Proc::serve(
            &path,
            &[
                ("ROOMGATE_REDIS_URL", redis.url().as_str()),
                ("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET),
                ("ROOMGATE_SECRETS_KEY", SECRETS_KEY),
            ],
        );
        for l in listeners {
            proc.addr(l).await;
        }
        let admin = proc.addr("admin").await;
        assert_eq!(
            probe(&format!("http://{admin}/readyz"), "2s").0,
            0,
            "{name}"
        );
        proc.stop().await;
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// `systemd-analyze verify` finds nothing to say about the unit (its ExecStart pointed at
/// the built binary, which verify requires to exist), and its sandbox is tight.
#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let text = read("deploy/systemd/roomgate.service");
    let unit = unit_directives(&text);
    assert_eq!(directive(&unit, "User"), "roomgate");
    assert_eq!(directive(&unit, "Group"), "roomgate");
    assert!(unit.iter().all(|(_, k, _)| k != "DynamicUser"));
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
    ] {
        assert_eq!(directive(&unit, key), value, "{key}");
    }
    let filters: Vec<&str> = unit
        .iter()
        .filter(|(_, k, _)| k == "SystemCallFilter")
        .map(|(_, _, v)| v.as_str())
        .collect();
    assert!(filters.contains(&"@system-service"), "{filters:?}");
    let stop = directive(&unit, "TimeoutStopSec").parse::<u64>().unwrap();
    assert!(
        stop > 30,
        "TimeoutStopSec {stop} outlasts the default shutdown_grace (30s)"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("roomgate.service");
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/roomgate", common::bin()),
    )
    .unwrap();
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "verify: {said}"
    );
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exposure above 2.0:\n{report}");
    // The verifier is not a formality: a misspelt directive is reported.
    std::fs::write(
        &path,
        text.replace("ProtectHome=yes", "ProtectHom=yes")
            .replace("/usr/local/bin/roomgate", common::bin()),
    )
    .unwrap();
    let out = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ProtectHom"));
}

/// The issue's failure: under the unit's user, a secrets file that `roomgate secrets set`
/// wrote as root must stay readable. The sysusers snippet makes the user, the tmpfiles
/// snippet gives it the file, and a rewrite by root keeps that owner: the service user
/// then lists the secrets.
#[test]
fn secrets_written_by_root_stay_readable_by_the_service_user() {
    let dir = tempfile::tempdir().unwrap();
    let sysroot = dir.path();
    std::fs::set_permissions(sysroot, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(sysroot.join("etc/roomgate")).unwrap();
    let config = sysroot.join("etc/roomgate/routes.yaml");
    std::fs::write(
        &config,
        "version: v1\nlisten: {http: 127.0.0.1:0}\ntokens:\n  keys: [{kid: k, secret: {env: ROOMGATE_TOKEN_SECRET}}]\nrooms: [{name: acme, services: []}]\nroutes: []\n",
    )
    .unwrap();
    let conf = |name: &str| root().join("deploy/systemd").join(name);
    let out = run(Command::new("systemd-sysusers")
        .arg(format!("--root={}", sysroot.display()))
        .arg(conf("roomgate.sysusers.conf")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(sysroot.join("etc/passwd")).unwrap();
    let entry: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("roomgate:"))
        .expect("the roomgate user")
        .split(':')
        .collect();
    let (uid, gid): (u32, u32) = (entry[2].parse().unwrap(), entry[3].parse().unwrap());
    let out = run(Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", sysroot.display()))
        .arg("--create")
        .arg(conf("roomgate.tmpfiles.conf")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The file the config's secrets backend reads (secrets.yaml beside the config).
    let secrets = sysroot.join("etc/roomgate/secrets.yaml");
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o777)
    };
    assert_eq!(owner(&secrets), (uid, gid, 0o600));
    assert_eq!(owner(&config), (0, gid, 0o640));

    let mut set = Command::new(common::bin())
        .args([
            "secrets",
            "set",
            "--room",
            "acme",
            "--identity",
            "w",
            "--id",
            "s",
            "--config",
        ])
        .arg(&config)
        .env("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    set.stdin
        .take()
        .unwrap()
        .write_all(b"whsec_value\n")
        .unwrap();
    assert!(set.wait().unwrap().success());
    assert_eq!(
        owner(&secrets),
        (uid, gid, 0o600),
        "root's rewrite keeps the owner"
    );

    let out = run(Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
        ])
        .arg(common::bin())
        .args(["secrets", "list", "--room", "acme", "--config"])
        .arg(&config)
        .env("ROOMGATE_TOKEN_SECRET", TOKEN_SECRET));
    assert!(
        out.status.success(),
        "as the service user: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "w\ts\n");
}

/// `roomgate probe`: its exit code and what it printed on stderr.
fn probe(url: &str, timeout: &str) -> (i32, String) {
    let out = run(Command::new(common::bin()).args(["probe", "--url", url, "--timeout", timeout]));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// docs/deploying.md names every file under deploy/ (the chart's templates by their
/// directory).
#[test]
fn every_file_under_deploy_is_named_in_the_docs() {
    let docs = read("docs/deploying.md");
    let readme = read("README.md");
    assert!(readme.contains("docs/deploying.md"));
    let mut pending = vec![root().join("deploy")];
    let mut files = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            files += 1;
            let name = path.file_name().unwrap().to_str().unwrap();
            let parent = path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            assert!(
                docs.contains(name) || parent == "templates" && docs.contains("templates/"),
                "docs/deploying.md does not name {}",
                path.display()
            );
        }
    }
    assert!(files >= 20, "{files} files under deploy/");
}
