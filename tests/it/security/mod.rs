//! Attacks on strata, each with a canary outside the root it must not
//! reach: a Dockerfile, a build context, an image or a registry trying to
//! change, read or hang the host. `docs/security.md` maps the known CVE
//! classes to these tests.

mod cache;
mod copy;
mod git;
mod mount;
mod network;
mod poison;
mod reads;
mod sandbox;
mod store;
mod tiers;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A directory outside every root a test gives strata, holding a file and
/// a directory whose content, mode and times must survive the attack.
pub(crate) struct Canary {
    pub(crate) dir: tempfile::TempDir,
    before: Vec<(PathBuf, u32, i64, Vec<u8>)>,
}

impl Canary {
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("strata-canary-")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("file"), b"canary").unwrap();
        std::fs::create_dir(dir.path().join("dir")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for (name, mode) in [("file", 0o600), ("dir", 0o700), ("", 0o700)] {
            let path = dir.path().join(name);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            // A time no attack would set by chance.
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_007);
            std::fs::File::open(&path)
                .unwrap()
                .set_times(std::fs::FileTimes::new().set_modified(time))
                .unwrap();
        }
        let mut canary = Canary {
            dir,
            before: Vec::new(),
        };
        canary.before = canary.state();
        canary
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    fn state(&self) -> Vec<(PathBuf, u32, i64, Vec<u8>)> {
        let mut state = Vec::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(path) = stack.pop() {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let content = if meta.is_dir() {
                let mut names: Vec<_> = std::fs::read_dir(&path)
                    .unwrap()
                    .map(|entry| entry.unwrap().path())
                    .collect();
                names.sort();
                stack.extend(names.iter().cloned());
                names
                    .iter()
                    .map(|name| name.display().to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes()
            } else {
                std::fs::read(&path).unwrap()
            };
            state.push((path, meta.mode(), meta.mtime(), content));
        }
        state
    }

    /// Panics if anything below the canary changed: an entry, a mode, an
    /// mtime, a byte.
    pub(crate) fn untouched(&self) {
        assert_eq!(self.state(), self.before, "the canary outside was touched");
    }
}
