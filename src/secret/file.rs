//! The file backend: room secrets as references in a YAML file.
//!
//! Owns the secrets file's format (see `docs/secrets.md`) and its atomic rewrite (a temp
//! file renamed over it, mode 0600, with the replaced file's owner and group, so a
//! `roomgate secrets set` run as root leaves the file readable by the service user it
//! belongs to). Values are `{env}`, `{file}` or `{value}` references
//! resolved at read time, so rotating an environment variable or a file needs no edit
//! here. It must never echo a value in an error: parser messages are reduced to a line
//! and column.
//!
//! ```yaml
//! rooms:
//!   acme:
//!     webhook-worker:
//!       stripe-signing-secret: {env: STRIPE_SIGNING_SECRET}
//!       github-secret:                       # during a rotation: current first
//!         - {value: new-secret}
//!         - {value: old-secret, until: 2025-06-01T00:00:00Z}
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{active_at, ActiveValue, SecretError};
use crate::config::{source, yaml, LoadContext, SecretRef};
use crate::sensitive::Secret;

const HEADER: &str = "# roomgate room secrets: rooms.<room>.<identity>.<id> = {env|file|value}\n\
                      # or a list (current first; older values with `until: RFC3339`).\n\
                      # Written by `roomgate secrets`; keep this file mode 0600.\n";

/// The whole file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SecretsFile {
    #[serde(default)]
    rooms: BTreeMap<String, BTreeMap<String, BTreeMap<String, Entry>>>,
}

impl SecretsFile {
    /// The secrets of `identity` in `room`, created empty when absent.
    fn ids_mut(&mut self, room: &str, identity: &str) -> &mut BTreeMap<String, Entry> {
        self.rooms
            .entry(room.to_owned())
            .or_default()
            .entry(identity.to_owned())
            .or_default()
    }
}

/// One secret: a single value or, during a rotation, several (current first).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum Entry {
    One(FileValue),
    Rotation(Vec<FileValue>),
}

impl Entry {
    fn values(&self) -> &[FileValue] {
        match self {
            Entry::One(v) => std::slice::from_ref(v),
            Entry::Rotation(vs) => vs,
        }
    }
}

/// One value: exactly one of `env`, `file`, `value`, and an optional end of validity.
/// Written as a mapping only (serde would also take a list of the fields in order, so that
/// `[sk_live_…]` would name an environment variable after the secret).
#[derive(Clone, Debug, Default, Serialize)]
struct FileValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    /// RFC 3339: the value is accepted until this instant (a rotation's previous value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
}

impl<'de> Deserialize<'de> for FileValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Fields {
            env: Option<String>,
            file: Option<PathBuf>,
            value: Option<String>,
            until: Option<String>,
        }
        struct Mapping;
        impl<'de> serde::de::Visitor<'de> for Mapping {
            type Value = FileValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a mapping with one of env, file, value (and until)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<FileValue, A::Error> {
                let f = Fields::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(FileValue {
                    env: f.env,
                    file: f.file,
                    value: f.value,
                    until: f.until,
                })
            }
        }
        d.deserialize_map(Mapping)
    }
}

impl FileValue {
    /// `{value: ...}`: the file backend stores text values only.
    fn inline(value: &Secret) -> Result<FileValue, SecretError> {
        let text = value.expose_str().ok_or_else(|| {
            SecretError::Invalid("the file backend stores text values only (UTF-8)".into())
        })?;
        Ok(FileValue {
            value: Some(text.to_owned()),
            ..FileValue::default()
        })
    }

    fn reference(&self) -> Result<SecretRef, &'static str> {
        match (&self.env, &self.file, &self.value) {
            (Some(name), None, None) => Ok(SecretRef::Env(name.clone())),
            (None, Some(path), None) => Ok(SecretRef::File(path.clone())),
            (None, None, Some(v)) => Ok(SecretRef::Value(v.clone())),
            _ => Err("give exactly one of env, file, value"),
        }
    }

    fn until(&self) -> Result<Option<OffsetDateTime>, &'static str> {
        self.until
            .as_deref()
            .map(|u| OffsetDateTime::parse(u, &Rfc3339).map_err(|_| "until is not RFC 3339"))
            .transpose()
    }
}

/// Secrets in a YAML file.
#[derive(Debug)]
pub struct FileSecrets {
    path: PathBuf,
    ctx: LoadContext,
    /// Held across each read-modify-write, so two writers in this process never both
    /// see a secret absent.
    writing: std::sync::Mutex<()>,
}

fn unavailable(path: &Path, what: impl std::fmt::Display) -> SecretError {
    SecretError::Unavailable(format!("secrets file {}: {what}", path.display()))
}

/// Keep only the location of a parser message: it may quote the offending text.
fn location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => format!("not valid{}", &message[at..]),
        None => "not valid".into(),
    }
}

/// Give the new file `tmp` the owner and group of the file it will replace, if any. Only
/// root (or the owner itself) may do so; anyone else gets an error that says why rather
/// than a file the service can no longer read.
#[cfg(unix)]
fn keep_owner(tmp: &std::fs::File, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let existing = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let fresh = tmp.metadata()?;
    if (fresh.uid(), fresh.gid()) == (existing.uid(), existing.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(tmp, Some(existing.uid()), Some(existing.gid())).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot keep the owner {}:{} of the file it replaces ({e}); run as root or as that user",
                existing.uid(),
                existing.gid()
            ),
        )
    })
}

impl FileSecrets {
    pub fn new(path: PathBuf, vars: HashMap<String, String>) -> FileSecrets {
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        FileSecrets {
            path,
            ctx: LoadContext { vars, base_dir },
            writing: std::sync::Mutex::new(()),
        }
    }

    /// The secrets file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read the file; a missing file is an empty one (the first `set` creates it). Like
    /// every operator file it must be a regular file under its cap
    /// ([`source::MAX_SECRETS_FILE_BYTES`]), bounded before it is parsed.
    fn load(&self) -> Result<SecretsFile, SecretError> {
        let bytes =
            match source::read_regular_if_present(&self.path, source::MAX_SECRETS_FILE_BYTES) {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return Ok(SecretsFile::default()),
                Err(e) => return Err(SecretError::Unavailable(format!("secrets file {e}"))),
            };
        let src =
            String::from_utf8(bytes).map_err(|_| unavailable(&self.path, "not UTF-8 text"))?;
        if src.trim().is_empty() {
            return Ok(SecretsFile::default());
        }
        yaml::check_size(&src, source::MAX_SECRETS_FILE_BYTES as usize)
            .map_err(|m| unavailable(&self.path, m))?;
        yaml::from_str(&src).map_err(|m| unavailable(&self.path, location(&m)))
    }

    /// Check the file as requests will read it: readable under the rules above, well
    /// formed, and every value a single reference with a valid rotation end. References
    /// are not resolved (they are read when a request needs them). No value is quoted.
    pub fn check(&self) -> Result<(), SecretError> {
        let file = self.load()?;
        for (room, identities) in &file.rooms {
            for (identity, ids) in identities {
                for (id, entry) in ids {
                    for value in entry.values() {
                        let place = format!("rooms.{room}.{identity}.{id}");
                        value
                            .reference()
                            .map_err(|m| unavailable(&self.path, format!("{place}: {m}")))?;
                        value
                            .until()
                            .map_err(|m| unavailable(&self.path, format!("{place}: {m}")))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Write the file atomically: a 0600 temp file beside it, given the replaced file's
    /// owner and group, synced, renamed over it.
    fn store(&self, file: &SecretsFile) -> Result<(), SecretError> {
        let text = yaml::to_string(file).map_err(|_| unavailable(&self.path, "cannot render"))?;
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty());
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "secrets.yaml".into());
        let tmp_name = format!(
            ".{name}.{}.{}.tmp",
            std::process::id(),
            rand::random::<u32>()
        );
        let tmp = match dir {
            Some(d) => d.join(tmp_name),
            None => PathBuf::from(tmp_name),
        };
        let written = (|| -> std::io::Result<()> {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = options.open(&tmp)?;
            #[cfg(unix)]
            keep_owner(&f, &self.path)?;
            f.write_all(HEADER.as_bytes())?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(unavailable(&self.path, e));
        }
        Ok(())
    }

    /// The values active at `now`, in file order (current first).
    pub fn get(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<ActiveValue>, SecretError> {
        let file = self.load()?;
        let entry = file
            .rooms
            .get(room)
            .and_then(|r| r.get(identity))
            .and_then(|i| i.get(id))
            .ok_or_else(|| SecretError::not_found(room, identity, id))?;
        let place = format!("rooms.{room}.{identity}.{id}");
        let mut active = Vec::new();
        for value in entry.values() {
            let until = value
                .until()
                .map_err(|m| unavailable(&self.path, format!("{place}: {m}")))?;
            if !active_at(until, now) {
                continue;
            }
            let reference = value
                .reference()
                .map_err(|m| unavailable(&self.path, format!("{place}: {m}")))?;
            let secret = self
                .ctx
                .resolve(&reference)
                .map_err(|m| unavailable(&self.path, format!("{place}: {m}")))?;
            active.push(ActiveValue { secret, until });
        }
        Ok(active)
    }

    fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Store `{value: ...}` unless the secret exists; `true` when stored.
    pub fn set_if_absent(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        value: &Secret,
    ) -> Result<bool, SecretError> {
        let current = FileValue::inline(value)?;
        let _writing = self.write_lock();
        let mut file = self.load()?;
        let ids = file.ids_mut(room, identity);
        if ids.contains_key(id) {
            return Ok(false);
        }
        ids.insert(id.to_owned(), Entry::One(current));
        self.store(&file)?;
        Ok(true)
    }

    /// Store `{value: ...}` as the current value; with `previous_until`, keep the current
    /// one (as the reference it was written as) until then.
    pub fn set(
        &self,
        room: &str,
        identity: &str,
        id: &str,
        value: &Secret,
        previous_until: Option<OffsetDateTime>,
    ) -> Result<(), SecretError> {
        let current = FileValue::inline(value)?;
        let until = previous_until
            .map(|u| u.format(&Rfc3339))
            .transpose()
            .map_err(|_| SecretError::Invalid("the rotation window is out of range".into()))?;
        let _writing = self.write_lock();
        let mut file = self.load()?;
        let ids = file.ids_mut(room, identity);
        let previous = until.and_then(|until| {
            let old = ids.get(id)?.values().first()?.clone();
            Some(FileValue {
                until: Some(until),
                ..old
            })
        });
        let entry = match previous {
            Some(previous) => Entry::Rotation(vec![current, previous]),
            None => Entry::One(current),
        };
        ids.insert(id.to_owned(), entry);
        self.store(&file)
    }

    /// Every (identity, id) of a room.
    pub fn list(&self, room: &str) -> Result<Vec<(String, String)>, SecretError> {
        let file = self.load()?;
        Ok(file
            .rooms
            .get(room)
            .into_iter()
            .flat_map(|identities| {
                identities.iter().flat_map(|(identity, ids)| {
                    ids.keys().map(move |id| (identity.clone(), id.clone()))
                })
            })
            .collect())
    }

    /// Remove a secret; false when there was none. Empty maps are pruned.
    pub fn rm(&self, room: &str, identity: &str, id: &str) -> Result<bool, SecretError> {
        let _writing = self.write_lock();
        let mut file = self.load()?;
        let Some(identities) = file.rooms.get_mut(room) else {
            return Ok(false);
        };
        let Some(ids) = identities.get_mut(identity) else {
            return Ok(false);
        };
        if ids.remove(id).is_none() {
            return Ok(false);
        }
        if ids.is_empty() {
            identities.remove(identity);
        }
        if identities.is_empty() {
            file.rooms.remove(room);
        }
        self.store(&file)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T: OffsetDateTime = datetime!(2025-01-01 00:00 UTC);

    fn secrets(dir: &tempfile::TempDir, src: &str) -> FileSecrets {
        let path = dir.path().join("secrets.yaml");
        std::fs::write(&path, src).unwrap();
        let vars = HashMap::from([("STRIPE_SECRET".to_owned(), "from-env".to_owned())]);
        FileSecrets::new(path, vars)
    }

    fn exposed(values: Vec<ActiveValue>) -> Vec<String> {
        values
            .into_iter()
            .map(|v| v.secret.expose_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn env_file_and_value_references_are_resolved() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("gh.txt"), "from-file\n").unwrap();
        let s = secrets(
            &dir,
            "rooms:\n  acme:\n    webhook-worker:\n      stripe: {env: STRIPE_SECRET}\n      github: {file: gh.txt}\n      slack: {value: inline}\n",
        );
        assert_eq!(
            exposed(s.get("acme", "webhook-worker", "stripe", T).unwrap()),
            ["from-env"]
        );
        assert_eq!(
            exposed(s.get("acme", "webhook-worker", "github", T).unwrap()),
            ["from-file"]
        );
        assert_eq!(
            exposed(s.get("acme", "webhook-worker", "slack", T).unwrap()),
            ["inline"]
        );
        assert!(matches!(
            s.get("acme", "webhook-worker", "nope", T),
            Err(SecretError::NotFound { .. })
        ));
    }

    #[test]
    fn a_rotation_list_yields_values_until_their_end() {
        let dir = tempfile::tempdir().unwrap();
        let s = secrets(
            &dir,
            "rooms:\n  acme:\n    w:\n      k:\n        - {value: new}\n        - {value: old, until: \"2025-01-01T01:00:00Z\"}\n",
        );
        assert_eq!(exposed(s.get("acme", "w", "k", T).unwrap()), ["new", "old"]);
        let later = datetime!(2025-01-01 01:00 UTC);
        assert_eq!(exposed(s.get("acme", "w", "k", later).unwrap()), ["new"]);
    }

    /// A malformed file is unavailable, and the error never quotes the file's text.
    #[test]
    fn a_malformed_file_is_unavailable_without_echoing_values() {
        let dir = tempfile::tempdir().unwrap();
        let s = secrets(&dir, "rooms:\n  acme:\n    w:\n      k: whsec_plaintext\n");
        let err = s.get("acme", "w", "k", T).unwrap_err();
        assert!(matches!(err, SecretError::Unavailable(_)));
        assert!(!err.to_string().contains("whsec_plaintext"), "{err}");

        let s = secrets(
            &dir,
            "rooms:\n  acme:\n    w:\n      k: {env: A, value: whsec_x}\n",
        );
        let err = s.get("acme", "w", "k", T).unwrap_err();
        assert!(!err.to_string().contains("whsec_x"), "{err}");
    }

    #[test]
    fn an_unset_environment_variable_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let s = secrets(&dir, "rooms: {acme: {w: {k: {env: NOT_SET}}}}\n");
        assert!(matches!(
            s.get("acme", "w", "k", T),
            Err(SecretError::Unavailable(_))
        ));
    }

    #[test]
    fn set_rewrites_the_file_with_mode_0600_and_keeps_the_previous_reference() {
        let dir = tempfile::tempdir().unwrap();
        let s = secrets(&dir, "rooms: {acme: {w: {k: {env: STRIPE_SECRET}}}}\n");
        s.set(
            "acme",
            "w",
            "k",
            &Secret::new("rotated"),
            Some(datetime!(2025-01-02 00:00 UTC)),
        )
        .unwrap();
        s.set("acme", "x", "other", &Secret::new("v"), None)
            .unwrap();
        assert_eq!(
            exposed(s.get("acme", "w", "k", T).unwrap()),
            ["rotated", "from-env"]
        );
        let text = std::fs::read_to_string(dir.path().join("secrets.yaml")).unwrap();
        assert!(text.contains("STRIPE_SECRET"));
        assert!(text.contains("until: 2025-01-02T00:00:00Z"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets.yaml"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn list_returns_ids_and_rm_prunes_empty_rooms() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileSecrets::new(dir.path().join("secrets.yaml"), HashMap::new());
        assert!(s.list("acme").unwrap().is_empty());
        s.set("acme", "w", "a", &Secret::new("1"), None).unwrap();
        s.set("acme", "w", "b", &Secret::new("2"), None).unwrap();
        s.set("acme", "v", "c", &Secret::new("3"), None).unwrap();
        assert_eq!(
            s.list("acme").unwrap(),
            [
                ("v".into(), "c".into()),
                ("w".into(), "a".into()),
                ("w".into(), "b".into())
            ]
        );
        assert!(s.rm("acme", "v", "c").unwrap());
        assert!(!s.rm("acme", "v", "c").unwrap());
        assert!(s.rm("acme", "w", "a").unwrap());
        assert!(s.rm("acme", "w", "b").unwrap());
        let text = std::fs::read_to_string(dir.path().join("secrets.yaml")).unwrap();
        assert!(!text.contains("acme"), "{text}");
    }

    #[test]
    fn a_binary_value_is_refused_by_the_file_backend() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileSecrets::new(dir.path().join("secrets.yaml"), HashMap::new());
        let err = s
            .set("acme", "w", "k", &Secret::new(vec![0xff, 0xfe]), None)
            .unwrap_err();
        assert!(matches!(err, SecretError::Invalid(_)));
    }
}
