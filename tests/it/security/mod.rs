//! Attacks on strata, each with a canary outside the root it must not
//! reach: a Dockerfile, a build context, an image or a registry trying to
//! change, read or hang the host. `docs/security.md` maps the known CVE
//! classes to these tests.

mod sandbox;
