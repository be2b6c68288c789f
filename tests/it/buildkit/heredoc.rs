//! `frontend/dockerfile/dockerfile_heredoc_test.go` (each Dockerfile as
//! BuildKit's test writes it, tabs included; `adduser` replaced by the
//! lines it writes, which Debian's busybox cannot).

use super::{Bk, read};
use crate::support::Context;

/// Build `dockerfile`, export it, and compare each file with its content.
fn expect(dockerfile: &str, files: &[(&str, &str)]) {
    let bk = Bk::new();
    let out = bk.export(&Context::new().dockerfile(dockerfile), &[]);
    for (path, content) in files {
        assert_eq!(read(&out, path), *content, "{path}");
    }
}

/// testCopyHeredoc
#[test]
fn copy_heredocs_make_files() {
    expect(
        r#"FROM busybox AS build

RUN echo 'user:x:1000:1000::/home/user:/bin/sh' >> /etc/passwd && echo 'user:x:1000:' >> /etc/group
WORKDIR /dest

COPY <<EOF single
single file
EOF

COPY <<EOF <<EOF2 double/
first file
EOF
second file
EOF2

RUN mkdir -p /permfiles
COPY --chmod=777 <<EOF /permfiles/all
dummy content
EOF
COPY --chmod=0644 <<EOF /permfiles/rw
dummy content
EOF
COPY --chown=user:user <<EOF /permfiles/owned
dummy content
EOF
RUN stat -c "%04a" /permfiles/all >> perms && \
	stat -c "%04a" /permfiles/rw >> perms && \
	stat -c "%U:%G" /permfiles/owned >> perms

FROM scratch
COPY --from=build /dest /
"#,
        &[
            ("single", "single file\n"),
            ("double/EOF", "first file\n"),
            ("double/EOF2", "second file\n"),
            ("perms", "0777\n0644\nuser:user\n"),
        ],
    );
}

/// testCopyHeredocSpecialSymbols
#[test]
fn copy_heredoc_escapes_unless_quoted() {
    expect(
        r#"FROM scratch

COPY <<EOF quotefile
"quotes in file"
EOF

COPY <<EOF slashfile1
\
EOF
COPY <<EOF slashfile2
\\
EOF
COPY <<EOF slashfile3
\$
EOF

COPY <<"EOF" rawslashfile1
\
EOF
COPY <<"EOF" rawslashfile2
\\
EOF
COPY <<"EOF" rawslashfile3
\$
EOF
"#,
        &[
            ("quotefile", "\"quotes in file\"\n"),
            ("slashfile1", "\n"),
            ("slashfile2", "\\\n"),
            ("slashfile3", "$\n"),
            ("rawslashfile1", "\\\n"),
            ("rawslashfile2", "\\\\\n"),
            ("rawslashfile3", "\\$\n"),
        ],
    );
}

/// testRunBasicHeredoc
#[test]
fn run_heredoc_runs_in_the_shell() {
    expect(
        r#"FROM busybox AS build

RUN <<EOF
echo "i am" >> /dest
whoami >> /dest
EOF

FROM scratch
COPY --from=build /dest /dest
"#,
        &[("dest", "i am\nroot\n")],
    );
}

/// testRunFakeHeredoc
#[test]
fn run_heredoc_goes_to_the_shell_set() {
    expect(
        r#"FROM busybox AS build

SHELL ["/bin/awk"]
RUN <<EOF
BEGIN {
	print "foo" > "/dest"
}
EOF

FROM scratch
COPY --from=build /dest /dest
"#,
        &[("dest", "foo\n")],
    );
}

/// testRunShebangHeredoc
#[test]
fn run_heredoc_honours_a_shebang() {
    expect(
        r#"FROM busybox AS build

WORKDIR /dest

RUN <<EOF
#!/bin/awk -f
BEGIN {
	print "hello" >> "./out1"
	print "world" >> "./out1"
}
EOF

RUN <<-EOF
	#!/bin/awk -f
	BEGIN {
		print "hello" >> "./out2"
		print "world" >> "./out2"
	}
EOF

FROM scratch
COPY --from=build /dest /
"#,
        &[("out1", "hello\nworld\n"), ("out2", "hello\nworld\n")],
    );
}

/// testRunComplexHeredoc
#[test]
fn run_heredocs_in_pipes_and_descriptors() {
    expect(
        r#"FROM busybox AS build

WORKDIR /dest

RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \
	cat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2
hello WORLD
EOF1
HELLO world
EOF2

RUN <<EOF 3<<IN1 4<<IN2 awk -f -
BEGIN {
	while ((getline line < "/proc/self/fd/3") > 0)
		print tolower(line) > "./fd3"
	while ((getline line < "/proc/self/fd/4") > 0)
		print toupper(line) > "./fd4"
}
EOF
hello WORLD
IN1
HELLO world
IN2

FROM scratch
COPY --from=build /dest /
"#,
        &[
            ("out1", "hello world\n"),
            ("out2", "HELLO WORLD\n"),
            ("fd3", "hello world\n"),
            ("fd4", "HELLO WORLD\n"),
        ],
    );
}

/// testHeredocIndent
#[test]
fn heredoc_dash_strips_tabs() {
    expect(
        r#"FROM busybox AS build

COPY <<EOF /dest/foo-copy
	foo
EOF

COPY <<-EOF /dest/bar-copy
	bar
EOF

RUN <<EOF
echo "
	foo" > /dest/foo-run
EOF

RUN <<-EOF
echo "
	bar" > /dest/bar-run
EOF

RUN <<EOF
#!/bin/sh
echo "
	foo" > /dest/foo2-run
EOF

RUN <<-EOF
#!/bin/sh
echo "
	bar" > /dest/bar2-run
EOF

RUN <<EOF sh > /dest/foo3-run
echo "
	foo"
EOF

RUN <<-EOF sh > /dest/bar3-run
echo "
	bar"
EOF

FROM scratch
COPY --from=build /dest /
"#,
        &[
            ("foo-copy", "\tfoo\n"),
            ("foo-run", "\n\tfoo\n"),
            ("foo2-run", "\n\tfoo\n"),
            ("foo3-run", "\n\tfoo\n"),
            ("bar-copy", "bar\n"),
            ("bar-run", "\nbar\n"),
            ("bar2-run", "\nbar\n"),
            ("bar3-run", "\nbar\n"),
        ],
    );
}

/// testHeredocVarSubstitution
#[test]
fn heredoc_expansion_follows_the_delimiter() {
    expect(
        r#"FROM busybox as build

ARG name=world

COPY <<EOF /dest/c1
Hello ${name}!
EOF
COPY <<'EOF' /dest/c2
Hello ${name}!
EOF
COPY <<"EOF" /dest/c3
Hello ${name}!
EOF

COPY <<EOF /dest/q1
Hello '${name}'!
EOF
COPY <<EOF /dest/q2
Hello "${name}"!
EOF
COPY <<'EOF' /dest/qsingle1
Hello '${name}'!
EOF
COPY <<'EOF' /dest/qsingle2
Hello "${name}"!
EOF
COPY <<"EOF" /dest/qdouble1
Hello '${name}'!
EOF
COPY <<"EOF" /dest/qdouble2
Hello "${name}"!
EOF

RUN <<EOF
greeting="Hello"
echo "${greeting} ${name}!" > /dest/r1
EOF
RUN <<EOF
name="new world"
echo "Hello ${name}!" > /dest/r2
EOF

FROM scratch
COPY --from=build /dest /
"#,
        &[
            ("c1", "Hello world!\n"),
            ("c2", "Hello ${name}!\n"),
            ("c3", "Hello ${name}!\n"),
            ("q1", "Hello 'world'!\n"),
            ("q2", "Hello \"world\"!\n"),
            ("qsingle1", "Hello '${name}'!\n"),
            ("qsingle2", "Hello \"${name}\"!\n"),
            ("qdouble1", "Hello '${name}'!\n"),
            ("qdouble2", "Hello \"${name}\"!\n"),
            ("r1", "Hello world!\n"),
            ("r2", "Hello new world!\n"),
        ],
    );
}

/// testOnBuildHeredoc (the base kept in the store instead of pushed)
#[test]
fn an_onbuild_heredoc_keeps_its_body() {
    let bk = Bk::new();
    let base = Context::new()
        .dockerfile("FROM busybox\nONBUILD RUN <<EOF\necho \"hello world\" >> /dest\nEOF\n");
    bk.build_ok(&base, &["-t", "onbuild:heredoc"]);
    let child = Context::new()
        .dockerfile("FROM onbuild:heredoc AS base\nFROM scratch\nCOPY --from=base /dest /dest\n");
    assert_eq!(read(&bk.export(&child, &[]), "dest"), "hello world\n");
}
