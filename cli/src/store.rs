//! Where a login lives: `$XDG_CONFIG_HOME/jestha/credentials.json` (else
//! `~/.config/jestha/`), readable by the user alone (directory 0700, file
//! 0600), one login per API. Written whole to a temporary file and renamed, and
//! changed only under a lock: refresh tokens rotate, and two `jestha`
//! processes refreshing at once would present the same one twice, which the
//! server answers by revoking the whole grant.
//!
//! Beside it, `uploads.json`: the resumable uploads begun for each
//! `Idempotency-Key`, so a rerun of `jestha clip` with the same key picks up
//! its upload (resumed, or its media id when complete) instead of sending the
//! file again and publishing a different body under that key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::failure::Failure;

const FILE: &str = "credentials.json";
const LOCK: &str = "credentials.lock";
const UPLOADS: &str = "uploads.json";
const UPLOADS_LOCK: &str = "uploads.lock";
/// How long a begun upload is remembered: the server's `UPLOAD_EXPIRY_SECONDS`
/// by default, and the time an `Idempotency-Key` is kept.
pub const UPLOAD_MEMORY_SECONDS: u64 = 24 * 3600;

/// The directory for this client's files, from `XDG_CONFIG_HOME` (used only
/// when absolute, as the XDG spec says) or the home directory.
pub fn config_dir(xdg_config_home: Option<OsString>, home: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(x) = xdg_config_home.map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(x.join("jestha"));
    }
    home.map(|h| h.join(".config").join("jestha"))
}

/// One API's login: the tokens of the device grant and where to renew them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Login {
    pub client_id: String,
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Unix seconds when the access token expires.
    pub expires_at: u64,
    #[serde(default)]
    pub scope: Option<String>,
    pub token_endpoint: String,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

impl Login {
    /// Expired, or about to be: renewed a minute early so a request never
    /// leaves with a token that dies on the way.
    pub fn expiring(&self, now: u64) -> bool {
        now + 60 >= self.expires_at
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    /// The API of the last login: the default when no `--api` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_api: Option<String>,
    /// The client id registered at each API, kept across logouts.
    #[serde(default)]
    pub clients: BTreeMap<String, String>,
    #[serde(default)]
    pub logins: BTreeMap<String, Login>,
}

/// A resumable upload begun for a command, and the file it was begun for:
/// found again only for the same API and the same file, unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Begun {
    pub api: String,
    /// The upload's path on the API (`/api/uploads/{id}`).
    pub location: String,
    pub file: String,
    pub size: u64,
    /// The file's modification time, Unix seconds.
    pub modified: u64,
    /// When it was begun, Unix seconds.
    pub at: u64,
}

impl Begun {
    /// Whether `self` was begun for the same API and file as `other`.
    pub fn same_file(&self, other: &Begun) -> bool {
        (&self.api, &self.file, self.size, self.modified) == (&other.api, &other.file, other.size, other.modified)
    }
}

/// The uploads begun, by the `Idempotency-Key` of their command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploads {
    #[serde(default)]
    pub uploads: BTreeMap<String, Begun>,
}

impl Uploads {
    /// Forgets the uploads the server has forgotten too.
    pub fn prune(&mut self, now: u64) {
        self.uploads.retain(|_, b| b.at + UPLOAD_MEMORY_SECONDS > now);
    }
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    /// The store in the user's config directory.
    pub fn from_env() -> Result<Store, Failure> {
        config_dir(std::env::var_os("XDG_CONFIG_HOME"), dirs::home_dir())
            .map(Store::new)
            .ok_or_else(|| Failure::new("config", "no home directory: set XDG_CONFIG_HOME"))
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// What is stored; nothing yet is an empty store.
    pub fn load(&self) -> Result<Credentials, Failure> {
        read_json(&self.path(), ": delete it and log in again")
    }

    /// Runs `change` on the stored credentials under the lock, and writes them
    /// back when it changed them (even when it fails: forgetting a dead login
    /// is a change worth keeping).
    pub fn update<T>(&self, change: impl FnOnce(&mut Credentials) -> Result<T, Failure>) -> Result<T, Failure> {
        self.locked(FILE, LOCK, |_| self.load(), change)
    }

    /// Runs `change` on the journal of uploads begun, under its own lock,
    /// forgotten uploads pruned. A damaged journal is read as empty: it only
    /// saves sending a file again.
    pub fn update_uploads<T>(&self, now: u64, change: impl FnOnce(&mut Uploads) -> Result<T, Failure>) -> Result<T, Failure> {
        self.locked(
            UPLOADS,
            UPLOADS_LOCK,
            |path| Ok(read_json::<Uploads>(path, "").unwrap_or_default()),
            |u| {
                u.prune(now);
                change(u)
            },
        )
    }

    /// `load` and `change` the file `name` under the lock file `lock`; written
    /// back (to a temporary file, renamed) only when changed.
    fn locked<D: Clone + PartialEq + Serialize, T>(
        &self,
        name: &str,
        lock: &str,
        load: impl FnOnce(&Path) -> Result<D, Failure>,
        change: impl FnOnce(&mut D) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        self.ensure_dir()?;
        let lock_path = self.dir.join(lock);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_failure(&lock_path, e))?;
        lock.lock().map_err(|e| io_failure(&lock_path, e))?;
        let path = self.dir.join(name);
        let mut data = load(&path)?;
        let before = data.clone();
        let result = change(&mut data);
        if data != before {
            self.write(name, &data)?;
        }
        drop(lock);
        result
    }

    fn ensure_dir(&self) -> Result<(), Failure> {
        fs::create_dir_all(&self.dir).map_err(|e| io_failure(&self.dir, e))?;
        restrict(&self.dir, 0o700)
    }

    fn write(&self, name: &str, data: &impl Serialize) -> Result<(), Failure> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.{}.tmp", std::process::id()));
        let body = serde_json::to_vec_pretty(data).map_err(|e| Failure::new("config", e.to_string()))?;
        let written = (|| {
            let mut f = create_private(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_failure(&path, e));
        }
        restrict(&path, 0o600)
    }
}

/// A JSON file; a missing one is the default. A damaged one fails naming it,
/// and `hint` says what to do.
fn read_json<D: DeserializeOwned + Default>(path: &Path, hint: &str) -> Result<D, Failure> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Failure::new("config", format!("{} is not readable ({e}){hint}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(D::default()),
        Err(e) => Err(io_failure(path, e)),
    }
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::new("config", format!("{}: {e}", path.display()))
}

/// A new file no other user can read, even for the moment before a chmod.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io_failure(path, e))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<(), Failure> {
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory under the system's temporary directory, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            let mut r = [0u8; 8];
            getrandom::fill(&mut r).unwrap();
            let p = std::env::temp_dir().join(format!("jestha-test-{tag}-{}", hex(&r)));
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    pub fn login(token: &str) -> Login {
        Login {
            client_id: "client".into(),
            access_token: token.into(),
            refresh_token: Some("jes_ort_r".into()),
            expires_at: 1_000,
            scope: Some("write:jes".into()),
            token_endpoint: "http://127.0.0.1:1/oauth/token".into(),
            revocation_endpoint: None,
        }
    }

    #[test]
    fn xdg_config_home_wins_when_absolute_else_the_home_config() {
        let home = Some(PathBuf::from("/home/ann"));
        assert_eq!(config_dir(Some("/xdg".into()), home.clone()), Some(PathBuf::from("/xdg/jestha")));
        assert_eq!(config_dir(None, home.clone()), Some(PathBuf::from("/home/ann/.config/jestha")));
        assert_eq!(config_dir(Some("".into()), home.clone()), Some(PathBuf::from("/home/ann/.config/jestha")));
        assert_eq!(
            config_dir(Some("relative/dir".into()), home),
            Some(PathBuf::from("/home/ann/.config/jestha")),
            "a relative XDG_CONFIG_HOME is ignored, as the spec says"
        );
        assert_eq!(config_dir(None, None), None);
    }

    #[test]
    fn nothing_stored_reads_as_an_empty_store() {
        let t = TempDir::new("empty");
        let s = Store::new(t.0.join("jestha"));
        assert_eq!(s.load().unwrap(), Credentials::default());
    }

    #[cfg(unix)]
    #[test]
    fn the_login_is_written_for_the_user_alone() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempDir::new("modes");
        let dir = t.0.join("jestha");
        let s = Store::new(dir.clone());
        s.update(|c| {
            c.logins.insert("http://127.0.0.1:8787".into(), login("jes_oat_a"));
            Ok(())
        })
        .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&s.path()), 0o600);
        assert_eq!(s.load().unwrap().logins["http://127.0.0.1:8787"].access_token, "jes_oat_a");
        // A file someone loosened is tightened again on the next write.
        fs::set_permissions(s.path(), fs::Permissions::from_mode(0o644)).unwrap();
        s.update(|c| {
            c.default_api = Some("http://127.0.0.1:8787".into());
            Ok(())
        })
        .unwrap();
        assert_eq!(mode(&s.path()), 0o600);
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(leftovers.iter().all(|n| !n.to_string_lossy().ends_with(".tmp")), "{leftovers:?}");
    }

    #[test]
    fn a_failed_change_is_still_written_and_an_unchanged_store_is_not() {
        let t = TempDir::new("update");
        let s = Store::new(t.0.join("jestha"));
        s.update(|c| {
            c.logins.insert("a".into(), login("jes_oat_a"));
            Ok(())
        })
        .unwrap();
        let err = s.update(|c| -> Result<(), Failure> {
            c.logins.remove("a");
            Err(Failure::new("invalid_grant", "gone"))
        });
        assert_eq!(err.unwrap_err().code, "invalid_grant");
        assert!(s.load().unwrap().logins.is_empty(), "the dead login is forgotten");
        let before = fs::metadata(s.path()).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        s.update(|_| Ok(())).unwrap();
        assert_eq!(fs::metadata(s.path()).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn a_damaged_file_is_a_config_error_naming_it() {
        let t = TempDir::new("damaged");
        let s = Store::new(t.0.clone());
        fs::write(s.path(), "{not json").unwrap();
        let f = s.load().unwrap_err();
        assert_eq!(f.code, "config");
        assert!(f.message.contains("credentials.json"), "{}", f.message);
    }

    fn begun(location: &str, at: u64) -> Begun {
        Begun { api: "a".into(), location: location.into(), file: "/v.mp4".into(), size: 9, modified: 1, at }
    }

    #[test]
    fn the_journal_forgets_uploads_after_a_day_and_a_damaged_one_reads_as_empty() {
        let t = TempDir::new("journal");
        let s = Store::new(t.0.join("jestha"));
        s.update_uploads(1_000, |u| {
            u.uploads.insert("old".into(), begun("/api/uploads/1", 1_000));
            u.uploads.insert("new".into(), begun("/api/uploads/2", 50_000));
            Ok(())
        })
        .unwrap();
        let left =
            s.update_uploads(1_000 + UPLOAD_MEMORY_SECONDS, |u| Ok(u.uploads.keys().cloned().collect::<Vec<_>>())).unwrap();
        assert_eq!(left, ["new"]);
        assert!(begun("x", 1).same_file(&begun("y", 2)), "the location and the time are not the file");
        assert!(!begun("x", 1).same_file(&Begun { size: 10, ..begun("x", 1) }));
        fs::write(t.0.join("jestha").join(UPLOADS), "{not json").unwrap();
        assert_eq!(s.update_uploads(0, |u| Ok(u.uploads.len())).unwrap(), 0);
        assert!(s.load().unwrap().logins.is_empty(), "the credentials are another file");
    }

    #[test]
    fn a_login_is_renewed_a_minute_before_it_expires() {
        let l = login("t");
        assert!(!l.expiring(939));
        assert!(l.expiring(940));
        assert!(l.expiring(2_000));
    }
}
