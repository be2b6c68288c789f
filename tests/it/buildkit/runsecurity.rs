//! `frontend/dockerfile/dockerfile_runsecurity_test.go`: the capabilities
//! a RUN step has, by default and with `--security=sandbox`: docker's
//! default set, whose bounding set BuildKit's tests compare with
//! `00000000a80425fb`. (`--security=insecure` is in `build.rs`:
//! `insecure_steps_need_the_entitlement_and_then_keep_capabilities`.)

use super::{Bk, read};
use crate::support::Context;

/// docker's default capabilities as `/proc/self/status` shows them:
/// CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
/// NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
const DOCKER_DEFAULT: &str = "CapBnd:\t00000000a80425fb";

fn bounding_set(bk: &Bk, flag: &str, args: &[&str]) -> String {
    let context = Context::new().dockerfile(&format!(
        "FROM busybox AS base\nRUN {flag}grep CapBnd /proc/self/status > /caps\nFROM scratch\nCOPY --from=base /caps /\n"
    ));
    let out = bk.export(&context, args);
    read(&out, "caps").trim_end().to_owned()
}

/// testRunSecuritySandbox
#[test]
fn a_sandboxed_step_has_dockers_default_capabilities() {
    let bk = Bk::new();
    assert_eq!(
        bounding_set(&bk, "--security=sandbox ", &[]),
        DOCKER_DEFAULT
    );
}

/// testRunSecurityDefault
#[test]
fn a_step_has_dockers_default_capabilities_even_when_insecure_is_allowed() {
    let bk = Bk::new();
    // BuildKit grants the entitlement in this test; a step that does not
    // ask for it stays in the sandbox all the same.
    assert_eq!(
        bounding_set(&bk, "", &["--allow", "security.insecure"]),
        DOCKER_DEFAULT
    );
    assert_eq!(bounding_set(&bk, "", &[]), DOCKER_DEFAULT);
}
