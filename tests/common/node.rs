//! Node.js test helpers: where the pinned npm packages are, and a long-running node
//! script (the OpenID Provider) stopped when dropped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

/// `tests/js`.
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// The npm packages of `tests/js` (`ROOMGATE_TEST_NODE_MODULES` or `tests/js/node_modules`).
/// Panics, never skips, when they are missing.
pub fn node_modules(packages: &[&str]) -> PathBuf {
    let dir = std::env::var_os("ROOMGATE_TEST_NODE_MODULES")
        .map(PathBuf::from)
        .unwrap_or_else(|| js_dir().join("node_modules"));
    for p in packages {
        assert!(
            dir.join(p).join("package.json").exists(),
            "npm package {p} is missing from {}: run `bash scripts/test.sh` (or `cd tests/js && npm ci`)",
            dir.display()
        );
    }
    dir
}

/// A node script in `tests/js`.
pub fn node(script: &str, node_modules: &std::path::Path) -> Command {
    let mut c = Command::new("node");
    c.arg(js_dir().join(script))
        .current_dir(js_dir())
        .env("NODE_PATH", node_modules);
    c
}

/// A node process that printed one JSON line when ready; killed on drop.
pub struct NodeServer {
    child: Child,
    _stdin: Option<ChildStdin>,
    /// Kept open so that the process never writes to a closed pipe.
    _stdout: BufReader<std::process::ChildStdout>,
    pub ready: serde_json::Value,
}

impl NodeServer {
    pub fn spawn(mut cmd: Command) -> NodeServer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node (is Node.js installed? scripts/test.sh installs it)");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).expect("read the ready line");
        let ready = serde_json::from_str(line.trim())
            .unwrap_or_else(|_| panic!("node did not start: {line:?}"));
        NodeServer {
            child,
            _stdin: stdin,
            _stdout: reader,
            ready,
        }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
