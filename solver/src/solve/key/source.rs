//! Keys of sources: the empty filesystem, the build context and images.
//!
//! | source | parts |
//! | --- | --- |
//! | scratch | `scratch` |
//! | the build context | `context` (what is read of it is hashed by the COPY, ADD or bind mount that reads it) |
//! | an image | `image`, its manifest digest |

use super::{Key, StepInputs, key};

/// `FROM scratch`.
pub(crate) fn scratch() -> Key {
    key(&["scratch"])
}

/// The build context.
pub(crate) fn context() -> Key {
    key(&["context"])
}

/// An image, by the manifest digest the build runs; and its inputs, so
/// that a change of base is named as the cause of what follows.
pub(crate) fn image(reference: &str, manifest: &str) -> (Key, StepInputs) {
    let inputs = StepInputs {
        instruction: format!("FROM {reference}"),
        base: Some(manifest.to_owned()),
        ..StepInputs::default()
    };
    (key(&["image", manifest]), inputs)
}
