//! The config's JSON Schema and the reference stay true to the code (issue 21, points 1
//! and 2): the checked-in `docs/roomgate.schema.json` is what the config types generate,
//! it accepts every example config and refuses typos, every key it names and every CLI
//! command and flag appear in `docs/reference.md`, and nothing in the repository points
//! outside it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const SCHEMA_FILE: &str = "docs/roomgate.schema.json";
const REFERENCE: &str = "docs/reference.md";
const REGENERATE: &str = "cargo run --bin roomgate -- schema > docs/roomgate.schema.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn roomgate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_roomgate"))
        .args(args)
        .output()
        .expect("roomgate runs");
    assert!(
        out.status.success(),
        "roomgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn schema() -> Value {
    serde_json::from_str(&read(SCHEMA_FILE)).expect("the schema is JSON")
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&schema()).expect("the schema is a valid JSON Schema")
}

fn yaml_to_json(text: &str) -> Value {
    serde_yaml_ng::from_str(text).expect("YAML")
}

/// Every error the schema finds in `config`, as `path: message` lines.
fn schema_errors(config: &Value) -> Vec<String> {
    validator()
        .iter_errors(config)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

/// The example configs an operator starts from, each with the path to the schema its
/// `yaml-language-server` line must name.
const EXAMPLES: [(&str, &str); 3] = [
    ("routes.example.yaml", "docs/roomgate.schema.json"),
    (
        "deploy/compose/routes.yaml",
        "../../docs/roomgate.schema.json",
    ),
    (
        "deploy/compose/routes.tls.yaml",
        "../../docs/roomgate.schema.json",
    ),
];

#[test]
fn the_checked_in_schema_is_what_the_config_types_generate() {
    let generated = roomgate::config::schema::render();
    let checked_in = read(SCHEMA_FILE);
    assert!(
        generated == checked_in,
        "{SCHEMA_FILE} differs from the schema the config types generate; regenerate it with\n  {REGENERATE}"
    );
    assert_eq!(
        roomgate(&["schema"]),
        generated,
        "`roomgate schema` prints the generated schema"
    );
}

#[test]
fn every_example_config_names_the_schema_and_passes_it() {
    for (file, schema_path) in EXAMPLES {
        let text = read(file);
        let first = text.lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("# yaml-language-server: $schema={schema_path}"),
            "{file} starts with the schema line"
        );
        let resolved = root().join(file).parent().unwrap().join(schema_path);
        assert_eq!(
            std::fs::canonicalize(&resolved).expect("the schema path resolves"),
            std::fs::canonicalize(root().join(SCHEMA_FILE)).unwrap(),
            "{file}: the schema line's path is relative to the file"
        );
        let errors = schema_errors(&yaml_to_json(&text));
        assert!(errors.is_empty(), "{file}: {errors:#?}");
    }
}

#[test]
fn the_kubernetes_config_map_passes_the_schema() {
    let manifest = yaml_to_json(&read("deploy/kubernetes/configmap.yaml"));
    let config = manifest["data"]["routes.yaml"]
        .as_str()
        .expect("the ConfigMap holds routes.yaml");
    let errors = schema_errors(&yaml_to_json(config));
    assert!(errors.is_empty(), "configmap.yaml: {errors:#?}");
}

/// A change that makes a valid config invalid.
type Breakage = fn(&mut Value);

/// A config using every section, as the README shows it, passes; each typo or wrong
/// shape that `check` refuses is refused by the schema too, so an editor flags it.
#[test]
fn the_schema_refuses_typos_and_wrong_shapes() {
    let readme = read("README.md");
    let start = readme
        .find("```yaml\nversion: v1")
        .expect("the README's configuration example");
    let example = &readme[start + "```yaml\n".len()..];
    let example = &example[..example.find("```").unwrap()];
    let base = yaml_to_json(example);
    let errors = schema_errors(&base);
    assert!(errors.is_empty(), "the README's example: {errors:#?}");

    let cases: [(&str, Breakage); 7] = [
        ("an unknown top-level key", |c| {
            c["listn"] = serde_json::json!({});
        }),
        ("a misspelt limit", |c| {
            c["limits"] = serde_json::json!({"idle_timout": "60s"});
        }),
        ("a bare string where a secret reference belongs", |c| {
            c["tokens"]["keys"][0]["secret"] = "s3cret".into();
        }),
        ("a secret reference with two sources", |c| {
            c["tokens"]["keys"][0]["secret"] = serde_json::json!({"env": "A", "value": "b"});
        }),
        ("an unknown roomgate. annotation", |c| {
            c["rooms"][0]["services"][0]["ports"][0]["annotations"]
                ["roomgate.validation.tolerence"] = "10s".into();
        }),
        ("an unknown meshagent. annotation", |c| {
            c["rooms"][0]["services"][0]["ports"][0]["annotations"]
                ["meshagent.request.validation.methd"] = "github".into();
        }),
        ("a flag annotation that is not true or false", |c| {
            c["rooms"][0]["services"][0]["ports"][0]["annotations"]["roomgate.embed"] =
                "yes".into();
        }),
    ];
    for (what, break_it) in cases {
        let mut config = base.clone();
        break_it(&mut config);
        assert!(
            !schema_errors(&config).is_empty(),
            "the schema accepts {what}"
        );
    }

    // Annotations outside roomgate's namespaces belong to users.
    let mut config = base;
    config["rooms"][0]["services"][0]["ports"][0]["annotations"]["acme.team"] = "web".into();
    assert!(schema_errors(&config).is_empty());
}

/// Every property name the schema defines, walking nested objects, arrays, `$ref`s into
/// `$defs` and the branches of `oneOf`/`anyOf`.
fn schema_keys(schema: &Value) -> BTreeSet<String> {
    fn walk(
        node: &Value,
        defs: &Value,
        seen_refs: &mut BTreeSet<String>,
        keys: &mut BTreeSet<String>,
    ) {
        let Some(object) = node.as_object() else {
            return;
        };
        if let Some(Value::String(reference)) = object.get("$ref") {
            let name = reference.trim_start_matches("#/$defs/").to_string();
            if seen_refs.insert(name.clone()) {
                walk(&defs[&name], defs, seen_refs, keys);
            }
        }
        if let Some(Value::Object(properties)) = object.get("properties") {
            for (key, sub) in properties {
                keys.insert(key.clone());
                walk(sub, defs, seen_refs, keys);
            }
        }
        for combinator in ["oneOf", "anyOf", "allOf"] {
            if let Some(Value::Array(branches)) = object.get(combinator) {
                for branch in branches {
                    walk(branch, defs, seen_refs, keys);
                }
            }
        }
        for child in ["items", "additionalProperties"] {
            if let Some(sub) = object.get(child) {
                walk(sub, defs, seen_refs, keys);
            }
        }
    }
    let mut keys = BTreeSet::new();
    walk(schema, &schema["$defs"], &mut BTreeSet::new(), &mut keys);
    keys
}

#[test]
fn the_reference_names_every_key_of_the_schema() {
    let reference = read(REFERENCE);
    let keys = schema_keys(&schema());
    for expected in [
        "version",
        "max_headers",
        "cluster",
        "private_key",
        "email_domains",
        "match",
        "env",
        "roomgate.forward_authorization",
        "meshagent.request.validation.method",
    ] {
        assert!(keys.contains(expected), "the walk finds {expected}");
    }
    let missing: Vec<_> = keys
        .iter()
        .filter(|key| {
            !reference.contains(&format!("`{key}`")) && !reference.contains(&format!(".{key}`"))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{REFERENCE} does not name these config keys (as `key` or `section.key`): {missing:?}"
    );
}

/// The subcommands listed under `Commands:` in a help text, without `help`.
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The long flags listed under `Options:` in a help text, without `--help`/`--version`.
fn flags(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Options:"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches(',').to_owned())
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

#[test]
fn the_reference_names_every_command_and_flag() {
    let reference = read(REFERENCE);
    let mut pending = vec![Vec::<String>::new()];
    let mut leaves = 0;
    while let Some(path) = pending.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = roomgate(&args);
        let subcommands = commands(&help);
        if subcommands.is_empty() {
            leaves += 1;
            let command = format!("roomgate {}", path.join(" "));
            assert!(
                reference.contains(&format!("`{command}")),
                "{REFERENCE} does not name `{command}`"
            );
            for flag in flags(&help) {
                let row = reference
                    .lines()
                    .find(|l| l.starts_with(&format!("| `{command}")))
                    .unwrap_or_default();
                assert!(
                    row.contains(&flag),
                    "{REFERENCE}: the row of `{command}` does not name {flag}"
                );
            }
        }
        for sub in subcommands {
            let mut next = path.clone();
            next.push(sub);
            pending.push(next);
        }
    }
    assert!(leaves >= 13, "{leaves} commands found in --help");
}

/// Nothing in the repository points at files a clone does not have.
#[test]
fn nothing_points_outside_the_repository() {
    // The team's working notes, which live beside a checkout and never in it; spelled
    // from parts so that this test does not match itself.
    let notes = ["DESIGN", "STYLE"].map(|name| format!("{name}.md"));
    let folder = format!("../{}", "shared");
    let forbidden = [folder.as_str(), notes[0].as_str(), notes[1].as_str()];
    let mut pending = vec![root()];
    let mut files = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !matches!(
                    name.as_str(),
                    "target" | ".git" | "node_modules" | ".ci" | "corpus" | "artifacts"
                ) {
                    pending.push(path);
                }
                continue;
            }
            if !is_text_source(&path) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            files += 1;
            for needle in forbidden {
                assert!(
                    !text.contains(needle),
                    "{} mentions {needle}",
                    path.strip_prefix(root()).unwrap().display()
                );
            }
        }
    }
    assert!(files > 100, "{files} files read");
}

fn is_text_source(path: &Path) -> bool {
    // This file names the forbidden strings itself.
    if path.ends_with("tests/schema.rs") {
        return false;
    }
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some(
            "md" | "rs"
                | "yaml"
                | "yml"
                | "toml"
                | "sh"
                | "py"
                | "js"
                | "json"
                | "conf"
                | "service"
        )
    ) || path.file_name().is_some_and(|n| n == "Dockerfile")
}

/// The schema and the config types agree on the configs the fuzzer starts from: each
/// document the types accept, the schema accepts, and the other way round (cross-field
/// rules, which the schema does not describe, are left to `check`).
#[test]
fn the_schema_and_the_config_types_agree_on_the_fuzz_corpus() {
    let dir = root().join("fuzz/corpus/config");
    let (mut accepted, mut refused) = (0, 0);
    for entry in std::fs::read_dir(&dir).expect("the config corpus") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(document) = serde_yaml_ng::from_str::<Value>(&text) else {
            continue;
        };
        let typed = serde_yaml_ng::from_str::<roomgate::config::FileConfig>(&text);
        let errors = schema_errors(&document);
        assert_eq!(
            typed.is_ok(),
            errors.is_empty(),
            "{}: the types say {:?}, the schema says {errors:#?}",
            path.display(),
            typed.err().map(|e| e.to_string()),
        );
        if errors.is_empty() {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        accepted >= 3 && refused >= 1,
        "{accepted} accepted and {refused} refused corpus configs"
    );
}

/// Every relative link in the README and in `docs/` names a file of the repository, so a
/// clone has everything the manual points at.
#[test]
fn every_relative_link_in_the_manual_resolves() {
    let mut documents = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.push(path);
        }
    }
    let mut links = 0;
    for document in &documents {
        let text = std::fs::read_to_string(document).unwrap();
        for (start, _) in text.match_indices("](") {
            let rest = &text[start + 2..];
            let target = &rest[..rest.find(')').expect("a closed link")];
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            let resolved = document.parent().unwrap().join(file);
            assert!(
                resolved.exists(),
                "{} links to {target}, which is not in the repository",
                document.strip_prefix(root()).unwrap().display()
            );
            links += 1;
        }
    }
    assert!(links > 30, "{links} links checked");
}
