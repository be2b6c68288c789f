//! `--output`: where a build's result goes besides the store, in docker's
//! spellings (`type=KIND,dest=PATH,...`, `DIR`, `-`), and the exporters
//! that write it.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::request::FlagError;
use crate::error::PathError;
use crate::image::{self, ImageError};
use crate::layer::Compression;
use crate::store::{ImageRecord, Store};

/// What an output writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// An OCI layout: a tar archive, or a directory with `tar=false`.
    Oci {
        /// Whether it is one archive.
        tar: bool,
    },
    /// docker load's archive.
    Docker,
    /// The final filesystem, as a directory.
    Local,
    /// The final filesystem, as one tar archive.
    Tar,
    /// The local store (always written anyway), pushed with `push=true`.
    Image,
    /// Pushed to a registry (`type=registry,name=REF`).
    Registry,
}

/// One `--output`.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// The spec as written, for messages.
    pub spec: String,
    /// What it writes.
    pub kind: OutputKind,
    /// Where (`-` is standard output); none for image and registry.
    pub dest: Option<PathBuf>,
    /// `compression=`: how the layers the build makes are compressed.
    pub compression: Option<Compression>,
    /// `name=`: where to push.
    pub names: Vec<String>,
    /// Whether to push to `names`.
    pub push: bool,
}

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// An archive asked for on a terminal.
    #[error("refusing to write an archive to a terminal: redirect standard output")]
    Terminal,
    /// `type=oci,dest=-`.
    #[error("type=oci to standard output is not supported: give dest=FILE")]
    OciToStdout,
    /// Writing the image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Writing the file failed.
    #[error(transparent)]
    File(#[from] PathError),
}

fn boolean(spec: &str, key: &str, value: &str) -> Result<bool, FlagError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(FlagError::invalid(
            "--output",
            spec,
            format!("{key} is true or false"),
        )),
    }
}

impl FromStr for OutputSpec {
    type Err = FlagError;

    fn from_str(spec: &str) -> Result<OutputSpec, FlagError> {
        let invalid = |reason: String| FlagError::invalid("--output", spec, reason);
        if spec.is_empty() {
            return Err(FlagError::EmptyOutput);
        }
        if !spec.contains('=') {
            let kind = if spec == "-" {
                OutputKind::Tar
            } else {
                OutputKind::Local
            };
            return Ok(OutputSpec {
                spec: spec.to_owned(),
                kind,
                dest: Some(spec.into()),
                compression: None,
                names: Vec::new(),
                push: false,
            });
        }
        let mut kind = None;
        let mut dest = None;
        let mut tar = true;
        let mut compression = None;
        let mut names = Vec::new();
        let mut push = None;
        let fields = strata_frontend::graph::csv_fields(spec)
            .ok_or_else(|| invalid("a quote is not closed".to_owned()))?;
        for field in &fields {
            let field = field.as_str();
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| invalid(format!("`{field}` is not KEY=VALUE")))?;
            match key {
                "type" => kind = Some(value.to_owned()),
                "dest" if value.is_empty() => return Err(invalid("dest= is empty".to_owned())),
                "dest" => dest = Some(PathBuf::from(value)),
                "tar" => tar = boolean(spec, key, value)?,
                "compression" => {
                    compression = Some(Compression::parse(value).ok_or_else(|| {
                        invalid("compression is gzip, zstd or uncompressed".to_owned())
                    })?)
                }
                // `"name=a:1,a:2"`: one field, several names (buildx's).
                "name" => names.extend(value.split(',').map(str::to_owned)),
                "push" => push = Some(boolean(spec, key, value)?),
                "oci-mediatypes" => {}
                other => return Err(invalid(format!("unknown key `{other}`"))),
            }
        }
        let kind = match kind.as_deref() {
            Some("oci") => OutputKind::Oci { tar },
            Some("docker") => OutputKind::Docker,
            Some("local") => OutputKind::Local,
            Some("tar") => OutputKind::Tar,
            Some("image") => OutputKind::Image,
            Some("registry") => OutputKind::Registry,
            Some(other) => {
                return Err(invalid(format!(
                    "type `{other}` is not one of oci, docker, local, tar, image, registry"
                )));
            }
            None => return Err(invalid("type= is missing".to_owned())),
        };
        let push = push.unwrap_or(matches!(kind, OutputKind::Registry));
        if dest.is_none() && !matches!(kind, OutputKind::Image | OutputKind::Registry) {
            return Err(invalid("dest= is missing".to_owned()));
        }
        if push && names.is_empty() {
            return Err(invalid("name= is missing (where to push)".to_owned()));
        }
        for name in &names {
            image::Reference::parse(name)?;
        }
        Ok(OutputSpec {
            spec: spec.to_owned(),
            kind,
            dest,
            compression,
            names,
            push,
        })
    }
}

impl OutputSpec {
    /// Whether this output writes to standard output.
    pub fn to_stdout(&self) -> bool {
        self.dest.as_deref() == Some(Path::new("-"))
    }

    /// Write `image` (named `tags`) where this output says.
    pub fn write(
        &self,
        store: &Store,
        image: &ImageRecord,
        tags: &[String],
        epoch: Option<u64>,
    ) -> Result<(), OutputError> {
        // The output's own `name=`s, else the build's tags (as buildx gives
        // `-t` to the exporter).
        let names = if self.names.is_empty() {
            tags.to_vec()
        } else {
            self.names.clone()
        };
        let images = [(image.clone(), names)];
        let Some(dest) = &self.dest else {
            return Ok(());
        };
        let stdout = self.to_stdout();
        if stdout && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            return Err(OutputError::Terminal);
        }
        match self.kind {
            OutputKind::Image | OutputKind::Registry => {}
            OutputKind::Docker if stdout => {
                image::save_docker_archive(store, &images, std::io::stdout().lock())?
            }
            OutputKind::Docker => image::save_docker_archive_file(store, &images, dest)?,
            OutputKind::Oci { .. } if stdout => return Err(OutputError::OciToStdout),
            OutputKind::Oci { tar } => image::save_oci(store, &images, dest, tar)?,
            OutputKind::Local => image::export_rootfs(store, image, dest)?,
            OutputKind::Tar if stdout => {
                image::export_rootfs_tar(store, image, std::io::stdout().lock(), epoch)?
            }
            OutputKind::Tar => {
                let file = std::fs::File::create(dest)
                    .map_err(PathError::at::<OutputError>("create", dest))?;
                let mut out = std::io::BufWriter::new(file);
                image::export_rootfs_tar(store, image, &mut out, epoch)?;
                std::io::Write::flush(&mut out)
                    .map_err(PathError::at::<OutputError>("write", dest))?;
            }
        }
        Ok(())
    }
}
