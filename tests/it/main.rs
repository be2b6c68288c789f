//! strata's integration tests: the real binary, run as a user would.
//!
//! One test binary, one module per feature.

mod build;
mod buildkit;
mod costs;
mod faults;
mod images;
mod leases;
mod plan;
mod registry;
mod sandbox;
mod security;
mod store;
mod store_repair;
mod support;
