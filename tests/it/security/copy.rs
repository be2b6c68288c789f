//! COPY and ADD writing their layer: a symlink a source planted in the
//! staging directory is replaced, never chmodded, timed or written
//! through; an image's account files are read bounded and inside it.

use super::Canary;
use crate::build::{read_in, store_with_base};
use crate::support::Context;

/// Build `context` with `store`, expecting success.
fn build(store: &crate::support::StoreDir, context: &Context, tag: &str) {
    let run = store.strata(context.path(), &["build", "-q", "-t", tag, "."]);
    assert_eq!(run.code, 0, "build failed:\n{}", run.stderr);
}

#[test]
fn a_context_symlink_then_a_directory_of_that_name_never_chmods_the_host() {
    let canary = Canary::new();
    let store = store_with_base();
    // `a/x -> <canary>` is copied as a symlink to /dst/x; then `b/x/`
    // (mode 777, an old mtime) is copied to the same /dst/x.
    let context = Context::new()
        .file("b/x/inside", "b")
        .dockerfile("FROM base\nCOPY a b /dst/\n");
    std::fs::create_dir(context.path().join("a")).unwrap();
    std::os::unix::fs::symlink(canary.path(), context.path().join("a/x")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        context.path().join("b/x"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    build(&store, &context, "ctx-chmod");
    canary.untouched();
    assert_eq!(
        read_in(
            &store,
            "ctx-chmod",
            "test -d /dst/x && ! test -L /dst/x && stat -c %a /dst/x && cat /dst/x/inside"
        ),
        "777\nb"
    );
}

#[test]
fn a_stage_symlink_then_a_directory_of_that_name_never_chmods_the_host() {
    let canary = Canary::new();
    let store = store_with_base();
    let dockerfile = format!(
        "FROM base AS evil\n\
         RUN mkdir -p /a /b/x && ln -s {} /a/x && chmod 4777 /b/x && touch -d @5 /b/x\n\
         FROM base\n\
         COPY --from=evil /a /b /dst/\n",
        canary.path().join("dir").display()
    );
    let context = Context::new().dockerfile(&dockerfile);
    build(&store, &context, "stage-chmod");
    canary.untouched();
    assert_eq!(
        read_in(
            &store,
            "stage-chmod",
            "test -d /dst/x && ! test -L /dst/x && stat -c %a /dst/x"
        ),
        "4777\n"
    );
}

/// ADD of an archive: the tar symlink-chmod attack through the extractor.
#[test]
fn an_added_archive_cannot_chmod_through_its_own_symlink() {
    let canary = Canary::new();
    let store = store_with_base();
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_path("d/").unwrap();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o4777);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(5);
    header.set_size(0);
    header.set_cksum();
    builder.append(&header, &b""[..]).unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_mode(0o777);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    builder
        .append_link(&mut header, "d", canary.path().join("file"))
        .unwrap();
    let archive = builder.into_inner().unwrap();
    let context = Context::new()
        .file("evil.tar", archive)
        .dockerfile("FROM base\nADD evil.tar /x/\n");
    build(&store, &context, "add-chmod");
    canary.untouched();
    assert_eq!(
        read_in(&store, "add-chmod", "readlink /x/d"),
        format!("{}\n", canary.path().join("file").display())
    );
}

#[test]
fn chown_reads_the_images_account_files_bounded_and_inside_it() {
    let store = store_with_base();
    // /etc/passwd -> /dev/zero: inside the image there is no /dev/zero
    // (the sandbox's /dev is not in a layer), so no user `app`.
    let context = Context::new()
        .file("f", "f")
        .dockerfile("FROM base\nRUN ln -sf /dev/zero /etc/passwd\nCOPY --chown=app f /f\n");
    let run = store.strata(context.path(), &["build", "-q", "."]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: COPY failed: --chown=app: unable to find user app: no matching entries in passwd file\n"),
        "{}",
        run.stderr
    );
    // An account file larger than the limit is an error naming it, not a
    // read of whatever size.
    let context = Context::new().file("f", "f").dockerfile(
        "FROM base\nRUN head -c 5000000 /dev/zero > /etc/group\nCOPY --chown=app f /f\n",
    );
    let run = store.strata(context.path(), &["build", "-q", "."]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "error: COPY failed: --chown=app: cannot read the image's /etc/group: larger than the limit of 4194304 bytes"
        ),
        "{}",
        run.stderr
    );
}

/// A destination through a symlink of the image is followed inside the
/// image, never on the host: absolute (`/esc -> <canary>/dir`) and
/// relative (`/up -> ../../../../<canary>/dir`) links land in the layer.
#[test]
fn a_destination_through_an_image_symlink_stays_in_the_image() {
    let canary = Canary::new();
    let store = store_with_base();
    let target = canary.path().join("dir");
    let relative = format!("../../../../../../../..{}", target.display());
    let dockerfile = format!(
        "FROM base AS evil\n\
         RUN ln -s {} /esc && ln -s {relative} /up\n\
         FROM evil\n\
         COPY f /esc/f\n\
         COPY f /up/g\n\
         ADD t.tar /esc/\n",
        target.display()
    );
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(3);
    builder
        .append_data(&mut header, "from-tar", &b"tar"[..])
        .unwrap();
    let context = Context::new()
        .file("f", "f")
        .file("t.tar", builder.into_inner().unwrap())
        .dockerfile(&dockerfile);
    build(&store, &context, "dest-link");
    canary.untouched();
    let inside = target.display();
    assert_eq!(
        read_in(
            &store,
            "dest-link",
            &format!(
                "cat {inside}/f {inside}/g {inside}/from-tar; test -L /esc && test -L /up && echo links"
            )
        ),
        "fftarlinks\n"
    );
}

/// The context walk opens each directory in its parent, never through a
/// symlink, and reads each entry through its parent's descriptor: a
/// directory swapped for a symlink to the host while a COPY walks it (and
/// back, over and over) never brings the host's files into a layer. (The
/// walk that joined paths onto the context's root followed such a link.)
#[test]
fn a_directory_swapped_for_a_symlink_during_the_walk_is_never_followed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let canary = Canary::new();
    let store = store_with_base();
    let mut context = Context::new().dockerfile("FROM base\nCOPY a/ /a/\n");
    for index in 0..200 {
        context = context.file(&format!("a/b/f{index}"), "inside");
    }
    let a = context.path().join("a");
    let stop = AtomicBool::new(false);
    let (mut built, mut refused) = (0, 0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                std::fs::rename(a.join("b"), a.join("parked")).unwrap();
                std::os::unix::fs::symlink(canary.path(), a.join("b")).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::fs::remove_file(a.join("b")).unwrap();
                std::fs::rename(a.join("parked"), a.join("b")).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        });
        for round in 0..12 {
            let tag = format!("swap{round}");
            let run = store.strata(
                context.path(),
                &["build", "-q", "--no-cache", "-t", &tag, "."],
            );
            if run.code != 0 {
                // The swap seen: an entry vanished, or is not a directory.
                refused += 1;
                assert!(run.stderr.contains("COPY failed"), "{}", run.stderr);
                continue;
            }
            built += 1;
            let layers = crate::costs::diff_ids(&store, &tag);
            for (path, _, content) in crate::costs::layer_entries(&store, layers.last().unwrap()) {
                let path = String::from_utf8_lossy(&path).into_owned();
                assert_ne!(content, b"canary", "{path}: the host's file was copied");
                assert!(
                    !path.ends_with("/dir/"),
                    "{path}: the host's directory was copied"
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    canary.untouched();
    assert_eq!(built + refused, 12);
}
