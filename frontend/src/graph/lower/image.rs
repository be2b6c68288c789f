//! Base images: what lowering asks an [`ImageResolver`], and the pin each
//! image source keeps (see the module docs of `lower`).

use std::fmt;

use super::{Lowerer, Platform};
use crate::error::{Error, ErrorKind};
use crate::graph::{Label, Origin, Source, VertexId};
use crate::span::Span;

/// The parts of a base image's config that lowering needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// `User`.
    pub user: String,
    /// `WorkingDir`.
    pub workdir: String,
    /// `Shell` (docker extension), empty for the default.
    pub shell: Vec<String>,
    /// `OnBuild` triggers, run at the start of a stage built on the image.
    pub onbuild: Vec<String>,
    /// The platform its config names (`os`, `architecture`, `variant`),
    /// when it names one: InvalidBaseImagePlatform compares it.
    pub platform: Option<super::Platform>,
}

/// A base image, as an [`ImageResolver`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The reference it resolved, as the resolver names it.
    pub reference: String,
    /// The digest the graph pins (`sha256:...`, the manifest's): what the
    /// solver runs, whatever the name points to by then.
    pub digest: String,
    /// What lowering needs of its config.
    pub config: ImageConfig,
}

/// Why an [`ImageResolver`] gave no image.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The resolver has no such image and does not fetch it (`--pull=never`
    /// without it in the store). Not an error of the Dockerfile: the image
    /// is lowered unpinned with an empty config, and the solver reports it
    /// missing when the step runs.
    #[error("image `{0}` is unknown")]
    Unknown(String),
    /// Resolving failed (a pull that failed): lowering stops with
    /// [`ErrorKind::ResolveImage`] at the line that names the image.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// The name is not a reference at all (`golang:`): lowering stops with
    /// [`ErrorKind::InvalidReference`] at the line that names it, whether
    /// or not anything would be pulled (BuildKit parses every base name).
    #[error("invalid reference format: {0}")]
    Invalid(String),
}

/// The error of a resolver that failed, carried by
/// [`ErrorKind::ResolveImage`]: shared, so that frontend errors stay
/// `Clone`; two are equal when they are the same error.
#[derive(Debug, Clone)]
pub struct ResolveFailure(pub std::sync::Arc<dyn std::error::Error + Send + Sync>);

impl fmt::Display for ResolveFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, formatter)
    }
}

impl std::error::Error for ResolveFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for ResolveFailure {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ResolveFailure {}

/// Looks up base images: their digest and config.
pub trait ImageResolver {
    /// The image `reference` names for `platform`. Called once per
    /// reference and platform in a build.
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<Resolved, ResolveError>;
}

impl Lowerer<'_> {
    /// The pinned digest and the config of image `reference` (the
    /// resolver is asked once per reference and platform). `span` is where
    /// it is named, for a resolver that fails.
    pub(super) fn resolve_image(
        &mut self,
        reference: &str,
        platform: &Platform,
        span: Span,
    ) -> Result<(Option<String>, ImageConfig), Error> {
        let memo = (reference.to_owned(), platform.to_string());
        if let Some(known) = self.resolved.get(&memo) {
            return Ok(known.clone());
        }
        let answer = match self.options.resolver {
            None => (None, ImageConfig::default()),
            Some(resolver) => match resolver.resolve(reference, platform) {
                Ok(resolved) => (Some(resolved.digest), resolved.config),
                Err(ResolveError::Unknown(_)) => (None, ImageConfig::default()),
                Err(ResolveError::Invalid(reason)) => {
                    return Err(Error::new(
                        ErrorKind::InvalidImageName {
                            reference: reference.to_owned(),
                            reason,
                        },
                        span,
                    ));
                }
                Err(ResolveError::Failed(error)) => {
                    return Err(Error::new(
                        ErrorKind::ResolveImage(ResolveFailure(error.into())),
                        span,
                    ));
                }
            },
        };
        self.resolved.insert(memo, answer.clone());
        Ok(answer)
    }

    /// The vertex of image `reference` (or scratch), pinned to what the
    /// resolver gives, with that image's config.
    pub(super) fn image_vertex(
        &mut self,
        reference: &str,
        platform: &Platform,
        stage: usize,
        origin: Option<Origin>,
        span: Span,
    ) -> Result<(VertexId, ImageConfig), Error> {
        let (source, config) = if reference.eq_ignore_ascii_case("scratch") {
            (Source::Scratch, ImageConfig::default())
        } else {
            let (pinned, config) = self.resolve_image(reference, platform, span)?;
            let source = Source::Image {
                reference: reference.to_owned(),
                platform: platform.to_string(),
                pinned,
            };
            (source, config)
        };
        let label = match &source {
            Source::Scratch => Label::Scratch,
            _ => Label::Image {
                reference: reference.to_owned(),
            },
        };
        Ok((self.source_vertex(source, stage, origin, label), config))
    }
}
