//! The rootless executor through `strata run` and `strata commit`, in three
//! tiers: as root, as an unprivileged user with subordinate ids (newuidmap),
//! and as one without (a single mapped id). The unprivileged users are made
//! by `.ci/users` (run as root); these tests need root to switch to them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{Run, busybox_rootfs, is_root, require, run_ok};

/// The user with a range in /etc/subuid and /etc/subgid.
const SUBORDINATE_USER: &str = "strata-sub";
/// The user without one.
const SINGLE_USER: &str = "strata-plain";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    Root,
    Subordinate,
    Single,
}

pub(crate) const TIERS: [Tier; 3] = [Tier::Root, Tier::Subordinate, Tier::Single];

impl Tier {
    pub(crate) fn user(self) -> Option<&'static str> {
        match self {
            Tier::Root => None,
            Tier::Subordinate => Some(SUBORDINATE_USER),
            Tier::Single => Some(SINGLE_USER),
        }
    }

    /// Whether ids other than 0 exist in this tier's sandboxes.
    fn has_ids(self) -> bool {
        self != Tier::Single
    }
}

/// What every tier shares: a copy of strata and the base image tarball,
/// where every user can read them.
pub(crate) struct Shared {
    _dir: tempfile::TempDir,
    binary: PathBuf,
    base: PathBuf,
    pub(crate) dir: PathBuf,
}

fn user_has_range(user: &str) -> bool {
    ["/etc/subuid", "/etc/subgid"].iter().all(|file| {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .any(|line| line.starts_with(&format!("{user}:")))
    })
}

pub(crate) fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        assert!(
            is_root(),
            "the sandbox tests switch users: run them as root (CI does)"
        );
        for user in [SUBORDINATE_USER, SINGLE_USER] {
            let known = Command::new("id").arg(user).output().unwrap();
            assert!(
                known.status.success(),
                "user {user} is missing: run `bash .ci/users` as root first"
            );
        }
        assert!(
            user_has_range(SUBORDINATE_USER) && !user_has_range(SINGLE_USER),
            "{SUBORDINATE_USER} needs a range in /etc/subuid and /etc/subgid and \
             {SINGLE_USER} none: run `bash .ci/users` as root"
        );
        require("newuidmap");
        // A static is never dropped, so its directory would outlive every
        // run (128 MB each): it is named after this process, and the ones
        // of test processes that are gone are removed here.
        let tmp = std::env::temp_dir();
        for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if let Some(pid) = name
                .to_str()
                .and_then(|name| name.strip_prefix("strata-sandbox-"))
                .and_then(|pid| pid.parse::<u32>().ok())
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("strata-sandbox-{}", std::process::id()))
            .rand_bytes(0)
            .tempdir()
            .unwrap();
        let path = dir.path().to_path_buf();
        chmod(&path, 0o755);
        let binary = path.join("strata");
        std::fs::copy(env!("CARGO_BIN_EXE_strata"), &binary).unwrap();
        chmod(&binary, 0o755);
        // The base: busybox, a user `app`, a directory a step replaces, a
        // file owned by 1000 and a file with an xattr.
        let rootfs = path.join("rootfs");
        busybox_rootfs(&rootfs);
        append(
            &rootfs.join("etc/passwd"),
            "app:x:1000:1000:app:/home/app:/bin/sh\n",
        );
        append(&rootfs.join("etc/group"), "app:x:1000:\nstaff:x:50:app\n");
        for (file, content) in [
            ("opt/old/a", "a"),
            ("opt/old/b", "b"),
            ("srv/owned", "mine"),
            ("srv/attr", "x"),
        ] {
            let file = rootfs.join(file);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, content).unwrap();
        }
        std::os::unix::fs::chown(rootfs.join("srv/owned"), Some(1000), Some(1000)).unwrap();
        chmod(&rootfs.join("srv/owned"), 0o640);
        xattr::set(rootfs.join("srv/attr"), "user.color", b"blue").unwrap();
        let base = path.join("base.tar");
        run_ok(
            Command::new(require("tar"))
                .args([
                    "--sort=name",
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=user.*",
                    "-C",
                ])
                .arg(&rootfs)
                .arg("-cf")
                .arg(&base)
                .arg("."),
        );
        chmod(&base, 0o644);
        Shared {
            _dir: dir,
            binary,
            base,
            dir: path,
        }
    })
}

pub(crate) fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut content = std::fs::read_to_string(path).unwrap();
    content.push_str(text);
    std::fs::write(path, content).unwrap();
}

/// One tier's store, with the base imported as `base`.
pub(crate) struct Env {
    tier: Tier,
    _dir: tempfile::TempDir,
    store: PathBuf,
}

impl Env {
    pub(crate) fn new(tier: Tier) -> Env {
        Env::in_dir(tier, &shared().dir)
    }

    /// A store in a new directory under `parent`.
    fn in_dir(tier: Tier, parent: &Path) -> Env {
        let shared = shared();
        let dir = tempfile::Builder::new()
            .prefix("strata-tier-")
            .tempdir_in(parent)
            .unwrap();
        chmod(dir.path(), 0o755);
        if let Some(user) = tier.user() {
            run_ok(Command::new("chown").arg(user).arg(dir.path()));
        }
        let env = Env {
            tier,
            store: dir.path().join("store"),
            _dir: dir,
        };
        env.ok(&["import", shared.base.to_str().unwrap(), "base"]);
        env
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let shared = shared();
        let mut command = match self.tier.user() {
            None => Command::new(&shared.binary),
            Some(user) => {
                let mut command = Command::new(require("setpriv"));
                command
                    .args(["--reuid", user, "--regid", user, "--init-groups", "--"])
                    .arg(&shared.binary);
                command
            }
        };
        command
            .arg("--root")
            .arg(&self.store)
            .args(args)
            .current_dir(&shared.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Run strata, with a deadline.
    pub(crate) fn strata(&self, args: &[&str]) -> Run {
        wait(self.command(args).spawn().unwrap(), Duration::from_secs(60))
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let run = self.strata(args);
        assert_eq!(
            run.code, 0,
            "{:?}: strata {args:?} failed:\n{}{}",
            self.tier, run.stdout, run.stderr
        );
        run.stdout
    }

    /// `strata run` of a shell script on the base, as `extra` says.
    fn sh(&self, extra: &[&str], script: &str) -> Run {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["base", "sh", "-c", script]);
        self.strata(&args)
    }

    fn sh_ok(&self, extra: &[&str], script: &str) -> String {
        let run = self.sh(extra, script);
        assert_eq!(
            run.code, 0,
            "{:?}: script failed:\n{script}\n{}{}",
            self.tier, run.stdout, run.stderr
        );
        run.stdout
    }

    /// The entries of the top layer of `image`: path → description.
    fn top_layer(&self, image: &str) -> BTreeMap<String, String> {
        let store = strata_solver::store::Store::open(&self.store).unwrap();
        let record = strata_solver::image::resolve(&store, image).unwrap();
        let layer = record.layers.last().unwrap();
        let reader =
            strata_solver::image::decompressed(store.open_blob(&layer.digest).unwrap()).unwrap();
        let mut archive = tar::Archive::new(reader);
        let mut out = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().display().to_string();
            let header = entry.header();
            let kind = match header.entry_type() {
                tar::EntryType::Directory => "dir".to_owned(),
                tar::EntryType::Regular => "file".to_owned(),
                tar::EntryType::Symlink => {
                    format!(
                        "symlink->{}",
                        header.link_name().unwrap().unwrap().display()
                    )
                }
                tar::EntryType::Link => {
                    format!(
                        "hardlink->{}",
                        header.link_name().unwrap().unwrap().display()
                    )
                }
                other => format!("{other:?}"),
            };
            let mut description = format!(
                "{kind} {:o} {}:{}",
                header.mode().unwrap() & 0o7777,
                header.uid().unwrap(),
                header.gid().unwrap()
            );
            if let Some(extensions) = entry.pax_extensions().unwrap() {
                for extension in extensions {
                    let extension = extension.unwrap();
                    if let Some(name) = extension.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        description.push_str(&format!(
                            " {name}={}",
                            String::from_utf8_lossy(extension.value_bytes())
                        ));
                    }
                }
            }
            out.insert(path, description);
        }
        out
    }

    /// Files in the store's tmp/ (runs that were not cleaned up).
    fn leftovers(&self) -> Vec<String> {
        std::fs::read_dir(self.store.join("tmp"))
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Wait for `child` at most `limit`; kill it after that.
pub(crate) fn wait(mut child: std::process::Child, limit: Duration) -> Run {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() || start.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() <= limit,
        "strata did not finish in {limit:?}"
    );
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The script of the commit test: every kind of change.
const CHANGES: &str = "set -e
mkdir -p /new/dir && echo hello > /new/dir/file
echo 'extra:x:2000:2000::/:/bin/sh' >> /etc/passwd
rm /etc/group
rm -r /opt/old && mkdir /opt/old && echo fresh > /opt/old/c
echo more >> /srv/attr && chmod 600 /srv/attr
echo s > /new/setuid && chmod 4755 /new/setuid
mkdir /new/shared && chmod 2775 /new/shared
ln -s dir/file /new/link
ln /new/dir/file /new/hardlink
";

fn expected_changes(opaque: bool) -> BTreeMap<String, String> {
    let mut expected: BTreeMap<String, String> = [
        ("etc/", "dir 755 0:0"),
        ("etc/.wh.group", "file 600 0:0"),
        ("etc/passwd", "file 644 0:0"),
        ("new/", "dir 755 0:0"),
        ("new/dir/", "dir 755 0:0"),
        ("new/dir/file", "file 644 0:0"),
        ("new/hardlink", "hardlink->new/dir/file 644 0:0"),
        ("new/link", "symlink->dir/file 777 0:0"),
        ("new/setuid", "file 4755 0:0"),
        ("new/shared/", "dir 2775 0:0"),
        ("opt/", "dir 755 0:0"),
        ("opt/old/", "dir 755 0:0"),
        ("opt/old/c", "file 644 0:0"),
        ("srv/", "dir 755 0:0"),
        ("srv/attr", "file 600 0:0 user.color=blue"),
    ]
    .into_iter()
    .map(|(path, description)| (path.to_owned(), description.to_owned()))
    .collect();
    if opaque {
        expected.insert("opt/old/.wh..wh..opq".into(), "file 600 0:0".into());
    } else {
        // The copy snapshotter cannot tell a replaced directory from an
        // emptied one: it whites out each old entry instead.
        expected.insert("opt/old/.wh.a".into(), "file 600 0:0".into());
        expected.insert("opt/old/.wh.b".into(), "file 600 0:0".into());
    }
    expected
}

fn commits_exactly_its_changes(snapshotter: Option<&str>) {
    for tier in TIERS {
        let env = Env::new(tier);
        let run = {
            let args = [
                "run",
                "--rm=false",
                "--name",
                "changes",
                "base",
                "sh",
                "-c",
                CHANGES,
            ];
            let mut command = env.command(&args);
            if let Some(snapshotter) = snapshotter {
                command.env("STRATA_SNAPSHOTTER", snapshotter);
            }
            wait(command.spawn().unwrap(), Duration::from_secs(60))
        };
        assert_eq!(run.code, 0, "{tier:?}: {}{}", run.stdout, run.stderr);
        let id = env.ok(&["commit", "-m", "all kinds", "changes", "changed:1"]);
        assert!(id.starts_with("sha256:"), "{id}");
        let listing = env.top_layer("changed:1");
        let expected = expected_changes(snapshotter != Some("copy"));
        assert_eq!(
            listing, expected,
            "{tier:?} ({snapshotter:?}): the committed layer differs"
        );
        // The committed image, run again, shows the changes applied.
        let seen = env.ok(&[
            "run",
            "changed:1",
            "sh",
            "-c",
            "cat /new/dir/file /opt/old/c; ls /opt/old; test -e /etc/group || echo no-group; \
             stat -c '%a %h' /new/setuid /new/dir/file",
        ]);
        assert_eq!(
            seen, "hello\nfresh\nc\nno-group\n4755 1\n644 2\n",
            "{tier:?}"
        );
        assert!(
            env.leftovers().is_empty(),
            "{tier:?}: {:?}",
            env.leftovers()
        );
    }
}

#[test]
fn a_run_commits_exactly_what_it_changed() {
    commits_exactly_its_changes(None);
}

#[test]
fn the_copy_snapshotter_commits_the_same_changes() {
    commits_exactly_its_changes(Some("copy"));
}

/// An overlayfs mount, unmounted when dropped.
struct OverlayMount {
    dir: tempfile::TempDir,
}

impl Drop for OverlayMount {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path().join("merged"))
            .status();
    }
}

#[test]
fn where_overlayfs_cannot_be_used_runs_fall_back_to_copies() {
    // overlayfs refuses another overlayfs as its upper directory: a store
    // inside a container whose root is overlayfs is the common case.
    let shared = shared();
    let dir = tempfile::tempdir_in(&shared.dir).unwrap();
    for sub in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let path = |sub: &str| dir.path().join(sub).display().to_string();
    run_ok(Command::new("mount").args([
        "-t",
        "overlay",
        "overlay",
        "-o",
        &format!(
            "lowerdir={},upperdir={},workdir={}",
            path("lower"),
            path("upper"),
            path("work")
        ),
        &path("merged"),
    ]));
    let mount = OverlayMount { dir };
    chmod(&mount.dir.path().join("merged"), 0o755);
    let env = Env::in_dir(Tier::Root, &mount.dir.path().join("merged"));
    let run = env.sh(&["--rm=false", "--name", "fallback"], CHANGES);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "warning: overlayfs cannot be used in a user namespace here (mount overlayfs on "
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(": Invalid argument); using copies of the layers instead, which is slower (STRATA_SNAPSHOTTER=copy chooses this directly)\n"),
        "{}",
        run.stderr
    );
    env.ok(&["commit", "fallback", "fell-back"]);
    assert_eq!(env.top_layer("fell-back"), expected_changes(false));
    // Forcing overlayfs there fails, and says why.
    let mut forced = env.command(&["run", "base", "true"]);
    forced.env("STRATA_SNAPSHOTTER", "overlay");
    let run = wait(forced.spawn().unwrap(), Duration::from_secs(60));
    assert_eq!(run.code, 125);
    assert!(
        run.stderr
            .starts_with("error: failed to mount the sandbox's root: mount overlayfs on "),
        "{}",
        run.stderr
    );
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

#[test]
fn ownership_survives_where_ids_are_mapped_and_fails_clearly_where_not() {
    for tier in TIERS {
        let env = Env::new(tier);
        let run = env.sh(
            &["--rm=false", "--name", "owners"],
            "stat -c '%u:%g %a' /srv/owned; touch /f && chown 1000:1000 /f && stat -c '%u:%g' /f",
        );
        if tier.has_ids() {
            assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
            // The image's owner is kept, and a chown is committed as made.
            assert_eq!(run.stdout, "1000:1000 640\n1000:1000\n", "{tier:?}");
            env.ok(&["commit", "owners", "owned"]);
            assert_eq!(
                env.top_layer("owned")["f"],
                "file 644 1000:1000",
                "{tier:?}"
            );
            assert!(!run.stderr.contains("warning"), "{tier:?}: {}", run.stderr);
        } else {
            assert_eq!(run.code, 1, "{tier:?}: {}", run.stdout);
            assert!(
                run.stderr.contains("chown: /f: Invalid argument"),
                "{tier:?}: {}",
                run.stderr
            );
            assert!(
                run.stderr.contains(
                    "warning: only one id is mapped into sandboxes (no range for user strata-plain \
                     in /etc/subuid and /etc/subgid): commands that change ownership to any id \
                     but 0 (chown, adduser, package installs) will fail."
                ),
                "{tier:?}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn user_environment_and_working_directory_are_as_asked() {
    for tier in TIERS {
        let env = Env::new(tier);
        assert_eq!(
            env.sh_ok(&[], "id"),
            "uid=0(root) gid=0(root) groups=0(root)\n",
            "{tier:?}"
        );
        assert_eq!(
            env.sh_ok(
                &[
                    "-e",
                    "GREETING=hi there",
                    "-e",
                    "PATH=/bin",
                    "-w",
                    "/work/here"
                ],
                "echo \"$GREETING|$PATH|$HOME\"; pwd"
            ),
            "hi there|/bin|/root\n/work/here\n",
            "{tier:?}"
        );
        if tier.has_ids() {
            assert_eq!(
                env.sh_ok(&["-u", "app"], "id; echo $HOME"),
                // The kernel sorts supplementary groups.
                "uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n/home/app\n",
                "{tier:?}"
            );
            assert_eq!(
                env.sh_ok(&["-u", "4242:50"], "id"),
                "uid=4242 gid=50(staff) groups=50(staff)\n",
                "{tier:?}"
            );
            assert_eq!(
                env.sh_ok(
                    &["-u", "nobody"],
                    "id -u; touch /etc/x 2>&1 | sed 's/.*: //'"
                ),
                "65534\nPermission denied\n",
                "{tier:?}"
            );
        } else {
            let run = env.sh(&["-u", "app"], "id");
            assert_eq!(run.code, 125, "{tier:?}");
            assert!(
                run.stderr
                    .contains("switch to group 1000: Invalid argument (is the gid mapped?)"),
                "{tier:?}: {}",
                run.stderr
            );
        }
        let run = env.sh(&["-u", "ghost"], "id");
        assert_eq!(run.code, 125, "{tier:?}");
        assert!(
            run.stderr
                .contains("unable to find user ghost: no matching entries in passwd file"),
            "{tier:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn exit_codes_and_exec_errors_are_passed_on() {
    let env = Env::new(Tier::Root);
    assert_eq!(env.sh(&[], "exit 3").code, 3);
    assert_eq!(env.sh(&[], "kill -9 $$").code, 137);
    let run = env.strata(&["run", "base", "no-such-program"]);
    assert_eq!(run.code, 127);
    assert_eq!(
        run.stderr,
        "error: exec: \"no-such-program\": executable file not found in $PATH\n"
    );
    assert!(env.leftovers().is_empty(), "{:?}", env.leftovers());
}

#[test]
fn the_sandbox_sees_nothing_of_the_host() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("strata-host-marker");
    std::fs::write(&marker, "secret").unwrap();
    for tier in TIERS {
        let env = Env::new(tier);
        let store = env.store.display().to_string();
        let script = format!(
            "ls /proc/self/fd | tr '\\n' ' '; echo
             ls {store} 2>&1 | sed 's/.*: //'
             cat {marker} 2>&1 | sed 's/.*: //'
             find / -xdev \\( -name tags.log -o -name strata-host-marker \\) 2>/dev/null | wc -l
             cat /proc/1/root{marker} 2>&1 | sed 's/.*: //'
             test -e /proc/{host_pid} && echo host-pid-visible; cat /proc/1/comm
             mount -t tmpfs none /tmp 2>&1 | sed 's/.*: //'
             umount /proc/sys 2>&1 | sed 's/.*: //'
             (echo 1 > /proc/sys/kernel/domainname) 2>&1 | sed 's/.*: //'",
            marker = marker.display(),
            host_pid = std::process::id(),
        );
        let out = env.sh_ok(&[], &script);
        assert_eq!(
            out,
            "0 1 2 3 \nNo such file or directory\nNo such file or directory\n0\n\
             Permission denied\nstrata-init\npermission denied (are you root?)\n\
             Operation not permitted\nRead-only file system\n",
            "{tier:?}"
        );
    }
}

/// Host processes whose argument vector is exactly `argv`.
fn host_processes(argv: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let args: Vec<String> = cmdline
                .split(|byte| *byte == 0)
                .filter(|arg| !arg.is_empty())
                .map(|arg| String::from_utf8_lossy(arg).into_owned())
                .collect();
            if args == argv {
                found.push(format!(
                    "{}: {}",
                    entry.file_name().to_string_lossy(),
                    args.join(" ")
                ));
            }
        }
    }
    found
}

#[test]
fn background_processes_end_with_the_step() {
    for tier in TIERS {
        let env = Env::new(tier);
        let out = env.sh_ok(
            &[],
            "sleep 7771 & sleep 7772 </dev/null >/dev/null 2>&1 & echo started",
        );
        assert_eq!(out, "started\n");
        // Nothing waits for them: the kernel killed them with the sandbox's
        // pid 1, before strata returned.
        let mut left = host_processes(&["sleep", "7771"]);
        left.extend(host_processes(&["sleep", "7772"]));
        assert!(left.is_empty(), "{tier:?}: still running: {left:?}");
    }
}

#[test]
fn network_none_has_only_loopback() {
    for tier in TIERS {
        let env = Env::new(tier);
        let out = env.sh_ok(
            &["--network", "none"],
            "ip -o link | cut -d: -f2 | tr -d ' '; ip route | wc -l; \
             ping -c 1 -W 1 192.0.2.1 2>&1 | tail -1 | sed 's/.*: //'; \
             ping -c 1 -W 1 127.0.0.1 >/dev/null && echo loopback-up",
        );
        assert_eq!(
            out, "lo\n0\nNetwork is unreachable\nloopback-up\n",
            "{tier:?}"
        );
        // The host's network by default: the host's interfaces are there.
        let host_links = std::fs::read_dir("/sys/class/net").unwrap().count();
        let inside = env.sh_ok(&[], "ip -o link | wc -l");
        assert_eq!(inside.trim(), host_links.to_string(), "{tier:?}");
    }
}

#[test]
fn a_run_that_changes_nothing_commits_an_empty_layer_entry() {
    let env = Env::new(Tier::Root);
    env.ok(&["run", "--rm=false", "--name", "idle", "base", "true"]);
    env.ok(&["commit", "idle", "idle:1"]);
    let store = strata_solver::store::Store::open(&env.store).unwrap();
    let base = strata_solver::image::resolve(&store, "base").unwrap();
    let idle = strata_solver::image::resolve(&store, "idle:1").unwrap();
    assert_eq!(idle.layers, base.layers);
    let config = strata_solver::image::read_config(&store, &idle).unwrap();
    let history = config.history().clone().unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.empty_layer(), Some(true));
    assert_eq!(last.created_by().as_deref(), Some("true"));
}

#[test]
fn containers_are_listed_kept_from_removal_and_removed() {
    let env = Env::new(Tier::Subordinate);
    env.sh_ok(
        &["--rm=false", "--name", "keeper"],
        "mkdir -p /home/late && touch /home/late/x && chmod 600 /home/late/x && \
         chmod 700 /home/late && chown -R 3000:3000 /home/late",
    );
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");
    assert!(
        ps.lines().nth(1).unwrap().ends_with("Exited (0)   keeper"),
        "{ps}"
    );
    let refused = env.strata(&["rmi", "base"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("(must be forced): container keeper is using it"),
        "{}",
        refused.stderr
    );
    env.ok(&["image", "prune", "-a", "-f"]);
    env.ok(&["commit", "keeper", "kept"]);
    let layer = env.top_layer("kept");
    assert_eq!(layer["home/late/"], "dir 700 3000:3000");
    assert_eq!(layer["home/late/x"], "file 600 3000:3000");
    // Files of another id, private to it: strata removes them all the same.
    assert_eq!(env.ok(&["rm", "keeper"]), "keeper\n");
    assert!(env.ok(&["ps", "-q"]).is_empty());
    assert!(
        !env.store
            .join("containers")
            .read_dir()
            .unwrap()
            .any(|_| true)
    );
}

#[test]
fn an_interrupted_or_terminated_run_stops_and_cleans_up() {
    for (tier, signal) in [
        (Tier::Root, 15),
        (Tier::Subordinate, 15),
        (Tier::Root, 2),
        (Tier::Single, 2),
    ] {
        let env = Env::new(tier);
        let child = env
            .command(&["run", "base", "sh", "-c", "sleep 7781; echo never"])
            .spawn()
            .unwrap();
        // Wait for the sandbox to be up.
        let start = Instant::now();
        while host_processes(&["sleep", "7781"]).is_empty() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{tier:?}: the sandbox never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The user's strata (through setpriv, the same process).
        nix_kill(child.id() as i32, signal);
        let run = wait(child, Duration::from_secs(20));
        assert_eq!(run.code, 128 + signal, "{tier:?}: {}", run.stderr);
        assert!(!run.stdout.contains("never"));
        assert!(host_processes(&["sleep", "7781"]).is_empty(), "{tier:?}");
        assert!(
            env.leftovers().is_empty(),
            "{tier:?}: {:?}",
            env.leftovers()
        );
    }
}

fn nix_kill(pid: i32, signal: i32) {
    run_ok(
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string()),
    );
}

#[test]
fn a_terminal_on_stdin_gives_the_command_a_terminal_of_its_own() {
    let script = require("script");
    for tier in [Tier::Root, Tier::Subordinate] {
        let env = Env::new(tier);
        // `script` runs strata on a pseudo-terminal of 40 rows by 100 columns.
        let inner = env.command(&[
            "run",
            "-it",
            "base",
            "sh",
            "-c",
            "tty; stty size; test -t 1 && echo out-is-tty; exit 7",
        ]);
        let quoted: Vec<String> = std::iter::once(inner.get_program())
            .chain(inner.get_args())
            .map(|arg| format!("'{}'", arg.to_string_lossy()))
            .collect();
        let mut command = Command::new(&script);
        command
            .args([
                "-qec",
                &format!("stty rows 40 cols 100; {}", quoted.join(" ")),
                "/dev/null",
            ])
            .current_dir(&shared().dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        // Standard input stays open (and empty) until the command is done.
        let stdin = child.stdin.take();
        let run = wait(child, Duration::from_secs(60));
        drop(stdin);
        assert_eq!(run.code, 7, "{tier:?}: {}{}", run.stdout, run.stderr);
        // The sandbox's own devpts: its first terminal, sized as strata's.
        assert_eq!(
            run.stdout, "/dev/pts/0\r\n40 100\r\nout-is-tty\r\n",
            "{tier:?}"
        );
    }
}

/// A build context every tier's user can read, holding `files`.
pub(crate) fn readable_context(files: &[(&str, String)]) -> tempfile::TempDir {
    let context = tempfile::Builder::new()
        .prefix("strata-context-")
        .tempdir_in(&shared().dir)
        .unwrap();
    chmod(context.path(), 0o755);
    for (name, content) in files {
        std::fs::write(context.path().join(name), content).unwrap();
        chmod(&context.path().join(name), 0o644);
    }
    context
}

#[test]
fn builds_run_in_every_tier() {
    for tier in TIERS {
        let env = Env::new(tier);
        let chown = if tier.has_ids() {
            "--chown=app:staff "
        } else {
            ""
        };
        let context = readable_context(&[
            ("data.txt", "data".to_owned()),
            (
                "Dockerfile",
                format!(
                    "FROM base\nRUN mkdir /work && echo built > /work/out\nCOPY {chown}data.txt /work/data.txt\n\
                     RUN --mount=type=cache,target=/cache echo x >> /cache/log && wc -l < /cache/log > /cached\n\
                     RUN --mount=type=bind,source=data.txt,target=/mounted cat /mounted > /bound\n\
                     USER app\nRUN id -u > /tmp/who\n"
                ),
            ),
        ]);
        let context_path = context.path().to_str().unwrap();
        let run = env.strata(&["build", "--progress", "plain", "-t", "built", context_path]);
        if !tier.has_ids() {
            // Only id 0 exists: switching to app (1000) fails, and says why.
            assert_eq!(run.code, 1, "{tier:?}: {}", run.stderr);
            assert!(
                run.stderr
                    .contains("switch to group 1000: Invalid argument (is the gid mapped?)"),
                "{tier:?}: {}",
                run.stderr
            );
            continue;
        }
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
        assert_eq!(env.sh_ok(&[], "true"), "", "{tier:?}: the base still runs");
        let out = env.ok(&[
            "run",
            "built",
            "sh",
            "-c",
            "cat /work/out /tmp/who; stat -c '%U:%G %a' /work/data.txt; cat /cached /bound",
        ]);
        assert_eq!(out, "built\n1000\napp:staff 644\n1\ndata", "{tier:?}");
        // A rebuild: every step cached.
        let again = env.strata(&["build", "--progress", "plain", "-t", "built", context_path]);
        assert_eq!(again.code, 0, "{tier:?}: {}", again.stderr);
        assert!(
            again.stderr.contains("5 steps: 5 cached, 0 executed"),
            "{tier:?}: {}",
            again.stderr
        );
    }
}

#[test]
fn pull_build_and_push_work_in_every_tier() {
    let registry = crate::registry::Registry::start("");
    let host = registry.host();
    // Root pushes the base; every tier's store pulls it for its FROM.
    let base = format!("{host}/tiers/base:1");
    Env::new(Tier::Root).ok(&["push", "base", &base]);
    for tier in TIERS {
        let env = Env::new(tier);
        let context = readable_context(&[(
            "Dockerfile",
            format!("FROM {base}\nRUN echo pulled > /pulled\n"),
        )]);
        let target = format!("{host}/tiers/{tier:?}:1").to_lowercase();
        let context_path = context.path().to_str().unwrap();
        let run = env.strata(&["build", "-q", "-t", &target, "--push", context_path]);
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
        assert_eq!(
            env.ok(&["run", &target, "cat", "/pulled"]),
            "pulled\n",
            "{tier:?}"
        );
        // What the tier pushed is whole: skopeo copies it, verifying each blob.
        let out = tempfile::tempdir().unwrap();
        crate::registry::skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{target}"),
            &format!("dir:{}", out.path().display()),
        ]);
        // Ownership as the image says, in every tier (root: 0, even for a user).
        let owners = env.ok(&[
            "run",
            &target,
            "stat",
            "-c",
            "%u:%g",
            "/pulled",
            "/bin/busybox",
        ]);
        assert_eq!(owners, "0:0\n0:0\n", "{tier:?}");
    }
}

/// `ENV NAME=<size bytes>` lines, the values all `x`.
fn env_lines(names: &[String], size: usize) -> String {
    let value = "x".repeat(size);
    names
        .iter()
        .map(|name| format!("ENV {name}={value}\n"))
        .collect()
}

#[test]
fn a_run_gets_an_environment_of_a_mebibyte_in_every_tier() {
    // 16 variables of 64 KiB: each under the kernel's 128 KiB for one
    // string, together eight times as much (the spec that carries them to
    // the sandbox was once one variable itself, and failed over 128 KiB).
    let names: Vec<String> = (0..16).map(|index| format!("V{index}")).collect();
    let sum = names
        .iter()
        .map(|name| format!("${{#{name}}}"))
        .collect::<Vec<_>>()
        .join(" + ");
    let dockerfile = format!(
        "FROM base\n{}RUN echo $(( {sum} )) > /total\n",
        env_lines(&names, 64 << 10)
    );
    for tier in TIERS {
        let env = Env::new(tier);
        let context = readable_context(&[("Dockerfile", dockerfile.clone())]);
        let run = env.strata(&["build", "-q", "-t", "big", context.path().to_str().unwrap()]);
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
        // The image's environment reaches `strata run` whole too.
        let seen = env.ok(&[
            "run",
            "big",
            "sh",
            "-c",
            &format!("cat /total; echo $(( {sum} ))"),
        ]);
        assert_eq!(seen, "1048576\n1048576\n", "{tier:?}");
        assert!(
            env.leftovers().is_empty(),
            "{tier:?}: {:?}",
            env.leftovers()
        );
    }
}

#[test]
fn a_variable_over_the_kernels_limit_for_one_string_fails_saying_so() {
    let dockerfile = format!(
        "FROM base\n{}RUN true\n",
        env_lines(&["BIG".to_owned()], 200 << 10)
    );
    for tier in TIERS {
        let env = Env::new(tier);
        let context = readable_context(&[("Dockerfile", dockerfile.clone())]);
        let run = env.strata(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "big",
            context.path().to_str().unwrap(),
        ]);
        assert_eq!(run.code, 1, "{tier:?}: {}", run.stderr);
        // Which limit, how big, and the step's line.
        let error = run
            .stderr
            .lines()
            .find(|line| line.starts_with("error: "))
            .unwrap_or_default();
        assert_eq!(
            error,
            "error: failed to run the step: exec /bin/sh: argument list too long: the \
             environment variable BIG is 204800 bytes long; the kernel takes at most 131072 \
             bytes for one string of a command's environment or arguments, its NUL included \
             (MAX_ARG_STRLEN), and BIG=... takes 204805",
            "{tier:?}"
        );
        assert!(
            run.stderr.contains("/Dockerfile:3:1\n") && run.stderr.contains("3 | RUN true\n"),
            "{tier:?}: {}",
            run.stderr
        );
        assert!(
            env.leftovers().is_empty(),
            "{tier:?}: {:?}",
            env.leftovers()
        );
    }
}

/// `command`, run under `ulimit -s STACK` (in KiB, or `unlimited`).
fn with_stack(command: &Command, stack: &str) -> Command {
    let mut wrapped = Command::new(require("sh"));
    wrapped
        .arg("-c")
        .arg(format!("ulimit -s {stack} && exec \"$@\""))
        .arg("sh")
        .arg(command.get_program())
        .args(command.get_args())
        .current_dir(&shared().dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    wrapped
}

#[test]
fn an_environment_over_a_quarter_of_the_stack_limit_fails_saying_so() {
    // 24 variables of 100 KiB: each fits in one string, together 2.4 MiB
    // are over the 2 MiB that an 8 MiB stack limit leaves them, and under
    // the 6 MiB the kernel allows with no stack limit.
    let names: Vec<String> = (0..24).map(|index| format!("V{index}")).collect();
    let dockerfile = format!("FROM base\n{}RUN true\n", env_lines(&names, 100 << 10));
    for tier in TIERS {
        let env = Env::new(tier);
        let context = readable_context(&[("Dockerfile", dockerfile.clone())]);
        let args = ["build", "-q", "-t", "big", context.path().to_str().unwrap()];
        let command = env.command(&args);
        let run = wait(
            with_stack(&command, "8192").spawn().unwrap(),
            Duration::from_secs(60),
        );
        assert_eq!(run.code, 1, "{tier:?}: {}", run.stderr);
        let error = run
            .stderr
            .lines()
            .find(|line| line.starts_with("error: "))
            .unwrap_or_default();
        assert!(
            error.starts_with(
                "error: failed to run the step: exec /bin/sh: argument list too long: the \
                 arguments and environment take "
            ) && error.ends_with(
                "and the kernel takes at most 2097152 for them, pointers included: a quarter \
                 of the stack size limit (RLIMIT_STACK, 8388608 bytes; `ulimit -s` raises it)"
            ),
            "{tier:?}: {}",
            run.stderr
        );
        let run = wait(
            with_stack(&command, "unlimited").spawn().unwrap(),
            Duration::from_secs(60),
        );
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
    }
}
