//! The solver of strata: content store, cache keys and index, scheduler,
//! rootless executor, layers and exporters.
//!
//! It executes a [`strata_frontend::graph::BuildGraph`], the only thing it
//! takes from the frontend. What is here so far: [`digest`] (content
//! digests computed while data streams), [`store`] (blobs and image records,
//! crash-safe) and [`layer`] (deterministic layer tars and a safe unpacker).

pub mod build;
pub mod confined;
pub mod container;
pub mod digest;
pub mod error;
pub mod exec;
pub mod image;
pub mod layer;
pub mod registry;
pub mod store;
mod sys;

pub use strata_frontend::graph;
