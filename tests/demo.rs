//! `scripts/demo.sh`, run for real on free ports: it starts the echo upstream and
//! roomgate, answers, and an interrupt (Ctrl-C: SIGINT to its process group) or a TERM to
//! the script alone leaves no process behind and every port free; busy ports are refused
//! by name before anything starts.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use common::upstream::free_ports;

/// The echo example, built once (integration tests get the binaries, not the examples),
/// with the profile and into the target directory of the roomgate binary under test.
fn echo_bin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = Path::new(common::bin()).parent().expect("profile dir");
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(name) => name,
        };
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "--example",
                "echo",
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build --example echo");
        let bin = profile_dir.join("examples/echo");
        assert!(bin.is_file(), "{}", bin.display());
        bin
    })
}

struct Ports {
    http: u16,
    admin: u16,
    web: u16,
    api: u16,
}

impl Ports {
    fn free() -> Ports {
        let [http, admin, web, api] = free_ports();
        Ports {
            http,
            admin,
            web,
            api,
        }
    }

    fn all(&self) -> [u16; 4] {
        [self.http, self.admin, self.web, self.api]
    }
}

/// The demo in a process group of its own, as a terminal's shell starts it.
fn demo(ports: &Ports) -> Child {
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh"))
        .env("DEMO_HTTP_PORT", ports.http.to_string())
        .env("DEMO_ADMIN_PORT", ports.admin.to_string())
        .env("DEMO_WEB_PORT", ports.web.to_string())
        .env("DEMO_API_PORT", ports.api.to_string())
        .env("ROOMGATE_BIN", common::bin())
        .env("ECHO_BIN", echo_bin())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start the demo")
}

/// Read the demo's stdout until it says how to stop (it is up then): the text read, and
/// the pipe, kept open while the demo runs.
fn until_up(child: &mut Child) -> (String, BufReader<std::process::ChildStdout>) {
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = out.read_line(&mut line).expect("read stdout");
        assert!(n > 0, "the demo ended before it was up:\n{text}");
        text.push_str(&line);
        if line.starts_with("To stop:") {
            return (text, out);
        }
    }
}

/// Processes whose process group is `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so read after the ')'.
        let Some((_, after)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = after.split(' ').collect();
        if fields.get(2) == Some(&pgid.to_string().as_str()) {
            found.push(stat);
        }
    }
    found
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

async fn answers(ports: &Ports) {
    let http = format!("127.0.0.1:{}", ports.http).parse().expect("addr");
    let r = common::get(http, "public.acme.localhost", "/hello", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["path"], "/hello");
    let r = common::get(http, "private.acme.localhost", "/", &[]).await;
    assert_eq!(r.error_code(), "missing_auth");
}

fn signal(target: &str, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{sig} {target}");
}

/// Ctrl-C in a terminal: SIGINT to the demo's whole process group.
#[tokio::test]
async fn an_interrupt_stops_every_process_of_the_demo_and_frees_its_ports() {
    let ports = Ports::free();
    let mut child = demo(&ports);
    let pgid = child.id();
    let (said, _stdout) = until_up(&mut child);
    assert!(said.contains(&format!("kill {pgid}")), "{said}");
    answers(&ports).await;
    assert!(group_members(pgid).len() >= 3, "script, echo, roomgate");

    signal(&format!("-{pgid}"), "INT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert_eq!(group_members(pgid), Vec::<String>::new());
    for port in ports.all() {
        assert!(port_is_free(port), "port {port} still bound");
    }
}

/// `kill <script pid>` (what the demo prints): the script stops what it started.
#[tokio::test]
async fn a_term_to_the_script_alone_stops_what_it_started() {
    let ports = Ports::free();
    let mut child = demo(&ports);
    let pgid = child.id();
    let _stdout = until_up(&mut child);
    answers(&ports).await;

    signal(&pgid.to_string(), "TERM");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert_eq!(group_members(pgid), Vec::<String>::new());
    for port in ports.all() {
        assert!(port_is_free(port), "port {port} still bound");
    }
}

/// A port in use (say, a demo left running) is named and nothing starts.
#[test]
fn busy_ports_are_refused_by_name_before_anything_starts() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut ports = Ports::free();
    ports.admin = taken.local_addr().expect("addr").port();
    let child = demo(&ports);
    let pgid = child.id();
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "port(s) {} on 127.0.0.1 already in use",
            ports.admin
        )),
        "{stderr}"
    );
    assert_eq!(group_members(pgid), Vec::<String>::new());
    for port in [ports.http, ports.web, ports.api] {
        assert!(port_is_free(port), "port {port} was bound");
    }
}
