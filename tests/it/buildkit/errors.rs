//! `frontend/dockerfile/errors_test.go`: an error names the lines of the
//! instruction it comes from.

use super::Bk;
use crate::support::Context;

/// testErrorsSourceMap (but `#syntax=foobar`: strata has no external
/// frontends, and reads the directive as a comment, as BuildKit's own
/// parser does without a gateway)
#[test]
fn errors_name_the_lines_of_their_instruction() {
    let bk = Bk::new();
    for (name, dockerfile, lines) in [
        ("invalidenv", "from alpine\nenv", "2"),
        ("invalidrun", "from scratch\nenv foo=bar\nrun what", "3"),
        (
            "invalidcopy",
            "from scratch\nenv foo=bar\ncopy foo bar\nenv bar=baz",
            "3",
        ),
        (
            "invalidflag",
            "from scratch\nenv foo=bar\ncopy --foo=bar / /\nenv bar=baz",
            "3",
        ),
        (
            "invalidcopyfrom",
            "from scratch\nenv foo=bar\ncopy --from=invalid foo bar\nenv bar=baz",
            "3",
        ),
        (
            "invalidmultiline",
            "from scratch\nrun wh\\\nat\nenv bar=baz",
            "2",
        ),
    ] {
        let context = Context::new().dockerfile(dockerfile);
        let stderr = bk.build_err(&context, &["--pull=never"]);
        assert!(
            stderr.contains(&format!("Dockerfile:{lines}:")),
            "{name}: {stderr}"
        );
    }
}
