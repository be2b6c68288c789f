//! RUN --mount: sources are resolved inside their own root (a stage, an
//! image, the context), targets inside the sandbox's rootfs, and nothing a
//! mount names reaches, moves or truncates a host path.

use super::Canary;
use crate::build::store_with_base;
use crate::support::{Context, StoreDir};

/// `../` enough times to climb from any store path to `/`.
const UP: &str = "../../../../../../../../../../../../../..";

fn build(store: &StoreDir, context: &Context, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["build", "-q", "--progress", "plain"];
    args.extend_from_slice(extra);
    args.push(".");
    store.strata(context.path(), &args)
}

#[test]
fn a_bind_source_climbing_out_of_its_stage_stays_inside_it() {
    let canary = Canary::new();
    let store = store_with_base();
    let dockerfile = format!(
        "FROM base AS stage\nRUN mkdir /data && echo staged > /data/f\n\
         FROM base\n\
         RUN --mount=type=bind,from=stage,source={UP}{canary},target=/h,rw touch /h/pwned && chmod 777 /h\n",
        canary = canary.path().display()
    );
    let run = build(&store, &Context::new().dockerfile(&dockerfile), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "RUN --mount: `{UP}{}` does not exist in the stage or image it is mounted from",
            canary.path().display()
        )),
        "{}",
        run.stderr
    );
    canary.untouched();
    // Inside the stage, `..` stops at its `/`: `/../data` is `/data`.
    let dockerfile = "FROM base AS stage\nRUN mkdir /data && echo staged > /data/f\n\
         FROM base\n\
         RUN --mount=type=bind,from=stage,source=../../data,target=/h cat /h/f > /seen\n";
    let run = build(
        &store,
        &Context::new().dockerfile(dockerfile),
        &["-t", "seen"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        crate::build::read_in(&store, "seen", "cat /seen"),
        "staged\n"
    );
}

#[test]
fn a_bind_source_that_is_a_symlink_to_the_host_resolves_inside_the_stage() {
    let canary = Canary::new();
    let store = store_with_base();
    let dockerfile = format!(
        "FROM base AS stage\nRUN ln -s {canary} /link\n\
         FROM base\n\
         RUN --mount=type=bind,from=stage,source=/link,target=/h,rw touch /h/pwned\n",
        canary = canary.path().display()
    );
    let run = build(&store, &Context::new().dockerfile(&dockerfile), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "RUN --mount: `/link` does not exist in the stage or image it is mounted from"
        ),
        "{}",
        run.stderr
    );
    canary.untouched();
}

#[test]
fn a_cache_seeded_from_outside_its_stage_moves_nothing_of_the_host() {
    let canary = Canary::new();
    let store = store_with_base();
    // `source` climbing out, then a symlink to the host: neither seeds.
    for (stage, source) in [
        (
            "RUN true".to_owned(),
            format!("{UP}{}", canary.path().display()),
        ),
        (
            format!("RUN ln -s {} /seed", canary.path().display()),
            "/seed".to_owned(),
        ),
    ] {
        let dockerfile = format!(
            "FROM base AS stage\n{stage}\n\
             FROM base\n\
             RUN --mount=type=cache,id=c1,from=stage,source={source},target=/c touch /c/pwned\n"
        );
        let run = build(&store, &Context::new().dockerfile(&dockerfile), &[]);
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "`{source}` is not a directory in the stage or image"
            )),
            "{}",
            run.stderr
        );
        canary.untouched();
    }
    // A link inside the stage seeds from what it names there, and the
    // cache is a directory of its own, not a link.
    let dockerfile = "FROM base AS stage\nRUN mkdir /real && echo seeded > /real/f && ln -s /real /seed\n\
         FROM base\n\
         RUN --mount=type=cache,id=c2,from=stage,source=/seed,target=/c cat /c/f > /seen\n";
    let run = build(
        &store,
        &Context::new().dockerfile(dockerfile),
        &["-t", "seeded"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        crate::build::read_in(&store, "seeded", "cat /seen"),
        "seeded\n"
    );
    for entry in std::fs::read_dir(store.root().join("cache-mounts")).unwrap() {
        let entry = entry.unwrap();
        let kind = std::fs::symlink_metadata(entry.path()).unwrap().file_type();
        assert!(
            !kind.is_symlink(),
            "{} is a symlink",
            entry.path().display()
        );
    }
}

#[test]
fn mount_targets_climbing_out_land_inside_the_sandbox() {
    let canary = Canary::new();
    let store = store_with_base();
    let context = Context::new().file("secret.txt", "s3cret");
    let target = |name: &str| format!("/{UP}{}", canary.path().join(name).display());
    let dockerfile = format!(
        "FROM base\n\
         RUN --mount=type=secret,id=s,target={secret} \
             --mount=type=tmpfs,target={tmpfs} \
             cat {inside_secret} > /seen && test -d {inside_tmpfs}\n",
        secret = target("file"),
        tmpfs = target("newdir"),
        inside_secret = canary.path().join("file").display(),
        inside_tmpfs = canary.path().join("newdir").display(),
    );
    let context = context.dockerfile(&dockerfile);
    let secret = context.path().join("secret.txt");
    let run = build(
        &store,
        &context,
        &[
            "-t",
            "targets",
            "--secret",
            &format!("id=s,src={}", secret.display()),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    canary.untouched();
    assert_eq!(
        crate::build::read_in(&store, "targets", "cat /seen"),
        "s3cret"
    );
}

/// A RUN heredoc with `#!` is mounted at `/dev/pipes/NAME`, and NAME is
/// the Dockerfile's: one that climbs (`<<../../<canary>/x`) lands inside
/// the sandbox, where the script still runs, never on the host.
#[test]
fn a_heredoc_script_whose_name_climbs_is_mounted_inside_the_sandbox() {
    let canary = Canary::new();
    let store = store_with_base();
    let name = format!("{UP}{}", canary.path().join("file").display());
    let dockerfile = format!("FROM base\nRUN <<{name}\n#!/bin/sh\necho ran > /ran\n{name}\n");
    let context = Context::new().dockerfile(&dockerfile);
    let run = build(&store, &context, &["-t", "climb"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    canary.untouched();
    assert_eq!(crate::build::read_in(&store, "climb", "cat /ran"), "ran\n");
}

#[test]
fn an_image_symlink_at_a_mount_target_resolves_inside_the_rootfs() {
    let canary = Canary::new();
    let store = store_with_base();
    let context = Context::new().file("secret.txt", "s3cret");
    let secret = context.path().join("secret.txt");
    let secret_flag = format!("id=s,src={}", secret.display());
    // A link to the canary's path, which inside the image does not exist:
    // the mount fails clearly, and nothing is made on the host.
    let dockerfile = format!(
        "FROM base
         RUN ln -s {canary} /t
         RUN --mount=type=tmpfs,target=/t/sub touch /t/sub/pwned
",
        canary = canary.path().display()
    );
    let context = context.dockerfile(&dockerfile);
    let run = build(&store, &context, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("RUN --mount: failed to resolve `")
            && run.stderr.contains("/rootfs/t`: No such file or directory"),
        "{}",
        run.stderr
    );
    canary.untouched();
    // Once the image has that path, the links lead there, inside it.
    let dockerfile = format!(
        "FROM base
         RUN mkdir -p {canary} && ln -s {canary} /t && ln -s {canary}/file /s
         RUN --mount=type=tmpfs,target=/t/sub --mount=type=secret,id=s,target=/s              touch /t/sub/pwned && cat /s > /seen && test -d {canary}/sub
",
        canary = canary.path().display()
    );
    let context = context.dockerfile(&dockerfile);
    let run = build(&store, &context, &["-t", "links", "--secret", &secret_flag]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    canary.untouched();
    assert_eq!(
        crate::build::read_in(&store, "links", "cat /seen"),
        "s3cret"
    );
}

#[test]
fn secret_files_are_never_readable_by_another_user() {
    use std::os::unix::fs::MetadataExt;
    let store = store_with_base();
    let context = Context::new().file("secret.txt", "s3cret");
    // While the step runs, look at the secret file strata made.
    let dockerfile = "FROM base\nRUN --mount=type=secret,id=s,mode=0444 sleep 2\n";
    let context = context.dockerfile(dockerfile);
    let secret = context.path().join("secret.txt");
    let root = store.root();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["--root", root.to_str().unwrap(), "build", "-q", "--secret"])
        .arg(format!("id=s,src={}", secret.display()))
        .arg(".")
        .current_dir(context.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut seen = None;
    while seen.is_none() && std::time::Instant::now() < deadline {
        for entry in std::fs::read_dir(root.join("tmp")).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "secret") && path.join("secret").exists() {
                seen = Some(path);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let dir = seen.expect("the secret file never appeared");
    let dir_mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
    let file_mode = std::fs::metadata(dir.join("secret")).unwrap().mode() & 0o777;
    assert!(child.wait().unwrap().success());
    assert_eq!(dir_mode, 0o700, "the secrets directory");
    assert_eq!(file_mode, 0o444, "the secret file has the mode asked for");
}

#[test]
fn a_context_bind_hides_what_dockerignore_excludes() {
    let store = store_with_base();
    let context = Context::new()
        .file(".dockerignore", "secret.txt\nsub/hidden\nlogs\n!logs/keep.txt\n")
        .file("secret.txt", "s3cret")
        .file("sub/hidden", "h")
        .file("sub/shown", "shown")
        .file("logs/a.log", "a")
        .file("logs/keep.txt", "kept")
        .dockerfile(
            "FROM base\n\
             RUN --mount=type=bind,target=/ctx \
                 ! test -e /ctx/secret.txt && ! test -e /ctx/sub/hidden && ! test -e /ctx/logs/a.log \
                 && cat /ctx/sub/shown /ctx/logs/keep.txt > /seen\n\
             RUN --mount=type=bind,source=sub,target=/sub,rw \
                 ! test -e /sub/hidden && touch /sub/new && cat /sub/shown >> /seen\n",
        );
    let run = build(&store, &context, &["-t", "ignored"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        crate::build::read_in(&store, "ignored", "cat /seen"),
        "shownkeptshown"
    );
    // Writes to a rw bind are discarded: the context is as it was.
    assert!(!context.path().join("sub/new").exists());
    // A source that is itself excluded is refused.
    let context =
        context.dockerfile("FROM base\nRUN --mount=type=bind,source=secret.txt,target=/s cat /s\n");
    let run = build(&store, &context, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: RUN --mount: `secret.txt` is excluded by .dockerignore\n"),
        "{}",
        run.stderr
    );
}

/// overlayfs splits its options at `,` and its layers at `:`. A context
/// directory named so must not add a host directory as a layer, nor an
/// upper or work directory of the attacker's choosing (which overlayfs
/// would empty).
#[test]
fn context_paths_cannot_inject_overlay_options() {
    let canary = Canary::new();
    let store = store_with_base();
    let host = canary.path().display().to_string();
    let up = canary.path().join("dir").display().to_string();
    // The canary's `dir` would be the upper, its root the work directory.
    let injected_layer = format!("x:{host}");
    let injected_options = format!("d,upperdir={up},workdir={host}");
    let context = Context::new()
        .file("x/inside", "x")
        .file(&format!("{injected_layer}/inside"), "ctx")
        .file(&format!("{injected_options}/inside"), "ctx")
        .file(".dockerignore", "**/hide\n")
        .file(&format!("{injected_options}/hide"), "hidden");
    let dockerfile = format!(
        "FROM base\n\
         RUN --mount=type=bind,source={injected_layer},target=/h,rw ls /h > /layer\n\
         RUN --mount=type=bind,source=l,target=/h ls /h > /options\n"
    );
    let context = context.dockerfile(&dockerfile);
    // The mount flag cannot hold a `,`; a link to that directory can.
    std::os::unix::fs::symlink(&injected_options, context.path().join("l")).unwrap();
    let run = build(&store, &context, &["-t", "options"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    canary.untouched();
    // Each mount shows the context directory of that name, and only it.
    assert_eq!(
        crate::build::read_in(&store, "options", "cat /layer /options"),
        "inside\ninside\n"
    );
}

/// A bind mount of a stage's directory is keyed by what it shows, which is
/// read with the copy's resolver: a stage link to a host directory names
/// the stage's own directory of that path, never the host's. Changing the
/// host's file leaves the step cached; changing the stage's runs it.
#[test]
fn a_mount_key_through_a_stage_link_never_reads_the_host() {
    let store = store_with_base();
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(host.path().join("sub")).unwrap();
    std::fs::write(host.path().join("sub/x"), "host one\n").unwrap();
    let dockerfile = |stage_content: &str| {
        format!(
            "FROM base AS stage\nRUN mkdir -p {dir}/sub && echo {stage_content} > {dir}/sub/x && ln -s {dir} /d\n\
             FROM base\n\
             RUN --mount=type=bind,from=stage,source=d/sub,target=/m cat /m/x > /seen && head -c 16 /dev/urandom | od -x > /unique\n",
            dir = host.path().display()
        )
    };
    let unique = |stage_content: &str| {
        let context = Context::new().dockerfile(&dockerfile(stage_content));
        let dest = tempfile::tempdir().unwrap();
        let out = dest.path().join("out");
        let output = format!("type=local,dest={}", out.display());
        let run = build(&store, &context, &["--output", &output]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        (
            std::fs::read_to_string(out.join("seen")).unwrap(),
            std::fs::read_to_string(out.join("unique")).unwrap(),
        )
    };
    let (seen, first) = unique("stage");
    assert_eq!(seen, "stage\n");
    std::fs::write(host.path().join("sub/x"), "host two\n").unwrap();
    assert_eq!(
        unique("stage"),
        (seen, first.clone()),
        "the host file is not in the key"
    );
    assert_ne!(unique("other").1, first, "the stage's file is");
}
