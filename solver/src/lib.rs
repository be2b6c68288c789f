//! The solver of strata: content store, cache keys and index, scheduler,
//! rootless executor, layers and exporters.
//!
//! It executes a [`strata_frontend::graph::BuildGraph`], the only thing it
//! takes from the frontend. Nothing is here yet: the image store, executor
//! and scheduler land with their own issues.

pub use strata_frontend::graph;
