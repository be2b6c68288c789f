//! The solver of strata: content store, cache keys and index, scheduler,
//! rootless executor, layers, registries and exporters.
//!
//! It executes a [`strata_frontend::graph::BuildGraph`], the only thing it
//! takes from the frontend. [`solve`] runs a graph; [`store`] (blobs, image
//! records, crash-safe) is at the bottom; [`layer`] makes and unpacks layer
//! tars; [`exec`] is the rootless sandbox; [`image`] and [`registry`] move
//! images in and out; [`confined`] is the one resolver for paths under an
//! untrusted root.

pub mod confined;
pub mod container;
pub mod digest;
pub mod error;
pub mod exec;
pub mod image;
pub mod layer;
pub mod registry;
pub mod solve;
pub mod store;
mod sys;

pub use strata_frontend::graph;
