//! The build's inputs from the command line: the Dockerfile, read inside
//! its directory, and a context (or a Dockerfile) on standard input.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use strata_frontend::MAX_DOCKERFILE_SIZE;

use crate::cli::BuildArgs;
use crate::commands::Rendered;

/// A build context read from standard input, removed when dropped.
pub(crate) struct StdinContext {
    pub(crate) dir: std::path::PathBuf,
    /// Where the Dockerfile is, when standard input was the Dockerfile.
    pub(crate) dockerfile: Option<std::path::PathBuf>,
    /// The directory it is in, outside the context.
    dockerfile_dir: Option<std::path::PathBuf>,
}

impl StdinContext {
    pub(crate) fn read(
        store: &strata_solver::store::Store,
        may_be_dockerfile: bool,
    ) -> anyhow::Result<StdinContext> {
        let stdin = std::io::stdin().lock();
        StdinContext::read_from(store, stdin, may_be_dockerfile, "standard input")
    }

    /// The context `reader` gives (`from` names it in messages): a tar
    /// archive, compressed or not, unpacked; or else, when
    /// `may_be_dockerfile`, a Dockerfile, with an empty context (the
    /// caller says how messages name it: `BuildArgs::dockerfile_shown`).
    /// A URL's content is read so too, as docker reads `docker build URL`.
    pub(crate) fn read_from(
        store: &strata_solver::store::Store,
        mut reader: impl Read,
        may_be_dockerfile: bool,
        from: &str,
    ) -> anyhow::Result<StdinContext> {
        let dir = store.staging_dir("context")?;
        let mut context = StdinContext {
            dir: dir.clone(),
            dockerfile: None,
            dockerfile_dir: None,
        };
        let mut head = Vec::new();
        (&mut reader)
            .take(1 << 16)
            .read_to_end(&mut head)
            .with_context(|| format!("failed to read the build context from {from}"))?;
        let compressed =
            head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
        let reader = std::io::Cursor::new(head.clone()).chain(reader);
        if compressed || is_tar {
            let reader = strata_solver::image::decompressed(reader)?;
            strata_solver::layer::unpack(reader, &dir)
                .with_context(|| format!("failed to unpack the build context from {from}"))?;
            Ok(context)
        } else if may_be_dockerfile {
            let Some(text) = read_at_most(reader, None)
                .with_context(|| format!("failed to read the Dockerfile from {from}"))?
            else {
                return Err(too_large("<stdin>", None));
            };
            let dockerfile = context.beside(store, "Dockerfile")?;
            std::fs::write(&dockerfile, text)
                .with_context(|| format!("failed to write `{}`", dockerfile.display()))?;
            Ok(context)
        } else {
            bail!("standard input is not a tar archive: `-` as the context needs one")
        }
    }
}

impl StdinContext {
    /// `-f FILE` of an archive from a URL: the file, resolved inside the
    /// context (its links and `..` stay in it: the archive is not the
    /// user's to trust), copied beside it so that it is read as any
    /// Dockerfile and not added to the context. Removed with the context.
    pub(crate) fn copy_dockerfile(
        &mut self,
        store: &strata_solver::store::Store,
        file: &Path,
    ) -> anyhow::Result<std::path::PathBuf> {
        use strata_solver::confined::{Regular, Root};
        let root = Root::open(&self.dir)
            .map_err(|error| error.source)
            .with_context(|| format!("failed to open the context `{}`", self.dir.display()))?;
        let relative = file.strip_prefix("/").unwrap_or(file);
        let mut opened = match root.open_regular(relative) {
            Ok(Regular::File(opened)) => opened,
            Ok(_) => bail!(
                "failed to read Dockerfile `{}`: it is not a regular file of the context",
                file.display()
            ),
            Err(error) => {
                return Err(anyhow::Error::new(error.source)
                    .context(format!("failed to read Dockerfile `{}`", file.display())));
            }
        };
        let copy = self.beside(store, "Dockerfile")?;
        let mut out = std::fs::File::create(&copy)
            .with_context(|| format!("failed to write `{}`", copy.display()))?;
        // One byte over the limit, for the reader to refuse it on its size.
        std::io::copy(
            &mut (&mut opened).take(MAX_DOCKERFILE_SIZE as u64 + 1),
            &mut out,
        )
        .with_context(|| format!("failed to copy Dockerfile `{}`", file.display()))?;
        Ok(copy)
    }
}

impl StdinContext {
    /// The Dockerfile's path, `name` in a staging directory of its own
    /// (made now, held as the context's is): in the context, `COPY . /`
    /// would copy it.
    fn beside(
        &mut self,
        store: &strata_solver::store::Store,
        name: &str,
    ) -> anyhow::Result<std::path::PathBuf> {
        let dir = store.staging_dir("dockerfile")?;
        let path = dir.join(name);
        self.dockerfile_dir = Some(dir);
        self.dockerfile = Some(path.clone());
        Ok(path)
    }
}

impl Drop for StdinContext {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(dir) = &self.dockerfile_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The refusal of a Dockerfile over [`MAX_DOCKERFILE_SIZE`], before it is
/// read (on its size) or as soon as a read passes the limit.
fn too_large(name: &str, size: Option<u64>) -> anyhow::Error {
    const MIB: f64 = (1 << 20) as f64;
    let size = match size {
        Some(size) => format!("{:.1} MiB ({size} bytes)", size as f64 / MIB),
        None => "more than 16 MiB".to_owned(),
    };
    Rendered(format!(
        "error: Dockerfile `{name}` is {size}; strata reads Dockerfiles up to 16 MiB\n\n\
         hint: 16 MiB is BuildKit's limit too: its frontends read the Dockerfile in one \
         gRPC message, and those stop at 16 MiB\n"
    ))
    .into()
}

/// Up to [`MAX_DOCKERFILE_SIZE`] bytes of `reader`; `None` when it has more.
fn read_at_most(reader: impl Read, size: Option<u64>) -> std::io::Result<Option<Vec<u8>>> {
    // Room for the size the file has, and one byte to see that it did not
    // grow: a list that doubles as it reads would hold up to twice the
    // text, and copy it each time (16 MiB Dockerfiles exist, issue 16).
    let room = size.map_or(0, |size| size.min(MAX_DOCKERFILE_SIZE as u64) as usize + 1);
    let mut bytes = Vec::with_capacity(room);
    reader
        .take(MAX_DOCKERFILE_SIZE as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() <= MAX_DOCKERFILE_SIZE).then_some(bytes))
}

/// The Dockerfile of `context` when `-f` names none: `Dockerfile`, or
/// `dockerfile` when only that one is there (as BuildKit falls back).
pub(crate) fn default_dockerfile(context: &Path) -> std::path::PathBuf {
    let upper = context.join("Dockerfile");
    let lower = context.join("dockerfile");
    if std::fs::symlink_metadata(&upper).is_err() && std::fs::symlink_metadata(&lower).is_ok() {
        lower
    } else {
        upper
    }
}

pub(crate) fn read_dockerfile(args: &BuildArgs) -> anyhow::Result<(String, Vec<u8>)> {
    let path = match &args.file {
        Some(path) if path == Path::new("-") => {
            let name = "<stdin>";
            return match read_at_most(std::io::stdin().lock(), None)
                .context("failed to read the Dockerfile from standard input")?
            {
                Some(bytes) => Ok((name.to_owned(), bytes)),
                None => Err(too_large(name, None)),
            };
        }
        Some(path) => path.clone(),
        None => default_dockerfile(&args.context),
    };
    let name = match &args.dockerfile_shown {
        Some(shown) => shown.clone(),
        None => display_name(&path),
    };
    match read_inside_its_directory(&path) {
        Ok(Contents::Whole(bytes)) => Ok((name, bytes)),
        Ok(Contents::TooLarge(size)) => Err(too_large(&name, size)),
        Err(error) => Err(error.context(format!(
            "failed to read Dockerfile `{}`",
            display_name(&path)
        ))),
    }
}

/// What [`read_inside_its_directory`] found.
enum Contents {
    Whole(Vec<u8>),
    /// Over [`MAX_DOCKERFILE_SIZE`]: the size, when it was known before reading.
    TooLarge(Option<u64>),
}

/// Read the Dockerfile at `path` as BuildKit does: its directory (the
/// context, or the directory `-f` names) is the root, and the file is
/// resolved inside it, symbolic links included (`strata_solver::confined`: `openat2` with
/// `RESOLVE_IN_ROOT`): `Dockerfile -> /etc/shadow` names the directory's own
/// `etc/shadow`, never the host's, and `..` stops at the directory. Only a
/// regular file is read, and only up to [`MAX_DOCKERFILE_SIZE`]: a larger
/// one is refused on its size, unread. The directory itself is the user's
/// to name.
fn read_inside_its_directory(path: &Path) -> anyhow::Result<Contents> {
    use strata_solver::confined::{Regular, Root};
    let Some(name) = path.file_name() else {
        bail!("it is not a file name");
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let root = Root::open(dir)
        .map_err(|error| error.source)
        .with_context(|| format!("failed to open its directory `{}`", dir.display()))?;
    let missing = |error: std::io::Error| -> anyhow::Error {
        match root.read_link(Path::new(name)) {
            Some(target) => anyhow::Error::new(error).context(format!(
                "it is a symbolic link to `{}`, which is resolved inside `{}` (the Dockerfile's \
                 directory), as BuildKit resolves it, and is not there",
                target.display(),
                dir.display()
            )),
            None => error.into(),
        }
    };
    let file = match root.open_regular(Path::new(name)) {
        Ok(Regular::File(file)) => file,
        Ok(Regular::Missing) => {
            // ENOENT, as a missing Dockerfile has always been reported.
            return Err(missing(std::io::Error::from_raw_os_error(2)));
        }
        // Checked before it is opened: a fifo would wait forever, a device
        // would be the host's.
        Ok(Regular::Other) => bail!("it is not a regular file"),
        Err(error) => return Err(missing(error.source)),
    };
    let size = file.metadata()?.len();
    if size > MAX_DOCKERFILE_SIZE as u64 {
        return Ok(Contents::TooLarge(Some(size)));
    }
    // The file may grow between the check and the read.
    Ok(match read_at_most(file, Some(size))? {
        Some(bytes) => Contents::Whole(bytes),
        None => Contents::TooLarge(None),
    })
}

fn display_name(path: &Path) -> String {
    path.strip_prefix("./")
        .unwrap_or(path)
        .display()
        .to_string()
}
