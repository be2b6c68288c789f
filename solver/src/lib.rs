//! The solver of strata: content store, cache keys and index, scheduler,
//! rootless executor, layers, registries and exporters.
//!
//! It executes a [`strata_frontend::graph::BuildGraph`], the only thing it
//! takes from the frontend. [`solve`] runs a graph; [`store`] (blobs, image
//! records, crash-safe) is at the bottom; [`layer`] makes and unpacks layer
//! tars; [`exec`] is the rootless sandbox; [`image`] and [`registry`] move
//! images in and out; [`gc`] removes images and what nothing holds;
//! [`confined`] is the one resolver for paths under an untrusted root.
//!
//! # Layers
//!
//! Each module uses only modules below it (`tests/modules.rs` checks that
//! the graph has no cycle and that the store reaches nothing above it):
//!
//! ```text
//! gc                      image removal and prune: asks every holder
//! solve                   runs a graph (cache, schedule, COPY, RUN)
//! registry  container     pull and push; kept containers
//! image                   records, snapshots, import, load, save
//! exec                    the sandbox and the copy snapshotter
//! layer                   trees <-> tar blobs (written into the store)
//! store                   blobs, the image index, layout, GC by roots
//! confined  digest  error  name  time  sys
//! ```

mod atomic;
pub mod cancel;
pub mod check;
pub mod confined;
pub mod container;
pub mod digest;
pub mod error;
pub mod exec;
pub mod fault;
pub mod gc;
pub mod image;
pub mod layer;
pub mod name;
pub mod registry;
pub mod solve;
pub mod store;
mod sys;
pub mod time;

pub use strata_frontend::graph;
