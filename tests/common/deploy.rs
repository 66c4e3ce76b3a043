//! Reading the files under `deploy/` as their tools would, for tests/deploy.rs: YAML
//! documents as JSON values, the Dockerfile's instructions, the unit file's directives,
//! and the real validators behind `tests/py/deploy.py` (Helm's template engine and
//! linter, the Kubernetes schemas, docker-py's build context).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// Every YAML document of `text` (empty documents left out).
pub fn documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// One YAML document (a config, a values file).
pub fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("valid YAML")
}

/// The `*.yaml` files directly in `dir` (relative to the root), sorted.
pub fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// The objects `kubectl apply -f deploy/kubernetes/` would create.
pub fn manifests() -> Vec<Value> {
    yaml_files("deploy/kubernetes")
        .iter()
        .flat_map(|p| documents(&std::fs::read_to_string(p).expect("manifest")))
        .collect()
}

/// The one object of this kind.
pub fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

/// The roomgate config held by the ConfigMap: its text and its parsed value.
pub fn configmap_config(objects: &[Value]) -> (String, Value) {
    let text = object(objects, "ConfigMap")["data"]["routes.yaml"]
        .as_str()
        .expect("routes.yaml in the ConfigMap")
        .to_owned();
    let value = yaml(&text);
    (text, value)
}

/// The port number of a `host:port` listener address.
pub fn listener_port(config: &Value, listener: &str) -> u16 {
    config["listen"][listener]
        .as_str()
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("listen.{listener} has a port"))
}

/// A duration like `30s` in seconds.
pub fn seconds(value: &Value) -> u64 {
    roomgate::config::parse_duration(value.as_str().expect("a duration"))
        .expect("a valid duration")
        .as_secs()
}

/// The Python of the test venv (`scripts/test.sh` makes it).
pub fn python() -> String {
    std::env::var("ROOMGATE_TEST_PYTHON").unwrap_or_else(|_| {
        let p = root().join(".ci/.cache/venv/bin/python");
        assert!(
            p.exists(),
            "the test venv is missing: run `bash scripts/test.sh`, which installs it"
        );
        p.display().to_string()
    })
}

/// `tests/py/deploy.py ARGS`: its output, or a panic with its stderr.
fn deploy_py(args: &[&str]) -> (bool, String) {
    let out = Command::new(python())
        .arg(root().join("tests/py/deploy.py"))
        .args(args)
        .output()
        .expect("deploy.py runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// The chart rendered by Helm with these values (release `roomgate`): every object, or
/// the message of the chart's refusal.
pub fn helm_render(values: serde_json::Value) -> Result<Vec<Value>, String> {
    let chart = root().join("deploy/helm/roomgate");
    let (ok, out) = deploy_py(&["render", chart.to_str().unwrap(), &values.to_string()]);
    assert!(ok, "helm render failed to run: {out}");
    let reply: Value = serde_json::from_str(&out).expect("JSON from deploy.py render");
    if let Some(error) = reply["error"].as_str() {
        return Err(error.to_owned());
    }
    let mut objects = Vec::new();
    let templates = reply["manifests"].as_object().expect("manifests");
    for text in templates.values() {
        objects.extend(documents(text.as_str().expect("manifest text")));
    }
    Ok(objects)
}

/// Helm's linter on the chart: its error messages.
pub fn helm_lint_errors() -> Vec<String> {
    let chart = root().join("deploy/helm/roomgate");
    let (ok, out) = deploy_py(&["lint", chart.to_str().unwrap()]);
    assert!(ok, "helm lint failed to run: {out}");
    let reply: Value = serde_json::from_str(&out).expect("JSON from deploy.py lint");
    reply["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e.to_string())
        .collect()
}

/// Strict schema validation (Kubernetes 1.30) of these files: the validator's verdict
/// and its messages.
pub fn kubernetes_validate(files: &[&Path]) -> (bool, String) {
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(|p| p.to_str().expect("utf-8 path")))
        .collect();
    deploy_py(&args)
}

/// The build context docker would send for `deploy/Dockerfile`.
pub fn docker_context() -> Vec<String> {
    let (ok, out) = deploy_py(&["context", root().to_str().unwrap(), "deploy/Dockerfile"]);
    assert!(ok, "docker context failed: {out}");
    serde_json::from_str(&out).expect("JSON list of paths")
}

/// A Dockerfile instruction: keyword (upper case) and the rest of its logical line.
pub struct Instruction {
    pub keyword: String,
    pub args: String,
}

/// The Dockerfile's instructions, continuation lines joined, comments left out.
pub fn dockerfile(text: &str) -> Vec<Instruction> {
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
    }
    logical
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (keyword, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
            Instruction {
                keyword: keyword.to_ascii_uppercase(),
                args: args.trim().to_owned(),
            }
        })
        .collect()
}

/// The JSON (exec form) array at the end of an instruction's arguments.
pub fn exec_form(args: &str) -> Vec<String> {
    let start = args.find('[').expect("exec form");
    serde_json::from_str(&args[start..]).expect("a JSON array")
}

/// A unit file's directives: (section, key, value), in order, repeated keys kept.
pub fn unit_directives(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').expect("key=value");
        out.push((
            section.clone(),
            key.trim().to_owned(),
            value.trim().to_owned(),
        ));
    }
    out
}

/// The value of a directive that must appear once.
pub fn directive<'a>(directives: &'a [(String, String, String)], key: &str) -> &'a str {
    let found: Vec<&str> = directives
        .iter()
        .filter(|(_, k, _)| k == key)
        .map(|(_, _, v)| v.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{key} appears once in the unit");
    found[0]
}

/// The value after `--config` in an argument list.
pub fn config_arg(args: &[String]) -> String {
    let at = args
        .iter()
        .position(|a| a == "--config")
        .expect("--config in the arguments");
    args[at + 1].clone()
}

/// The arguments of every `keyword` instruction of deploy/Dockerfile.
pub fn instructions(keyword: &str) -> Vec<String> {
    dockerfile(&read("deploy/Dockerfile"))
        .into_iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args)
        .collect()
}

/// The probe URL of a health check command: `roomgate probe --url URL ...`.
pub fn probe_url(command: &[String]) -> String {
    assert!(command[0].ends_with("/roomgate"), "{command:?}");
    assert_eq!(command[1], "probe");
    let at = command.iter().position(|a| a == "--url").expect("--url");
    command[at + 1].clone()
}
