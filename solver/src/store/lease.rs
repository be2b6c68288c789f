//! Leases: what an operation in flight (a build, pull, load, import or
//! push) holds, so that garbage collection leaves it alone, as containerd
//! and BuildKit have them.
//!
//! # On disk
//!
//! One file per lease, `leases/<id>.lease` ([`layout::LEASES`]), append
//! only: a first line that says who holds it (a [`Holder`] as JSON: pid,
//! the process's start time from `/proc/PID/stat`, the boot it runs in and
//! its PID namespace, the command), then one line per thing held:
//!
//! ```text
//! blob sha256:<hex>       a blob, written or about to be read
//! snapshot sha256:<hex>   a snapshot, by diff_id
//! record sha256:<hex>     a build cache record, by key
//! image sha256:<hex>      an image record, by ID (image prune keeps it)
//! path <name>             an entry of tmp/ (a temporary blob, a staging
//!                         directory)
//! ```
//!
//! Adding to a lease appends one short line; nothing is ever rewritten.
//! The file is made whole in `tmp/` and renamed into `leases/`, so a lease
//! that is there always has its first line.
//!
//! # The protocol with garbage collection
//!
//! - An add takes `gc.lock` shared for the moment it writes its line;
//!   collecting holds it exclusively while it reads the leases and deletes
//!   ([`Store::collecting`]). So a collection sees every add made before it
//!   started, and no add lands while it runs.
//! - New content is added to the lease *before* it is made (a temporary
//!   file before it is created, a blob before it is renamed into `blobs/`,
//!   a snapshot before its rename): by the time it exists, it is held.
//! - Existing content is added first and then checked to be there (a cache
//!   hit's blob, a base image's layers): if a collection deleted it just
//!   before the add, the check says so and the caller treats it as absent.
//! - No sync is needed for the adds: a lease only protects anything while
//!   its holder runs, and after a crash its holder is dead, so the lease is
//!   stale whatever it says. The line only has to be visible to other
//!   processes before the content exists, which `write(2)` gives.
//! - A lease whose holder is gone (no such pid, or a pid reused by another
//!   process: the start time differs, or another boot) is stale: the next
//!   collection removes it, and `system check` reports it until then. A
//!   holder in another PID namespace cannot be told alive or dead from
//!   here, so its lease is kept.
//! - An operation's result is recorded first (the image record, synced),
//!   then its lease released (the file removed): what it made is held by
//!   one or the other at every moment.

use std::collections::{BTreeSet, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use std::os::unix::fs::OpenOptionsExt;

use super::{ImageRecord, LayerRecord, Store, StoreError, layout};
use crate::digest::Digest;

/// The extension of a lease file in [`layout::LEASES`].
const EXTENSION: &str = "lease";

/// Who holds a lease: enough to tell, later and from another process,
/// whether it still runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// When it started, in clock ticks after boot (`/proc/PID/stat`'s
    /// field 22): a pid reused by another process has another.
    pub start: u64,
    /// The boot it runs in (`/proc/sys/kernel/random/boot_id`).
    #[serde(default)]
    pub boot: String,
    /// Its PID namespace (`/proc/self/ns/pid`), in which `pid` means it.
    #[serde(default)]
    pub pid_namespace: String,
    /// What it does (`build`, `pull`, ...).
    pub command: String,
    /// When the lease was taken (RFC 3339).
    #[serde(default)]
    pub created: String,
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything:
    // the fields after its last `)` start at field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}

fn pid_namespace() -> String {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|link| link.display().to_string())
        .unwrap_or_default()
}

impl Holder {
    /// This process, doing `command`.
    fn current(command: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            pid,
            start: start_time(pid).unwrap_or(0),
            boot: boot_id(),
            pid_namespace: pid_namespace(),
            command: command.to_owned(),
            created: crate::time::rfc3339(crate::time::now()),
        }
    }

    /// Whether it still runs (or cannot be told dead from here: another
    /// PID namespace's).
    pub fn alive(&self) -> bool {
        if !self.pid_namespace.is_empty() && self.pid_namespace != pid_namespace() {
            return true;
        }
        if !self.boot.is_empty() && self.boot != boot_id() {
            return false;
        }
        start_time(self.pid) == Some(self.start)
    }
}

/// What live leases hold, together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Held {
    /// Blobs, by digest.
    pub blobs: BTreeSet<Digest>,
    /// Snapshots, by diff_id.
    pub snapshots: BTreeSet<Digest>,
    /// Build cache records, by key.
    pub records: BTreeSet<Digest>,
    /// Image records, by ID.
    pub images: BTreeSet<Digest>,
    /// Entries of `tmp/`, by name.
    pub paths: BTreeSet<OsString>,
}

impl Held {
    /// Add what one lease line says (lines that do not parse, such as a
    /// line cut short by a full disk, are skipped).
    fn add_line(&mut self, line: &str) {
        let Some((kind, value)) = line.split_once(' ') else {
            return;
        };
        let digest = || value.parse::<Digest>().ok();
        match kind {
            "blob" => self.blobs.extend(digest()),
            "snapshot" => self.snapshots.extend(digest()),
            "record" => self.records.extend(digest()),
            "image" => self.images.extend(digest()),
            "path" => {
                self.paths.insert(OsString::from(value));
            }
            _ => {}
        }
    }

    fn extend(&mut self, other: Held) {
        self.blobs.extend(other.blobs);
        self.snapshots.extend(other.snapshots);
        self.records.extend(other.records);
        self.images.extend(other.images);
        self.paths.extend(other.paths);
    }
}

/// One lease as found in the store.
#[derive(Debug, Clone)]
pub struct LeaseInfo {
    /// Its id (the file's name without `.lease`).
    pub id: String,
    /// Who holds it; `None` when its first line does not parse (a store
    /// damaged by hand: stale).
    pub holder: Option<Holder>,
    /// What it holds.
    pub held: Held,
}

impl LeaseInfo {
    /// Whether its holder still runs.
    pub fn alive(&self) -> bool {
        self.holder.as_ref().is_some_and(Holder::alive)
    }

    /// `LEASE (pid P, COMMAND, since T)`, for messages.
    pub fn describe(&self) -> String {
        match &self.holder {
            Some(holder) => format!(
                "{} (pid {}, {}, since {})",
                self.id, holder.pid, holder.command, holder.created
            ),
            None => format!("{} (unreadable)", self.id),
        }
    }
}

/// The state a leased store shares between its clones.
#[derive(Debug)]
pub(crate) struct Active {
    id: String,
    /// `gc.lock`, opened once: locked shared for each add.
    gc_lock: std::fs::File,
    /// Where it is, for messages.
    gc_lock_path: std::path::PathBuf,
    /// Told when that lock keeps an add waiting.
    waits: super::lock::LockWaits,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: std::fs::File,
    /// Lines written already (an add of the same thing writes nothing).
    written: HashSet<String>,
    released: bool,
}

impl Active {
    /// Append `kind value` unless it is there, under `gc.lock` shared.
    fn add(&self, kind: &str, value: &str) -> Result<(), StoreError> {
        let line = format!("{kind} {value}\n");
        let mut state = self.state.lock().expect("lease lock");
        if state.released || state.written.contains(&line) {
            return Ok(());
        }
        let path = Path::new(layout::LEASES).join(format!("{}.{EXTENSION}", self.id));
        self.waits.lock_file(
            &self.gc_lock,
            &self.gc_lock_path,
            super::lock::Lock::Gc,
            false,
        )?;
        crate::fault::point(crate::fault::Kind::Write, &path);
        let written = state.file.write_all(line.as_bytes());
        let _ = self.gc_lock.unlock();
        written.map_err(StoreError::io("add to the lease", &path))?;
        state.written.insert(line);
        Ok(())
    }
}

/// A lease on the store's content, taken with [`Store::lease`]: whatever
/// is added to it stays until it is released (explicitly, or when
/// dropped), whatever prunes run meanwhile. The store it gives
/// ([`Lease::store`]) adds what it writes (temporary files, staging
/// directories, blobs) by itself.
#[derive(Debug)]
pub struct Lease {
    store: Store,
    /// Whether this guard took the lease (rather than sharing one the
    /// store had already): only then does it release it.
    owner: bool,
}

impl Store {
    /// Take a lease for `command` (`build`, `pull`, ...): the lease file
    /// is in the store before this returns. On a store that is leased
    /// already, the lease is that one, shared: an operation inside another
    /// (the pulls of a build) holds what it uses until the outer one ends.
    ///
    /// A store another user owns that has no `leases/` (made by an older
    /// strata) cannot be given one: the lease is then inert and writers
    /// fall back to holding `gc.lock` shared ([`Store::writing`]).
    pub fn lease(&self, command: &str) -> Result<Lease, StoreError> {
        if self.lease.is_some() {
            return Ok(Lease {
                store: self.clone(),
                owner: false,
            });
        }
        let Some(leases) = self.open_dir(layout::LEASES)? else {
            return Ok(Lease {
                store: self.clone(),
                owner: false,
            });
        };
        let lock_path = self.path(layout::GC_LOCK);
        let gc_lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&lock_path)
            .map_err(StoreError::io("open the store lock", &lock_path))?;
        let id = crate::atomic::unique_name();
        let mut header = serde_json::to_vec(&Holder::current(command)).expect("holders serialize");
        header.push(b'\n');
        let tmp = self.layout_dir(layout::TMP)?;
        // Shared while it is made: no collection runs between its file
        // appearing in tmp/ and its rename into leases/.
        self.lock_waits
            .lock_file(&gc_lock, &lock_path, super::lock::Lock::Gc, false)?;
        let made = (|| {
            let mut file = tmp.create_new(&id)?;
            file.write_all(&header)
                .map_err(StoreError::io("write the lease", &tmp.path().join(&id)))?;
            tmp.rename_into(
                OsStr::new(&id),
                &leases,
                OsStr::new(&format!("{id}.{EXTENSION}")),
                "take a lease",
            )?;
            Ok::<_, StoreError>(file)
        })();
        let _ = gc_lock.unlock();
        let file = match made {
            Ok(file) => file,
            Err(error) => {
                let _ = tmp.remove(OsStr::new(&id));
                return Err(error);
            }
        };
        let mut store = self.clone();
        store.lease = Some(Arc::new(Active {
            id,
            waits: self.lock_waits.clone(),
            gc_lock_path: lock_path,
            gc_lock,
            state: Mutex::new(State {
                file,
                written: HashSet::new(),
                released: false,
            }),
        }));
        Ok(Lease { store, owner: true })
    }

    /// The id of the lease this store adds to, if any.
    pub fn lease_id(&self) -> Option<&str> {
        self.lease.as_deref().map(|active| active.id.as_str())
    }

    fn add_to_lease(&self, kind: &str, value: &str) -> Result<(), StoreError> {
        match &self.lease {
            Some(active) => active.add(kind, value),
            None => Ok(()),
        }
    }

    /// On a leased store, hold blob `digest` (see [`Lease`]); on another,
    /// nothing.
    pub fn hold_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        self.add_to_lease("blob", &digest.to_string())
    }

    /// On a leased store, hold the snapshot of the layer with `diff_id`.
    pub fn hold_snapshot(&self, diff_id: &Digest) -> Result<(), StoreError> {
        self.add_to_lease("snapshot", &diff_id.to_string())
    }

    /// On a leased store, hold the build cache record of `key`.
    pub fn hold_record(&self, key: &Digest) -> Result<(), StoreError> {
        self.add_to_lease("record", &key.to_string())
    }

    /// On a leased store, hold the entry `name` of `tmp/`.
    pub(crate) fn hold_temp(&self, name: &str) -> Result<(), StoreError> {
        self.add_to_lease("path", name)
    }

    /// On a leased store, hold `path`, an entry of the store's `tmp/` (a
    /// temporary file or staging directory made some other way than
    /// through the store).
    pub fn hold_path(&self, path: &Path) -> Result<(), StoreError> {
        let name = path
            .file_name()
            .and_then(OsStr::to_str)
            .filter(|_| path.parent() == Some(self.path(layout::TMP).as_path()));
        match name {
            Some(name) => self.hold_temp(name),
            None => Err(crate::error::PathError {
                operation: "hold (not an entry of the store's tmp/)",
                path: path.to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            }
            .into()),
        }
    }

    /// On a leased store, hold a layer: its blob and its snapshot.
    pub fn hold_layer(&self, layer: &LayerRecord) -> Result<(), StoreError> {
        self.hold_blob(&layer.digest)?;
        self.hold_snapshot(&layer.diff_id)
    }

    /// Hold an image on a leased store (its record, which `image prune`
    /// then keeps, its blobs and its layers' snapshots), then check that
    /// its blobs are all there: a missing one is an error before anything
    /// uses the image, on any store.
    pub fn hold_image(&self, image: &ImageRecord) -> Result<(), StoreError> {
        self.add_to_lease("image", &image.id.to_string())?;
        for layer in &image.layers {
            self.hold_layer(layer)?;
        }
        for digest in [&image.manifest, &image.config] {
            self.hold_blob(digest)?;
        }
        match image.blobs().find(|digest| !self.has_blob(digest)) {
            Some(missing) => Err(StoreError::MissingBlob(missing.clone())),
            None => Ok(()),
        }
    }

    /// Every lease in the store (read without a lock: a listing, for
    /// `system check`).
    pub fn leases(&self) -> Result<Vec<LeaseInfo>, StoreError> {
        let Some(dir) = self.open_dir(layout::LEASES)? else {
            return Ok(Vec::new());
        };
        let mut leases = Vec::new();
        for name in dir.entries()? {
            let Some(id) = name
                .to_str()
                .and_then(|name| name.strip_suffix(&format!(".{EXTENSION}")))
            else {
                continue;
            };
            let path = dir.path().join(&name);
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path);
            let mut text = String::new();
            match file.and_then(|mut file| std::io::Read::read_to_string(&mut file, &mut text)) {
                Ok(_) => {}
                // Released meanwhile.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                // Not UTF-8, say: unreadable, stale.
                Err(_) => {}
            }
            let mut lines = text.lines();
            let holder = lines
                .next()
                .and_then(|line| serde_json::from_str(line).ok());
            let mut held = Held::default();
            for line in lines {
                held.add_line(line);
            }
            leases.push(LeaseInfo {
                id: id.to_owned(),
                holder,
                held,
            });
        }
        Ok(leases)
    }

    /// What live leases hold, for a collection: the stale leases are
    /// removed first (their ids are returned too).
    pub fn leased(
        &self,
        _collecting: &super::Collecting,
    ) -> Result<(Held, Vec<LeaseInfo>), StoreError> {
        let mut held = Held::default();
        let mut stale = Vec::new();
        let leases = self.leases()?;
        if leases.is_empty() {
            return Ok((held, stale));
        }
        let dir = self.layout_dir(layout::LEASES)?;
        for lease in leases {
            if lease.alive() {
                held.extend(lease.held);
            } else {
                dir.remove(OsStr::new(&format!("{}.{EXTENSION}", lease.id)))?;
                stale.push(lease);
            }
        }
        Ok((held, stale))
    }
}

impl Lease {
    /// The store whose writes add to this lease by themselves: use it for
    /// everything the operation does.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The lease's id (`None` for an inert lease, see [`Store::lease`]).
    pub fn id(&self) -> Option<&str> {
        self.store.lease_id()
    }

    /// Hold blob `digest`.
    pub fn hold_blob(&self, digest: &Digest) -> Result<(), StoreError> {
        self.store.hold_blob(digest)
    }

    /// Hold the snapshot of the layer with `diff_id`.
    pub fn hold_snapshot(&self, diff_id: &Digest) -> Result<(), StoreError> {
        self.store.hold_snapshot(diff_id)
    }

    /// Hold the build cache record of `key`.
    pub fn hold_record(&self, key: &Digest) -> Result<(), StoreError> {
        self.store.hold_record(key)
    }

    /// Hold `path`, an entry of the store's `tmp/`.
    pub fn hold_path(&self, path: &Path) -> Result<(), StoreError> {
        self.store.hold_path(path)
    }

    /// Hold an image (see [`Store::hold_image`]).
    pub fn hold_image(&self, image: &ImageRecord) -> Result<(), StoreError> {
        self.store.hold_image(image)
    }

    /// Release it now: what it held is garbage from now on unless
    /// something else holds it (record the result first).
    pub fn release(mut self) -> Result<(), StoreError> {
        self.release_now()
    }

    fn release_now(&mut self) -> Result<(), StoreError> {
        if !self.owner {
            return Ok(());
        }
        self.owner = false;
        let Some(active) = &self.store.lease else {
            return Ok(());
        };
        active.state.lock().expect("lease lock").released = true;
        let name = format!("{}.{EXTENSION}", active.id);
        match self.store.open_dir(layout::LEASES)? {
            Some(dir) => dir.remove(OsStr::new(&name)),
            None => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.release_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Roots;

    #[test]
    fn what_a_lease_holds_outlives_collections_until_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lease = store.lease("test").unwrap();
        let leased = lease.store();
        let digest = leased.put_bytes(b"made by the lease").unwrap();
        let staging = leased.staging_dir("copy").unwrap();
        let mut temp = leased.temp_blob().unwrap();
        temp.write_all(b"half").unwrap();
        let other = store.put_bytes(b"nobody's").unwrap();
        let file = store
            .path(layout::LEASES)
            .join(format!("{}.lease", lease.id().unwrap()));
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with('{'), "{text}");
        assert_eq!(
            text.matches(&format!("blob {digest}\n")).count(),
            1,
            "added once: {text}"
        );
        {
            let collecting = store.collecting().unwrap();
            store.collect_garbage(&collecting, &Roots::new()).unwrap();
        }
        assert!(store.has_blob(&digest));
        assert!(staging.is_dir());
        assert!(temp.path().is_file());
        assert!(!store.has_blob(&other), "what no lease holds goes");
        let report = store.check().unwrap();
        assert_eq!((report.leases, report.stale_leases.len()), (1, 0));
        drop(temp);
        drop(lease);
        assert!(!file.exists(), "released when dropped");
        let collecting = store.collecting().unwrap();
        store.collect_garbage(&collecting, &Roots::new()).unwrap();
        assert!(!store.has_blob(&digest));
        assert!(!staging.exists());
    }

    #[test]
    fn a_lease_inside_another_is_that_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let outer = store.lease("build").unwrap();
        let inner = outer.store().lease("pull").unwrap();
        assert_eq!(inner.id(), outer.id());
        inner.release().unwrap();
        assert_eq!(store.leases().unwrap().len(), 1, "the outer one holds");
        outer.release().unwrap();
        assert!(store.leases().unwrap().is_empty());
    }

    #[test]
    fn a_holder_is_alive_only_as_the_same_process() {
        let me = Holder::current("test");
        assert!(me.alive());
        let reused = Holder {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!reused.alive(), "another process with the same pid");
        let gone = Holder {
            pid: 4_194_304 + 17,
            ..me.clone()
        };
        assert!(!gone.alive());
        let elsewhere = Holder {
            pid_namespace: "pid:[1]".to_owned(),
            ..gone
        };
        assert!(elsewhere.alive(), "cannot be told dead from here");
    }
}
