//! The build's inputs from the command line: the Dockerfile, read inside
//! its directory, and a context (or a Dockerfile) on standard input.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};

use crate::cli::BuildArgs;

/// A build context read from standard input, removed when dropped.
pub(crate) struct StdinContext {
    pub(crate) dir: std::path::PathBuf,
    /// Where the Dockerfile is, when standard input was the Dockerfile.
    pub(crate) dockerfile: Option<std::path::PathBuf>,
}

impl StdinContext {
    pub(crate) fn read(
        store: &strata_solver::store::Store,
        may_be_dockerfile: bool,
    ) -> anyhow::Result<StdinContext> {
        let dir = store.staging_dir("context")?;
        let mut context = StdinContext {
            dir: dir.clone(),
            dockerfile: None,
        };
        let mut head = Vec::new();
        let mut stdin = std::io::stdin().lock();
        (&mut stdin)
            .take(1 << 16)
            .read_to_end(&mut head)
            .context("failed to read the build context from standard input")?;
        let compressed =
            head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
        let is_tar = head.len() >= 262 && &head[257..262] == b"ustar";
        let reader = std::io::Cursor::new(head.clone()).chain(stdin);
        if compressed || is_tar {
            let reader = strata_solver::image::decompressed(reader)?;
            strata_solver::layer::unpack(reader, &dir)
                .context("failed to unpack the build context from standard input")?;
            Ok(context)
        } else if may_be_dockerfile {
            let mut text = Vec::new();
            let mut reader = reader;
            reader
                .read_to_end(&mut text)
                .context("failed to read the Dockerfile from standard input")?;
            let dockerfile = dir.join(".strata-stdin.Dockerfile");
            std::fs::write(&dockerfile, text)
                .with_context(|| format!("failed to write `{}`", dockerfile.display()))?;
            context.dockerfile = Some(dockerfile);
            Ok(context)
        } else {
            bail!("standard input is not a tar archive: `-` as the context needs one")
        }
    }
}

impl Drop for StdinContext {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn read_dockerfile(args: &BuildArgs) -> anyhow::Result<(String, Vec<u8>)> {
    let path = match &args.file {
        Some(path) if path == Path::new("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("failed to read the Dockerfile from standard input")?;
            return Ok(("<stdin>".to_owned(), bytes));
        }
        Some(path) => path.clone(),
        None => args.context.join("Dockerfile"),
    };
    let bytes = read_inside_its_directory(&path)
        .with_context(|| format!("failed to read Dockerfile `{}`", display_name(&path)))?;
    let name = if path.ends_with(".strata-stdin.Dockerfile") {
        "<stdin>".to_owned()
    } else {
        display_name(&path)
    };
    Ok((name, bytes))
}

/// Read the Dockerfile at `path` as BuildKit does: its directory (the
/// context, or the directory `-f` names) is the root, and the file is
/// resolved inside it, symbolic links included (`strata_solver::confined`: `openat2` with
/// `RESOLVE_IN_ROOT`): `Dockerfile -> /etc/shadow` names the directory's own
/// `etc/shadow`, never the host's, and `..` stops at the directory. Only a
/// regular file is read. The directory itself is the user's to name.
fn read_inside_its_directory(path: &Path) -> anyhow::Result<Vec<u8>> {
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
    let mut file = match root.open_regular(Path::new(name)) {
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
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn display_name(path: &Path) -> String {
    path.strip_prefix("./")
        .unwrap_or(path)
        .display()
        .to_string()
}
