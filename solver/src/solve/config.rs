//! The image a stage makes: its base's config with the stage's edits, as
//! docker applies them, and a history entry per step; and WORKDIR's
//! directories.
//!
//! The config is kept as JSON, not as `oci-spec`'s type: docker's
//! extensions (`Healthcheck`, `OnBuild`, `Shell`) are not OCI fields, and
//! images carry them.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use serde_json::{Map, Value, json};
use strata_frontend::graph::{ConfigEdit, Platform};

use super::{BuildError, BuildOptions, WorkdirError};
use crate::exec::{copy_lookup, resolve_user};
use crate::image;
use crate::store::{LayerRecord, Store};

/// BuildKit's history comment for Dockerfile steps.
const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// A stage's image config, being built.
pub(crate) struct Assembly {
    config: Value,
    /// Whether this stage set CMD (ENTRYPOINT clears an inherited CMD).
    cmd_set: bool,
}

impl Assembly {
    /// Start from the base image's config (`None` for scratch, which is
    /// for `platform`, or this machine).
    pub(crate) fn new(base: Option<ImageConfiguration>, platform: Option<&Platform>) -> Assembly {
        let config = match base {
            Some(base) => serde_json::to_value(base).expect("configs serialize"),
            None => {
                let host = platform.cloned().unwrap_or_else(Platform::host);
                // BuildKit's empty image: WorkingDir `/` (and PATH, below).
                let mut config = json!({
                    "architecture": host.architecture,
                    "os": host.os,
                    "config": { "WorkingDir": "/" },
                    "rootfs": { "type": "layers", "diff_ids": [] },
                    "history": [],
                });
                if let Some(variant) = host.variant {
                    config["variant"] = variant.into();
                }
                config
            }
        };
        let mut assembly = Assembly {
            config,
            cmd_set: false,
        };
        // As BuildKit: a stage whose base sets no PATH gets the default.
        let has_path = assembly
            .inner()
            .get("Env")
            .and_then(Value::as_array)
            .is_some_and(|env| {
                env.iter().any(|entry| {
                    entry
                        .as_str()
                        .is_some_and(|entry| entry.starts_with("PATH="))
                })
            });
        if !has_path {
            assembly.edit(&ConfigEdit::Env(vec![(
                "PATH".to_owned(),
                strata_frontend::graph::DEFAULT_PATH.to_owned(),
            )]));
        }
        assembly
    }

    fn inner(&mut self) -> &mut Map<String, Value> {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        self.config["config"]
            .as_object_mut()
            .expect("made an object above")
    }

    fn map(&mut self, key: &str) -> &mut Map<String, Value> {
        let inner = self.inner();
        if !inner.get(key).is_some_and(Value::is_object) {
            inner.insert(key.to_owned(), json!({}));
        }
        inner[key].as_object_mut().expect("made an object above")
    }

    /// Apply one config instruction.
    pub(crate) fn edit(&mut self, edit: &ConfigEdit) {
        match edit {
            ConfigEdit::Env(pairs) => {
                let inner = self.inner();
                let mut env: Vec<String> = inner
                    .get("Env")
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .filter_map(|item| item.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                for (key, value) in pairs {
                    let entry = format!("{key}={value}");
                    match env.iter_mut().find(|existing| {
                        existing.split_once('=').map(|(name, _)| name) == Some(key)
                    }) {
                        Some(existing) => *existing = entry,
                        None => env.push(entry),
                    }
                }
                inner.insert("Env".to_owned(), json!(env));
            }
            ConfigEdit::Label(pairs) => {
                let labels = self.map("Labels");
                for (key, value) in pairs {
                    labels.insert(key.clone(), json!(value));
                }
            }
            ConfigEdit::Cmd(args) => {
                self.cmd_set = true;
                self.inner().insert("Cmd".to_owned(), json!(args));
            }
            ConfigEdit::Entrypoint(args) => {
                let cmd_set = self.cmd_set;
                let inner = self.inner();
                inner.insert("Entrypoint".to_owned(), json!(args));
                // As BuildKit: an ENTRYPOINT drops the CMD inherited from
                // the base, not one this stage set.
                if !cmd_set {
                    inner.remove("Cmd");
                }
            }
            ConfigEdit::Workdir(path) => {
                self.inner().insert("WorkingDir".to_owned(), json!(path));
            }
            ConfigEdit::User(user) => {
                self.inner().insert("User".to_owned(), json!(user));
            }
            ConfigEdit::Expose(ports) => {
                let exposed = self.map("ExposedPorts");
                for port in ports {
                    let port = if port.contains('/') {
                        port.clone()
                    } else {
                        format!("{port}/tcp")
                    };
                    exposed.insert(port, json!({}));
                }
            }
            ConfigEdit::Volume(paths) => {
                let volumes = self.map("Volumes");
                for path in paths {
                    volumes.insert(path.clone(), json!({}));
                }
            }
            ConfigEdit::Shell(args) => {
                self.inner().insert("Shell".to_owned(), json!(args));
            }
            ConfigEdit::StopSignal(signal) => {
                self.inner().insert("StopSignal".to_owned(), json!(signal));
            }
            ConfigEdit::Healthcheck(health) => {
                let mut check = json!({ "Test": health.test });
                for (key, value) in [
                    ("Interval", health.interval),
                    ("Timeout", health.timeout),
                    ("StartPeriod", health.start_period),
                    ("StartInterval", health.start_interval),
                    ("Retries", health.retries),
                ] {
                    if value != 0 {
                        check[key] = json!(value);
                    }
                }
                self.inner().insert("Healthcheck".to_owned(), check);
            }
            ConfigEdit::Onbuild(trigger) => {
                let inner = self.inner();
                let mut triggers = inner
                    .get("OnBuild")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                triggers.push(json!(trigger));
                inner.insert("OnBuild".to_owned(), Value::Array(triggers));
            }
            ConfigEdit::Arg(_) => {}
            ConfigEdit::ClearOnbuild => {
                self.inner().remove("OnBuild");
            }
            ConfigEdit::Maintainer(name) => {
                self.config["author"] = json!(name);
            }
        }
    }

    /// Add a history entry.
    pub(crate) fn history(&mut self, created_by: &str, empty_layer: bool, created: &str) {
        let mut entry = json!({
            "created": created,
            "created_by": created_by,
            "comment": HISTORY_COMMENT,
        });
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        match self.config["history"].as_array_mut() {
            Some(history) => history.push(entry),
            None => self.config["history"] = json!([entry]),
        }
    }

    /// `--label`s, applied after everything else.
    pub(crate) fn labels(&mut self, labels: &[(String, String)]) {
        if labels.is_empty() {
            return;
        }
        let map = self.map("Labels");
        for (key, value) in labels {
            map.insert(key.clone(), json!(value));
        }
    }

    /// The finished config for an image of `layers`.
    pub(crate) fn finish(mut self, layers: &[LayerRecord], created: &str) -> Value {
        self.config["created"] = json!(created);
        self.config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": layers.iter().map(|layer| layer.diff_id.to_string()).collect::<Vec<_>>(),
        });
        self.config
    }
}

/// WORKDIR's directory: a layer holding `path` and any missing parent
/// (new directories 0755, owned by `user` as BuildKit does; existing
/// parents as they are), or `None` when it exists already.
pub(crate) fn mkdir_layer(
    store: &Store,
    lowers: &[std::path::PathBuf],
    path: &str,
    user: &str,
    options: &BuildOptions,
) -> Result<Option<LayerRecord>, BuildError> {
    // The graph's paths are clean, but the solver does not rely on it: `..`
    // stops at `/`, as inside the container.
    let relative = &crate::confined::clean(Path::new(path));
    if relative.as_os_str().is_empty() {
        return Ok(None);
    }
    if copy_lookup(lowers, relative)
        .and_then(|found| std::fs::symlink_metadata(found).ok())
        .is_some_and(|meta| meta.is_dir())
    {
        return Ok(None);
    }
    let workdir = |source: WorkdirError| BuildError::Workdir {
        path: path.to_owned(),
        source,
    };
    let (passwd, group) =
        super::files::account_files(lowers).map_err(|error| workdir(error.into()))?;
    let owner = resolve_user(&passwd, &group, user).map_err(|error| workdir(error.into()))?;
    let staging = store
        .staging_dir("mkdir")
        .map_err(image::ImageError::from)?;
    let made = (|| -> Result<(), BuildError> {
        let io = |what: &'static str, target: &Path| {
            let target = target.to_path_buf();
            move |error: std::io::Error| {
                BuildError::Image(image::ImageError::Io(crate::error::PathError {
                    operation: what,
                    path: target,
                    source: error,
                }))
            }
        };
        let mut dir_times = Vec::new();
        // Staging is written through the confined resolver like any root
        // whose content a build decides.
        let root = crate::confined::Root::open(&staging).map_err(image::ImageError::from)?;
        let mut current = root.top().map_err(image::ImageError::from)?;
        let mut ancestor = std::path::PathBuf::new();
        for part in relative.iter() {
            let name = part;
            ancestor.push(name);
            match copy_lookup(lowers, &ancestor) {
                Some(existing) => {
                    let meta =
                        std::fs::symlink_metadata(&existing).map_err(io("inspect", &existing))?;
                    if !meta.is_dir() {
                        return Err(workdir(WorkdirError::NotADirectory {
                            ancestor,
                            symlink: meta.file_type().is_symlink(),
                        }));
                    }
                    // Kept as it is: its owner, mode and times.
                    current
                        .mkdir(name, 0o700)
                        .map_err(image::ImageError::from)?;
                    let _ = current.chown(
                        name,
                        std::os::unix::fs::MetadataExt::uid(&meta),
                        std::os::unix::fs::MetadataExt::gid(&meta),
                    );
                    current
                        .chmod(name, std::os::unix::fs::MetadataExt::mode(&meta) & 0o7777)
                        .map_err(image::ImageError::from)?;
                    use std::os::unix::fs::MetadataExt;
                    let times = (
                        (meta.atime(), meta.atime_nsec()),
                        (meta.mtime(), meta.mtime_nsec()),
                    );
                    dir_times.push((ancestor.clone(), times));
                }
                None => {
                    current
                        .mkdir(name, 0o700)
                        .map_err(image::ImageError::from)?;
                    current
                        .chmod(name, 0o755)
                        .map_err(image::ImageError::from)?;
                    current
                        .chown(name, owner.uid, owner.gid)
                        .map_err(io("set the owner of", &current.path(name)))?;
                }
            }
            current = current.open_dir(name).map_err(image::ImageError::from)?;
        }
        // Deepest first, once nothing more is made inside.
        for (ancestor, (accessed, modified)) in dir_times.into_iter().rev() {
            if let Some((dir, name)) = root
                .parent(&ancestor, crate::confined::Make::Never)
                .map_err(image::ImageError::from)?
            {
                dir.set_times(&name, accessed, modified)
                    .map_err(image::ImageError::from)?;
            }
        }
        Ok(())
    })();
    let result = made.and_then(|()| {
        crate::layer::store_layer(
            store,
            &staging,
            options.compression,
            options.epoch,
            &crate::layer::Owners::new(),
        )
        .map_err(|error| BuildError::from(image::ImageError::from(error)))
    });
    crate::fault::point(crate::fault::Kind::Unlink, &staging);
    let _ = std::fs::remove_dir_all(&staging);
    Ok(Some(result?.0))
}
