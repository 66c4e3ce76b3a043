//! Config loading and the `roomgate check` / `roomgate token mint` commands.

mod common;

use std::process::Command;

use roomgate::config::{Config, LoadContext};

fn load(yaml: &str) -> Result<Config, roomgate::config::ConfigErrors> {
    Config::from_yaml_str(yaml, &LoadContext::default())
}

#[test]
fn the_documented_example_config_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/routes.example.yaml");
    let config = Config::load(std::path::Path::new(path)).expect("routes.example.yaml is valid");
    assert_eq!(config.file.rooms[0].name, "acme");
    assert!(config.file.routes.len() >= 3);
}

const BROKEN: &str = r#"version: v1
listen: {http: 127.0.0.1:0}
tokens:
  keys:
    - {kid: a, secret: {env: MISSING_TOKEN_SECRET}}
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - num: 5002
            published: true
            annotations:
              meshagent.request.validation.method: carrier-pigeon
            endpoints:
              - path: webhooks
                annotations:
                  meshagent.request.queue: q
      - name: api
        ports:
          - {num: 5002, published: true}
          - {num: 5004, published: false}
  - name: beta
    services:
      - name: web
        colour: blue
routes:
  - {domain: a.test, room: acme, port: 5004}
  - {domain: A.test, room: acme, port: 5002}
  - {domain: b.test, room: nowhere, port: 1}
  - {domain: c.test, room: acme, port: 9999}
"#;

#[test]
fn every_error_is_reported_with_its_yaml_path() {
    // The unknown key in rooms[1] is structural: it is reported alongside no others.
    let errors = load(BROKEN).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.starts_with("rooms[1].services[0]") && e.contains("colour")),
        "{text:#?}"
    );

    // Without it, every cross-field error comes out at once.
    let fixed = BROKEN.replace("        colour: blue\n", "");
    let errors = load(&fixed).unwrap_err().0;
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        "tokens.keys[0].secret: environment variable MISSING_TOKEN_SECRET is not set",
        "rooms[0].services[0].ports[0].annotations: unknown validation method",
        "rooms[0].services[0].ports[0].endpoints[0].path: must start with /",
        "rooms[0].services[0].ports[0].endpoints[0].annotations: unknown validation method",
        "rooms[0].services[1].ports[0].num: port 5002 is already used by service \"web\"",
        "routes[0].port: port 5004 of room \"acme\" is not published",
        "routes[1].domain: duplicate domain",
        "routes[2].room: unknown room \"nowhere\"",
        "routes[3].port: room \"acme\" has no port 9999",
    ];
    for e in expect {
        assert!(
            text.iter().any(|t| t.starts_with(e)),
            "missing {e:?} in {text:#?}"
        );
    }
}

#[test]
fn queue_endpoint_without_validation_method_is_an_error() {
    let yaml = r#"version: v1
listen: {http: 127.0.0.1:0}
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - num: 1
            published: true
            public: true
            endpoints:
              - path: /hook
                annotations: {meshagent.request.queue: events}
"#;
    let text = load(yaml).unwrap_err().to_string();
    assert!(
        text.contains("rooms[0].services[0].ports[0].endpoints[0].annotations: queue \"events\" has no meshagent.request.validation.method"),
        "{text}"
    );
}

#[test]
fn unknown_keys_anywhere_are_errors() {
    let yaml = "version: v1\nlisten: {http: 127.0.0.1:0, htp: 1}\nlimitz: {}\n";
    let text = load(yaml).unwrap_err().to_string();
    assert!(text.contains("limitz: unknown field"), "{text}");
    assert!(text.contains("listen") && text.contains("htp"), "{text}");
}

#[test]
fn check_command_prints_all_errors_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, BROKEN.replace("        colour: blue\n", "")).unwrap();
    let out = Command::new(common::bin())
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("MISSING_TOKEN_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("9 error(s)"), "{stderr}");
    assert!(stderr.contains("routes[3].port"), "{stderr}");
    assert!(
        stderr.contains("rooms[0].services[1].ports[0].num"),
        "{stderr}"
    );

    let ok = Command::new(common::bin())
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/routes.example.yaml"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let out = Command::new(common::bin())
        .args(["serve", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    for sub in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["token", "mint", "--help"],
    ] {
        let out = Command::new(common::bin()).args(sub).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{sub:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{sub:?}"
        );
    }
}

#[tokio::test]
async fn minted_tokens_pass_the_proxy() {
    let up = common::upstream::Upstream::start().await;
    let yaml = format!(
        "version: v1\nlisten: {{http: 127.0.0.1:0}}\n{}rooms:\n  - name: acme\n    services:\n      - name: api\n        ports:\n          - {{num: {}, published: true}}\nroutes:\n  - {{domain: api.acme.test, room: acme, port: {}}}\n",
        common::tokens_block(),
        up.addr.port(),
        up.addr.port()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("routes.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let out = Command::new(common::bin())
        .args([
            "token",
            "mint",
            "--room",
            "acme",
            "--name",
            "robot",
            "--api",
            r#"{"queues":{"send":["q"]}}"#,
            "--ttl",
            "1h",
            "--config",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let rg = common::start(&yaml).await;
    let r = common::get(
        rg.bound.http.unwrap(),
        "api.acme.test",
        "/",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(r.status, http::StatusCode::OK);
    assert_eq!(
        r.echoed_header("x-meshagent-user").as_deref(),
        Some("robot")
    );
    assert_eq!(
        r.echoed_header("x-meshagent-api-scope").as_deref(),
        Some(r#"{"queues":{"send":["q"]}}"#)
    );

    // An unknown room, a name no header could carry, an api grant that is no object:
    // each exits 1 with no token printed.
    for (args, says) in [
        (
            ["--room", "nope", "--name", "x", "--api", "{}"],
            "unknown room",
        ),
        (
            ["--room", "acme", "--name", "bad\nname", "--api", "{}"],
            "name",
        ),
        (
            ["--room", "acme", "--name", "x", "--api", "[1]"],
            "JSON object",
        ),
    ] {
        let bad = Command::new(common::bin())
            .args(["token", "mint"])
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(1), "{args:?}");
        assert!(bad.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

/// Requests are matched in canonical form (`/%7Eb` arrives as `/~b`), so a configured path
/// that is not canonical would silently never match: it is a load error at its YAML path.
#[test]
fn route_and_endpoint_paths_must_be_written_in_canonical_form() {
    let yaml = |endpoint: &str, route: &str| {
        format!(
            r#"version: v1
listen: {{http: 127.0.0.1:0}}
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - num: 5002
            published: true
            endpoints:
              - path: {endpoint}
routes:
  - domain: a.test
    room: acme
    paths:
      - {{path: {route}, port: 5002}}
"#
        )
    };
    assert!(load(&yaml("/hooks/", "/v1/")).is_ok());
    assert!(load(&yaml("/~user", "/")).is_ok());
    let errors = load(&yaml("/%7Euser", "/v1/../v2"))
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    assert_eq!(
        errors,
        [
            "rooms[0].services[0].ports[0].endpoints[0].path: must be written in canonical form: \"/~user\"",
            "routes[0].paths[0].path: must be written in canonical form: \"/v2\"",
        ],
    );
    let errors = load(&yaml("/a%2Fb", "/")).unwrap_err().0;
    assert!(
        errors[0]
            .to_string()
            .starts_with("rooms[0].services[0].ports[0].endpoints[0].path: is not a valid path"),
        "{errors:?}"
    );
}

/// Participant emails and domains are compared in one normalised form, made once at load:
/// what the operator wrote in any case matches a user whatever the case of their email,
/// and an email that could never match is a load error, not a rule that silently admits
/// nobody.
#[test]
fn participant_emails_and_domains_are_normalised_at_load() {
    let yaml = |emails: &str| {
        format!(
            r#"version: v1
listen: {{http: 127.0.0.1:0}}
rooms:
  - name: acme
    participants:
      - {{emails: [{emails}], email_domains: [Acme.Test]}}
    services: []
"#
        )
    };
    let config = load(&yaml(" Alice@Example.TEST ")).expect("valid");
    let rule = &config.file.rooms[0].participants[0];
    assert_eq!(rule.emails, ["alice@example.test"]);
    assert_eq!(rule.email_domains, ["acme.test"]);
    let rules = &config.file.rooms[0].participants;
    for (email, admitted) in [
        ("ALICE@example.test", true),
        ("bob@ACME.test", true),
        ("bob@example.test", false),
    ] {
        assert_eq!(
            roomgate::auth::membership::participant_scope(rules, email, &[]).is_some(),
            admitted,
            "{email}"
        );
    }
    let errors = load(&yaml("\"al ice@example.test\"")).unwrap_err().0;
    assert!(
        errors[0]
            .to_string()
            .starts_with("rooms[0].participants[0].emails[0]: "),
        "{errors:?}"
    );
}

/// Issue 21: a misspelt key in roomgate's namespaces is an error at its YAML path naming
/// the closest known key; values are checked by kind; other namespaces stay free.
#[test]
fn unknown_annotation_keys_and_bad_values_are_errors_naming_the_closest_key() {
    let yaml = r#"version: v1
listen: {http: 127.0.0.1:0}
rooms:
  - name: acme
    services:
      - name: web
        ports:
          - num: 5002
            published: true
            annotations:
              meshagent.request.validation.methd: github
              example.com/team: payments
            endpoints:
              - path: /hooks
                annotations:
                  roomgate.validation.tolerence: 10s
                  roomgate.forward_authorization: "yes"
                  roomgate.path.case_insensitive: "true"
"#;
    let errors: Vec<String> = load(yaml)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect();
    let port = "rooms[0].services[0].ports[0]";
    let expect = [
        format!("{port}.annotations.meshagent.request.validation.methd: unknown annotation \"meshagent.request.validation.methd\"; the closest known key is \"meshagent.request.validation.method\""),
        format!("{port}.endpoints[0].annotations.roomgate.path.case_insensitive: roomgate.path.case_insensitive is a port annotation"),
        format!("{port}.endpoints[0].annotations.roomgate.validation.tolerence: unknown annotation \"roomgate.validation.tolerence\"; the closest known key is \"roomgate.validation.tolerance\""),
        format!("{port}.endpoints[0].annotations: roomgate.forward_authorization: \"yes\" is not \"true\" or \"false\""),
    ];
    assert_eq!(errors, expect);

    let fixed = yaml
        .replace("methd: github", "method: bearer")
        .replace("tolerence: 10s", "tolerance: 10s")
        .replace("\"yes\"", "\"true\"")
        .replace(
            "                  roomgate.path.case_insensitive: \"true\"\n",
            "",
        );
    let config = load(&fixed).expect("fixed config loads");
    assert_eq!(config.ports[0].endpoints.len(), 1);
}
