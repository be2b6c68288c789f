//! Layer commit throughput, side by side with `tar c | sha256sum` and
//! `buildah commit`, on one generated tree.
//!
//! `cargo bench -p strata-solver --bench commit` generates 20,000 small files
//! and 1 GiB of incompressible data (`STRATA_BENCH_MB` changes the size),
//! then times, on the same tree in the same run:
//!
//! - strata's layer writer (tar + sha256 [+ compression]) into a file on the
//!   same filesystem, synced, uncompressed, gzip and zstd; and once into
//!   nothing, to tell the writer's cost from the disk's;
//! - `tar -cf - DIR | sha256sum` (GNU tar, Debian's sha256sum);
//! - `buildah commit` of a working container holding the tree (when buildah
//!   is installed; its copy-in is not timed).
//!
//! Peak memory (VmHWM) is printed after a small tree and after the big one:
//! streaming means it does not grow with the layer.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use strata_solver::layer::{Compression, write_layer};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Fill `buffer` with xorshift noise: incompressible, and fast to make.
fn noise(state: &mut u64, buffer: &mut [u8]) {
    for chunk in buffer.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
}

fn generate(root: &Path, small_files: usize, big_megabytes: usize) -> u64 {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut total = 0u64;
    for index in 0..small_files {
        let dir = root.join(format!("src/{:03}", index / 100));
        if index % 100 == 0 {
            std::fs::create_dir_all(&dir).unwrap();
        }
        let mut content = vec![0u8; 200 + (index % 1800)];
        noise(&mut state, &mut content);
        std::fs::write(dir.join(format!("file{index}.txt")), &content).unwrap();
        total += content.len() as u64;
    }
    std::fs::create_dir_all(root.join("data")).unwrap();
    let mut buffer = vec![0u8; 1 << 20];
    for part in 0..big_megabytes.div_ceil(64) {
        let mut file = std::fs::File::create(root.join(format!("data/part{part}.bin"))).unwrap();
        for _ in 0..64.min(big_megabytes - part * 64) {
            noise(&mut state, &mut buffer);
            file.write_all(&buffer).unwrap();
            total += buffer.len() as u64;
        }
    }
    total
}

fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn report(name: &str, bytes: u64, elapsed: Duration, baseline: Option<Duration>) {
    let mb_per_second = bytes as f64 / 1e6 / elapsed.as_secs_f64();
    let ratio = baseline
        .map(|baseline| {
            format!(
                "   ({:.2}x the time of strata uncompressed)",
                elapsed.as_secs_f64() / baseline.as_secs_f64()
            )
        })
        .unwrap_or_default();
    #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    {
        println!(
            "{name:<34} {:>8.2} s {mb_per_second:>9.1} MB/s{ratio}",
            elapsed.as_secs_f64()
        );
    }
}

fn best_of(runs: usize, mut body: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| body()).min().unwrap()
}

fn main() {
    let megabytes: usize = std::env::var("STRATA_BENCH_MB")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1024);
    let work = tempfile::tempdir_in(
        std::env::var("STRATA_BENCH_DIR")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .unwrap();
    let out_path = work.path().join("layer.blob");

    // Peak memory for a small tree first, to compare with the big one.
    let small = work.path().join("small");
    generate(&small, 2_000, 16);
    let file = std::fs::File::create(&out_path).unwrap();
    write_layer(
        &small,
        Compression::Gzip,
        Some(0),
        std::io::BufWriter::new(file),
    )
    .unwrap();
    let small_peak = peak_memory_kib();

    let tree = work.path().join("tree");
    let bytes = generate(&tree, 20_000, megabytes);
    #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    {
        println!(
            "tree: 20,000 small files + {megabytes} MiB of data = {:.1} MB\n",
            bytes as f64 / 1e6
        );
    }
    // The real commit path: a temporary file in the store, synced, renamed.
    let store = strata_solver::store::Store::open(work.path().join("store")).unwrap();
    let time_strata = |compression: Compression| {
        let start = Instant::now();
        let (layer, _) = strata_solver::layer::store_layer(
            &store,
            &tree,
            compression,
            Some(0),
            &Default::default(),
        )
        .unwrap();
        let elapsed = start.elapsed();
        std::fs::remove_file(store.blob_path(&layer.digest)).unwrap();
        elapsed
    };
    // Warm the page cache once, then take the best of two runs each.
    time_strata(Compression::None);
    let uncompressed = best_of(2, || time_strata(Compression::None));
    report("strata, uncompressed", bytes, uncompressed, None);
    let to_sink = best_of(2, || {
        let start = Instant::now();
        write_layer(&tree, Compression::None, Some(0), std::io::sink()).unwrap();
        start.elapsed()
    });
    report(
        "strata, uncompressed, no disk write",
        bytes,
        to_sink,
        Some(uncompressed),
    );
    report(
        "strata, zstd",
        bytes,
        best_of(2, || time_strata(Compression::Zstd)),
        Some(uncompressed),
    );
    report(
        "strata, gzip",
        bytes,
        best_of(1, || time_strata(Compression::Gzip)),
        Some(uncompressed),
    );
    let big_peak = peak_memory_kib();

    let tar_sha = best_of(2, || {
        let start = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C '{}' -cf - . | sha256sum > /dev/null",
                tree.display()
            ))
            .status()
            .unwrap();
        assert!(status.success());
        start.elapsed()
    });
    report("tar -cf - | sha256sum", bytes, tar_sha, Some(uncompressed));

    if Command::new("buildah")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
    {
        let root = work.path().join("buildah");
        let buildah = |args: &[&str]| -> String {
            let output = Command::new("buildah")
                .arg("--root")
                .arg(root.join("root"))
                .arg("--runroot")
                .arg(root.join("run"))
                .args(["--storage-driver", "overlay"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "buildah {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        };
        let container = buildah(&["from", "scratch"]);
        buildah(&["copy", &container, tree.to_str().unwrap(), "/"]);
        let start = Instant::now();
        buildah(&["commit", "--quiet", &container, "bench:1"]);
        report("buildah commit", bytes, start.elapsed(), Some(uncompressed));
        buildah(&["rm", &container]);
        let _ = Command::new("buildah")
            .arg("--root")
            .arg(root.join("root"))
            .arg("--runroot")
            .arg(root.join("run"))
            .args(["--storage-driver", "overlay", "rmi", "--all", "--force"])
            .output();
    } else {
        #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
        {
            println!("buildah: not installed, skipped");
        }
    }
    #[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
    {
        println!(
            "\npeak memory: {:.1} MiB after a 16 MiB tree, {:.1} MiB after the {megabytes} MiB tree",
            small_peak as f64 / 1024.0,
            big_peak as f64 / 1024.0
        );
    }
}
