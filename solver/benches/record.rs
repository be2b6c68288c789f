//! The cost of recording an image, with 1 and with 1,000 images in the
//! store (issue 16: it used to grow with the store, since `images.json`
//! was rewritten whole and synced on every build).
//!
//! `cargo bench -p strata-solver --bench record` fills a store in a
//! temporary directory (`$STRATA_BENCH_DIR`, else the system's; use a real
//! disk: the cost is mostly `fsync`) and, at 1 and at 1,000 images, times
//! `Store::record` of 50 new images with a tag (the median; the store
//! grows by those 50), and, for
//! comparison, what the old format did at that size: serialize the whole
//! index, write it to a file and sync it.

use std::io::Write;
use std::time::{Duration, Instant};

use strata_solver::digest::Digest;
use strata_solver::store::{ImageRecord, LayerRecord, Store};

/// A record the size a build's is (five layers: about 2 KB as JSON).
fn image(seed: usize) -> ImageRecord {
    let id = Digest::of(format!("config {seed}").as_bytes());
    ImageRecord {
        id: id.clone(),
        manifest: Digest::of(format!("manifest {seed}").as_bytes()),
        manifest_size: 1234,
        config: id,
        config_size: 2345,
        layers: (0..5)
            .map(|layer| LayerRecord {
                digest: Digest::of(format!("layer {seed} {layer}").as_bytes()),
                diff_id: Digest::of(format!("diff {seed} {layer}").as_bytes()),
                size: 1 << 20,
                media_type: "application/vnd.oci.image.layer.v1.tar".to_owned(),
                diff_size: Some(1 << 20),
            })
            .collect(),
        created: Some("2026-12-01T00:00:00Z".to_owned()),
        manifest_media_type: None,
        repo_digests: Vec::new(),
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let parent = std::env::var_os("STRATA_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = match &parent {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut count = 0;
    let mut next = 1_000_000;
    for target in [1, 1000] {
        while count < target {
            store
                .record(&image(count), &[format!("app:{count}")])
                .unwrap();
            count += 1;
        }
        let index = store.index().unwrap();
        let old = dir.path().join("images.json.bench");
        let mut whole = Vec::new();
        for _ in 0..50 {
            let start = Instant::now();
            let bytes = serde_json::to_vec_pretty(&index).unwrap();
            let mut file = std::fs::File::create(&old).unwrap();
            file.write_all(&bytes).unwrap();
            file.sync_all().unwrap();
            whole.push(start.elapsed());
        }
        let mut record = Vec::new();
        for _ in 0..50 {
            let new = image(next);
            next += 1;
            let start = Instant::now();
            store.record(&new, &["app:latest".to_owned()]).unwrap();
            record.push(start.elapsed());
        }
        let size = std::fs::metadata(&old).unwrap().len();
        #[expect(clippy::print_stdout, reason = "a bench reports")]
        {
            println!(
                "{target:>5} images: record {:>9.3?}   (old format: rewrite {} KB and sync: {:>9.3?})",
                median(record),
                size / 1024,
                median(whole)
            );
        }
    }
}
