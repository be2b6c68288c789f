//! The image a build runs is the one its graph was lowered with: a tag that
//! moves between lowering and execution changes nothing (issue 14, as
//! BuildKit pins `ref@digest`).

use std::cell::Cell;
use std::io::Read;

use strata_frontend::graph::{
    ImageResolver, Op, Options, Platform, ResolveError, Resolved, Source,
};
use strata_solver::image::{self, ImportOptions};
use strata_solver::layer::Compression;
use strata_solver::solve::{self, BuildRequest, Event, Notice, Reporter, Session, StoreResolver};
use strata_solver::store::{ImageRecord, Store};

/// A one-layer image holding `/which` with `content`.
fn image_with(store: &Store, dir: &std::path::Path, content: &str) -> ImageRecord {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("which"), content).unwrap();
    let options = ImportOptions {
        compression: Compression::None,
        epoch: Some(0),
        ..ImportOptions::default()
    };
    image::import_dir(store, dir, &options).unwrap().image
}

/// Resolves through the store the first time; from the second call on,
/// answers with `next`: as if the tag had moved in between.
struct Moving<'a> {
    store: &'a Store,
    next: &'a ImageRecord,
    calls: Cell<usize>,
}

impl ImageResolver for Moving<'_> {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Resolved, ResolveError> {
        let call = self.calls.get();
        self.calls.set(call + 1);
        let mut resolved = StoreResolver(self.store).resolve(reference, platform)?;
        if call > 0 {
            resolved.digest = self.next.manifest.to_string();
        }
        Ok(resolved)
    }
}

/// Hears nothing.
struct Quiet;

impl Reporter for Quiet {
    fn event(&self, _: Event<'_>) {}
    fn notice(&self, _: Notice<'_>) {}
}

/// The content of file `name` (at the root) in the layer at `digest`.
fn file_in(store: &Store, digest: &strata_solver::digest::Digest, name: &str) -> Option<String> {
    let mut archive = tar::Archive::new(store.open_blob(digest).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        if path.trim_start_matches("./").trim_start_matches('/') == name {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            return Some(text);
        }
    }
    None
}

#[test]
fn a_tag_that_moves_after_lowering_does_not_change_the_image_that_runs() {
    let work = tempfile::tempdir().unwrap();
    let store = Store::open(work.path().join("store")).unwrap();
    let first = image_with(&store, &work.path().join("first"), "first");
    let second = image_with(&store, &work.path().join("second"), "second");
    assert_ne!(first.manifest, second.manifest);
    image::tag(&store, &first, "app").unwrap();

    // Two stages and a COPY name `app`: the resolver is asked once, and
    // every step gets the image of that answer.
    let resolver = Moving {
        store: &store,
        next: &second,
        calls: Cell::new(0),
    };
    let options = Options {
        resolver: Some(&resolver),
        ..Options::default()
    };
    let graph = strata_frontend::compile(
        "FROM app AS one\nENV STAGE=one\n\
         FROM app\nCOPY --from=app /which /copied\n",
        &options,
    )
    .unwrap()
    .graph;
    assert_eq!(resolver.calls.get(), 1);
    let pins: Vec<Option<String>> = graph
        .vertices()
        .filter_map(|vertex| match vertex.op {
            Op::Source(Source::Image { pinned, .. }) => Some(pinned),
            _ => None,
        })
        .collect();
    let first_manifest = first.manifest.to_string();
    assert_eq!(pins, [Some(first_manifest)]);

    // The tag moves before the build runs; a resolver asked again would
    // say so.
    image::tag(&store, &second, "app").unwrap();
    assert_eq!(
        resolver.resolve("app", &Platform::host()).unwrap().digest,
        second.manifest.to_string()
    );
    assert_eq!(
        image::resolve(&store, "app").unwrap().manifest,
        second.manifest
    );

    let context_dir = work.path().join("context");
    std::fs::create_dir_all(&context_dir).unwrap();
    let mut request = BuildRequest::new(&context_dir);
    request.tags = vec!["built".to_owned()];
    request.epoch = Some(0);
    request.jobs = strata_solver::solve::Jobs::ONE;
    let session = Session {
        store: &store,
        registry: Default::default(),
    };
    // Nothing here runs a process: the sandbox is never started.
    let built = solve::solve(&session, &graph, &request, &Quiet).unwrap();

    // The image is the first one's layer and a COPY of its `/which`.
    let layers = &built.image.layers;
    assert_eq!(layers.len(), 2, "{layers:?}");
    assert_eq!(layers[0].digest, first.layers[0].digest);
    assert_eq!(
        file_in(&store, &layers[0].digest, "which").as_deref(),
        Some("first")
    );
    assert_eq!(
        file_in(&store, &layers[1].digest, "copied").as_deref(),
        Some("first")
    );
}
