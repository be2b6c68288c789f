//! The path attacks again in the rootless tiers (with subordinate ids, and
//! with a single id), against a canary the tier's own user owns: what such
//! a user could change by mistake, a build must not change either.

use std::path::Path;
use std::process::Command;

use crate::sandbox::{Env, TIERS, Tier, chmod, readable_context, shared};
use crate::support::run_ok;

/// A canary file the tier's user owns, beside its stores.
fn canary(tier: Tier) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("strata-canary-")
        .tempdir_in(&shared().dir)
        .unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, "canary").unwrap();
    chmod(&file, 0o600);
    chmod(dir.path(), 0o755);
    if let Some(user) = tier.user() {
        run_ok(Command::new("chown").args(["-R", user]).arg(dir.path()));
    }
    (dir, file)
}

fn untouched(file: &Path) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(file).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o600, "{}: mode", file.display());
    assert_eq!(
        std::fs::read(file).unwrap(),
        b"canary",
        "{}",
        file.display()
    );
    let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["file"], "nothing new beside the canary");
}

#[test]
fn copy_and_mount_attacks_fail_in_every_tier() {
    for tier in TIERS {
        let env = Env::new(tier);
        let (_dir, file) = canary(tier);
        let up = "../../../../../../../../../../../..";
        let dockerfile = format!(
            "FROM base AS evil\n\
             RUN mkdir -p /a /b/x && ln -s {file} /a/x && chmod 4777 /b/x\n\
             FROM base\n\
             COPY --from=evil /a /b /dst/\n\
             RUN --mount=type=secret,id=s,target=/{up}{file} \
                 --mount=type=tmpfs,target=/{up}{dir}/new \
                 cat {file} > /seen\n",
            file = file.display(),
            dir = file.parent().unwrap().display(),
        );
        let context = readable_context(&[
            ("Dockerfile", dockerfile),
            ("secret.txt", "s3cret".to_owned()),
        ]);
        let secret = format!("id=s,src={}", context.path().join("secret.txt").display());
        let run = env.strata(&[
            "build",
            "-q",
            "-t",
            "attacked",
            "--secret",
            &secret,
            context.path().to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{tier:?}: {}", run.stderr);
        untouched(&file);
        assert_eq!(
            env.ok(&[
                "run",
                "attacked",
                "sh",
                "-c",
                "cat /seen; stat -c %a /dst/x"
            ]),
            "s3cret4777\n",
            "{tier:?}"
        );
    }
}
