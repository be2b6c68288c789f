//! Temporary files a crash left beside their targets.
//!
//! Most of what the solver writes into the store goes through `tmp/`,
//! which is garbage whole. The files that are replaced in place (the build
//! cache's records and indexes, a kept container's record) are written
//! beside their targets as `.<name>.<pid>-<n>-<ns>.tmp` and renamed over
//! them (`atomic`): a crash between the two leaves that file. Those whose
//! writer is gone ([`crate::atomic::abandoned`]: its pid is no live
//! process, or the file was left for a day) are what `system check` lists
//! and garbage collection removes; a live writer's is left alone.
//!
//! Where: the directories whose content other modules replace in place,
//! [`CACHE`] and each directory in it, and each directory in
//! [`CONTAINERS`] (one level: nothing is written deeper), and
//! [`CACHE_MOUNTS`] itself, where a new cache mount is made as a
//! temporary directory and renamed to its name (never inside a cache
//! mount: that is a RUN's). What those files mean is their modules'
//! business; the name alone says it is a temporary file (or directory).

use std::ffi::OsString;
use std::path::PathBuf;

use nix::sys::stat::SFlag;

use super::layout::{CACHE, CACHE_MOUNTS, CONTAINERS};
use super::{Store, StoreDir, StoreError};

fn kind(dir: &StoreDir, name: &std::ffi::OsStr) -> Option<(SFlag, std::time::SystemTime)> {
    let stat = dir.stat(name)?;
    let modified = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(stat.st_mtime).unwrap_or(0),
            u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
        );
    Some((
        SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT,
        modified,
    ))
}

impl Store {
    /// The directories files are replaced in (see the module), checked as
    /// every store directory is; one that is not the store owner's real
    /// directory is skipped (nothing in it is touched).
    fn replaced_in_place(&self) -> Result<Vec<StoreDir>, StoreError> {
        let mut dirs = Vec::new();
        for (base, itself) in [(CACHE, true), (CONTAINERS, false)] {
            let Some(dir) = self.open_dir(base)? else {
                continue;
            };
            for name in dir.entries()? {
                let Some(name) = name.to_str() else { continue };
                if kind(&dir, name.as_ref()).is_some_and(|(kind, _)| kind == SFlag::S_IFDIR)
                    && let Ok(Some(inner)) = self.open_dir(&format!("{base}/{name}"))
                {
                    dirs.push(inner);
                }
            }
            if itself {
                dirs.push(dir);
            }
        }
        if let Some(dir) = self.open_dir(CACHE_MOUNTS)? {
            dirs.push(dir);
        }
        Ok(dirs)
    }

    /// The temporary files beside their targets whose writer is gone, by
    /// directory.
    fn abandoned(&self) -> Result<Vec<(StoreDir, Vec<OsString>)>, StoreError> {
        let mut found = Vec::new();
        for dir in self.replaced_in_place()? {
            let names: Vec<OsString> = dir
                .entries()?
                .into_iter()
                .filter(|name| {
                    kind(&dir, name).is_some_and(|(kind, modified)| {
                        (kind == SFlag::S_IFREG || kind == SFlag::S_IFDIR)
                            && crate::atomic::abandoned(name, modified)
                    })
                })
                .collect();
            if !names.is_empty() {
                found.push((dir, names));
            }
        }
        Ok(found)
    }

    /// Temporary files left beside their targets by writers that are gone
    /// (see the module), sorted.
    pub fn abandoned_temp_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut paths: Vec<PathBuf> = self
            .abandoned()?
            .into_iter()
            .flat_map(|(dir, names)| {
                names
                    .into_iter()
                    .map(|name| dir.path().join(name))
                    .collect::<Vec<_>>()
            })
            .collect();
        paths.sort();
        Ok(paths)
    }

    /// Remove them (through the checked directories): the bytes reclaimed.
    pub(crate) fn remove_abandoned_temp_files(&self) -> Result<u64, StoreError> {
        let mut reclaimed = 0;
        for (dir, names) in self.abandoned()? {
            for name in names {
                let size = dir.size(&name);
                dir.remove(&name)?;
                reclaimed += size;
            }
        }
        Ok(reclaimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_a_gone_writer_left_beside_its_target_is_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let me = std::process::id();
        let cache = store.path(CACHE);
        std::fs::create_dir_all(cache.join("steps")).unwrap();
        std::fs::create_dir_all(store.path(CONTAINERS).join("c1")).unwrap();
        let planted = [
            cache.join(format!(".0a.json.{gone}-0-1.tmp")),
            cache.join(format!("steps/.0b.{gone}.tmp")),
            store
                .path(CONTAINERS)
                .join(format!("c1/.container.json.{gone}-3-4.tmp")),
        ];
        let kept = [
            cache.join(format!(".0c.json.{me}-0-1.tmp")),
            cache.join("0d.json"),
            cache.join(format!("steps/0e.{gone}.tmp")),
        ];
        for path in planted.iter().chain(&kept) {
            std::fs::write(path, "x").unwrap();
        }
        // A cache mount a crash left before its rename, with a file in it;
        // a cache mount's own files are a RUN's, never looked at.
        let mounts = store.path(CACHE_MOUNTS);
        let staged = mounts.join(format!(".0f.{gone}-5-6.tmp"));
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("kept"), "x").unwrap();
        let inside = mounts.join(format!("0f/.0g.{gone}-7-8.tmp"));
        std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
        std::fs::write(&inside, "x").unwrap();
        let mut expected = planted.to_vec();
        expected.push(staged.clone());
        expected.sort();
        assert_eq!(store.abandoned_temp_files().unwrap(), expected);
        assert!(store.remove_abandoned_temp_files().unwrap() >= 3);
        assert!(!staged.exists());
        assert!(inside.exists());
        assert!(store.abandoned_temp_files().unwrap().is_empty());
        assert!(planted.iter().all(|path| !path.exists()));
        assert!(kept.iter().all(|path| path.exists()));
    }
}
