//! `frontend/dockerfile/dockerfile_runnetwork_test.go`: `RUN --network`.
//! (BuildKit's `--network=host` needs the `network.host` entitlement;
//! strata's steps have the host's network by default, a difference the
//! README lists, so only `none` is ported.)

use super::{Bk, read};
use crate::support::Context;

/// testRunNoNetwork
#[test]
fn a_step_without_network_has_only_loopback() {
    let bk = Bk::new();
    // BuildKit's test: `RUN --network=none ! ip link show eth0`. Here the
    // step lists what it has, and the test reads the list.
    let context = Context::new().dockerfile(
        "FROM busybox AS base\nRUN --network=none ip -o link show > /links && ! ip link show eth0\nFROM scratch\nCOPY --from=base /links /\n",
    );
    let out = bk.export(&context, &[]);
    let links = read(&out, "links");
    let names: Vec<&str> = links
        .lines()
        .filter_map(|line| line.split(':').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(names, ["lo"], "{links}");
}
