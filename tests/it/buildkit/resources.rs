//! `frontend/dockerfile/dockerfile_resources_test.go`: `--shm-size` and
//! `--ulimit` (BuildKit's `shm-size` and `ulimit` options, which buildx
//! and `docker build` pass from the same flags).

use super::{Bk, read};
use crate::support::Context;

/// testShmSize
#[test]
fn shm_size_sets_the_size_of_dev_shm() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nRUN mount | grep /dev/shm > /shmsize\nFROM scratch\nCOPY --from=base /shmsize /\n",
    );
    let out = bk.export(&context, &["--shm-size", "134217728"]);
    assert!(
        read(&out, "shmsize").contains("size=131072k"),
        "{}",
        read(&out, "shmsize")
    );
    // docker's units, and docker's 64 MiB without the flag; each size is
    // its own cache key.
    let out = bk.export(&context, &["--shm-size", "32m"]);
    assert!(
        read(&out, "shmsize").contains("size=32768k"),
        "{}",
        read(&out, "shmsize")
    );
    let out = bk.export(&context, &[]);
    assert!(
        read(&out, "shmsize").contains("size=65536k"),
        "{}",
        read(&out, "shmsize")
    );
    let stderr = bk.build_err(&context, &["--shm-size", "lots"]);
    assert!(
        stderr.contains("invalid size `lots`: expected bytes, or a number with k, m or g"),
        "{stderr}"
    );
}

/// testUlimit
#[test]
fn ulimit_sets_a_limit_of_run_steps() {
    let bk = Bk::new();
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nRUN ulimit -n > /ulimit\nFROM scratch\nCOPY --from=base /ulimit /\n",
    );
    let out = bk.export(&context, &["--ulimit", "nofile=1062:1062"]);
    assert_eq!(read(&out, "ulimit").trim(), "1062");
    let out = bk.export(&context, &["--ulimit", "nofile=512"]);
    assert_eq!(read(&out, "ulimit").trim(), "512");
    for (value, message) in [
        (
            "nofile",
            "invalid ulimit `nofile`: expected NAME=SOFT[:HARD]",
        ),
        (
            "files=1",
            "invalid ulimit `files=1`: `files` is not one of core, cpu",
        ),
        (
            "nofile=2:1",
            "invalid ulimit `nofile=2:1`: the soft limit is above the hard limit",
        ),
    ] {
        let stderr = bk.build_err(&context, &["--ulimit", value]);
        assert!(stderr.contains(message), "{stderr}");
    }
}
