//! `USER` resolution against the image's own /etc/passwd and /etc/group,
//! as docker does it (moby's `user.GetExecUser`): a name or a uid, with an
//! optional group name or gid.

use std::path::Path;

use crate::error::PathError;

/// Why a user or group cannot be resolved in an image.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The image's root cannot be opened.
    #[error(transparent)]
    Root(#[from] PathError),
    /// Its /etc/passwd or /etc/group exists but cannot be read.
    #[error("cannot read the image's /{file}")]
    AccountFile {
        /// `etc/passwd` or `etc/group`.
        file: &'static str,
        /// Why (what the path names is in `file` already).
        #[source]
        source: std::io::Error,
    },
    /// A user name that /etc/passwd does not have.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// A group name that /etc/group does not have (and is no number).
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
}

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Supplementary groups.
    pub(crate) groups: Vec<u32>,
    /// Home directory, for `HOME` when the environment has none.
    pub(crate) home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read_lines(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').map(str::to_owned).collect())
        .collect()
}

fn passwd(text: &str) -> Vec<PasswdEntry> {
    read_lines(text)
        .into_iter()
        .filter_map(|fields| {
            Some(PasswdEntry {
                name: fields.first()?.clone(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).cloned().unwrap_or_default(),
            })
        })
        .collect()
}

fn groups(text: &str) -> Vec<GroupEntry> {
    read_lines(text)
        .into_iter()
        .filter_map(|fields| {
            Some(GroupEntry {
                name: fields.first()?.clone(),
                gid: fields.get(2)?.parse().ok()?,
                members: fields
                    .get(3)
                    .map(|members| {
                        members
                            .split(',')
                            .filter(|member| !member.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolve `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) in the
/// filesystem at `root`. A missing file is an empty database, as for docker.
pub(crate) fn resolve(root: &Path, spec: &str) -> Result<ExecUser, UserError> {
    let root = crate::confined::Root::open(root)?;
    let read =
        |file: &'static str| read_account_file(|path, limit| root.read_file(path, limit), file);
    resolve_in(&read("etc/passwd")?, &read("etc/group")?, spec)
}

/// The most of /etc/passwd or /etc/group read: an image's own account
/// files are untrusted (`/etc/passwd -> /dev/zero` is a classic).
pub(crate) const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// Read `etc/passwd` or `etc/group` (`file`) with `read`, which resolves
/// it inside the image and reads a regular file of at most the limit: the
/// text, empty when it is missing (docker's rule), an error naming the
/// file otherwise.
pub(crate) fn read_account_file(
    read: impl Fn(&Path, u64) -> Result<Option<Vec<u8>>, PathError>,
    file: &'static str,
) -> Result<String, UserError> {
    match read(Path::new(file), MAX_ACCOUNT_FILE) {
        Ok(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Ok(None) => Ok(String::new()),
        Err(error) => Err(UserError::AccountFile {
            file,
            source: error.source,
        }),
    }
}

/// Resolve `spec` against the text of /etc/passwd and /etc/group.
pub(crate) fn resolve_in(
    passwd_text: &str,
    group_text: &str,
    spec: &str,
) -> Result<ExecUser, UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let users = passwd(passwd_text);
    let entry = users.iter().find(|entry| entry.name == user).or_else(|| {
        let uid: u32 = user.parse().ok()?;
        users.iter().find(|entry| entry.uid == uid)
    });
    let (uid, mut gid, home, name) = match (entry, user.parse::<u32>()) {
        (Some(entry), _) => (
            entry.uid,
            entry.gid,
            entry.home.clone(),
            Some(entry.name.clone()),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_owned(), None),
        (None, Err(_)) => {
            return Err(UserError::NoUser(user.to_owned()));
        }
    };
    let all_groups = groups(group_text);
    let mut supplementary = Vec::new();
    match group {
        Some(group) if !group.is_empty() => {
            gid = match all_groups.iter().find(|entry| entry.name == group) {
                Some(entry) => entry.gid,
                None => group
                    .parse()
                    .map_err(|_| UserError::NoGroup(group.to_owned()))?,
            };
        }
        // Without an explicit group the user's memberships apply.
        _ => {
            if let Some(name) = &name {
                supplementary = all_groups
                    .iter()
                    .filter(|entry| entry.members.iter().any(|member| member == name))
                    .map(|entry| entry.gid)
                    .filter(|&member_gid| member_gid != gid)
                    .collect();
            }
        }
    }
    let mut groups = vec![gid];
    groups.extend(supplementary);
    groups.dedup();
    Ok(ExecUser {
        uid,
        gid,
        groups,
        home: if home.is_empty() {
            "/".to_owned()
        } else {
            home
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_resolve_as_docker_does() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.path().join("etc/group"),
            "root:x:0:\nalice:x:1000:\nstaff:x:50:alice,bob\nwheel:x:10:root\n",
        )
        .unwrap();
        let resolve = |spec| resolve(root.path(), spec);
        assert_eq!(
            resolve("").unwrap(),
            ExecUser {
                uid: 0,
                gid: 0,
                groups: vec![0, 10],
                home: "/root".into()
            }
        );
        assert_eq!(
            resolve("alice").unwrap(),
            ExecUser {
                uid: 1000,
                gid: 1000,
                groups: vec![1000, 50],
                home: "/home/alice".into()
            }
        );
        assert_eq!(resolve("1000").unwrap().home, "/home/alice");
        let unknown = resolve("4242").unwrap();
        assert_eq!(
            (unknown.uid, unknown.gid, unknown.home.as_str()),
            (4242, 0, "/")
        );
        let explicit = resolve("alice:staff").unwrap();
        assert_eq!((explicit.gid, explicit.groups.clone()), (50, vec![50]));
        assert_eq!(resolve("5:7").unwrap().groups, vec![7]);
        assert_eq!(
            resolve("bob").unwrap_err().to_string(),
            "unable to find user bob: no matching entries in passwd file"
        );
        assert_eq!(
            resolve("alice:nope").unwrap_err().to_string(),
            "unable to find group nope: no matching entries in group file"
        );
    }
}
