//! `frontend/dockerfile/exclude_patterns_test.go` (the local context part;
//! its git-context part needs git contexts).

use super::{Bk, symlink};
use crate::support::Context;

/// testExcludedFilesOnCopy
#[test]
fn copy_and_add_exclude_patterns() {
    let bk = Bk::new();
    let context = Context::new()
        .dockerfile(
            "# ignore all the image files
FROM scratch as builder1
COPY --exclude=*/*.png --exclude=*/*.jpeg . /1

# ignore all document files
FROM scratch as builder2
COPY --exclude=*/*.pdf --exclude=*/*.txt . /2

# ignore all mp3 files
FROM scratch as builder3
ADD --exclude=*.mp3 dir3/ /3/

FROM scratch as builder4
COPY --exclude=*.mp3 --exclude=*.jpeg --exclude=*.png --exclude=*.pdf --exclude=*.txt dir* /4/

FROM scratch as builder5
ADD --exclude=*.mp* --exclude=*.jpeg --exclude=*.png --exclude=*.pdf dir* /5

FROM scratch as builder6
ADD --exclude=* dir* /6

FROM scratch
COPY --from=builder1 / /builder1
COPY --from=builder2 / /builder2
COPY --from=builder3 / /builder3
COPY --from=builder4 / /builder4
COPY --from=builder5 / /builder5
COPY --from=builder6 / /builder6
",
        )
        .file("dir1/file-101.png", "2")
        .file("dir1/file-102.txt", "3")
        .file("dir1/file-103.jpeg", "4")
        .file("dir2/file-201.pdf", "6")
        .file("dir2/file-202.jpeg", "7")
        .file("dir2/file-203.png", "8")
        .file("dir3/file-301.mp3", "9")
        .file("dir3/file-302.mpeg", "10")
        .file("dir4/file-401.txt", "11");
    symlink(&context, "file-401.txt", "dir4/file-402.txt");
    symlink(&context, "file-404.txt", "dir4/file-403.txt");
    let out = bk.export(&context, &[]);
    let kept = |path: &str| -> Option<String> {
        let full = out.path().join("out").join(path);
        let meta = std::fs::symlink_metadata(&full).ok()?;
        Some(if meta.file_type().is_symlink() {
            std::fs::read_link(&full).unwrap().display().to_string()
        } else {
            std::fs::read_to_string(&full).unwrap()
        })
    };
    let cases: &[(&str, Option<&str>)] = &[
        ("builder1/1/dir1/file-101.png", None),
        ("builder1/1/dir1/file-102.txt", Some("3")),
        ("builder1/1/dir1/file-103.jpeg", None),
        ("builder1/1/dir2/file-201.pdf", Some("6")),
        ("builder1/1/dir2/file-202.jpeg", None),
        ("builder1/1/dir2/file-203.png", None),
        ("builder1/1/dir3/file-301.mp3", Some("9")),
        ("builder1/1/dir3/file-302.mpeg", Some("10")),
        ("builder1/1/dir4/file-401.txt", Some("11")),
        ("builder1/1/dir4/file-402.txt", Some("file-401.txt")),
        ("builder1/1/dir4/file-403.txt", Some("file-404.txt")),
        ("builder2/2/dir1/file-101.png", Some("2")),
        ("builder2/2/dir1/file-102.txt", None),
        ("builder2/2/dir1/file-103.jpeg", Some("4")),
        ("builder2/2/dir2/file-201.pdf", None),
        ("builder2/2/dir2/file-202.jpeg", Some("7")),
        ("builder2/2/dir2/file-203.png", Some("8")),
        ("builder2/2/dir3/file-301.mp3", Some("9")),
        ("builder2/2/dir3/file-302.mpeg", Some("10")),
        ("builder2/2/dir4/file-401.txt", None),
        ("builder2/2/dir4/file-402.txt", None),
        ("builder2/2/dir4/file-403.txt", None),
        ("builder3/3/file-301.mp3", None),
        ("builder3/3/file-302.mpeg", Some("10")),
        ("builder4/4/file-101.png", None),
        ("builder4/4/file-102.txt", None),
        ("builder4/4/file-103.jpeg", None),
        ("builder4/4/file-201.pdf", None),
        ("builder4/4/file-202.jpeg", None),
        ("builder4/4/file-203.png", None),
        ("builder4/4/file-301.mp3", None),
        ("builder4/4/file-302.mpeg", Some("10")),
        ("builder4/4/dir4/file-401.txt", None),
        ("builder4/4/dir4/file-402.txt", None),
        ("builder4/4/dir4/file-403.txt", None),
        ("builder5/5/file-101.png", None),
        ("builder5/5/file-102.txt", Some("3")),
        ("builder5/5/file-103.jpeg", None),
        ("builder5/5/file-201.pdf", None),
        ("builder5/5/file-202.jpeg", None),
        ("builder5/5/file-203.png", None),
        ("builder5/5/file-301.mp3", None),
        ("builder5/5/file-302.mpeg", None),
        ("builder5/5/file-401.txt", Some("11")),
        ("builder5/5/file-402.txt", Some("file-401.txt")),
        ("builder5/5/file-403.txt", Some("file-404.txt")),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(path, expected)| kept(path).as_deref() != *expected)
        .map(|(path, expected)| format!("{path}: expected {expected:?}, got {:?}", kept(path)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let six = out.path().join("out/builder6/6");
    assert!(
        std::fs::read_dir(&six).map_or(true, |mut dir| dir.next().is_none()),
        "builder6 copied something"
    );
}
