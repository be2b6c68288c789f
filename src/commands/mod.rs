//! One module per subcommand.

pub(crate) mod build;

/// An error already rendered in full (a Dockerfile diagnostic with its
/// snippet): printed as it is, not wrapped in `error:` again.
#[derive(Debug)]
pub(crate) struct Rendered(pub(crate) String);

impl std::fmt::Display for Rendered {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for Rendered {}
