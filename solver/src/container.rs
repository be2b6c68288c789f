//! One-shot runs of images (`strata run`) and the containers they leave
//! when asked to (`--rm=false`), which `strata commit` turns into images.
//!
//! A kept container is its run directory moved to `containers/<id>/`
//! ([`layout::CONTAINERS`]), with `container.json` beside the changes.
//! Images that containers use count as in use: `rmi` refuses them without
//! force and `prune` keeps them.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::exec::{Changes, ChangesRecord, ExecError, Network, RunSpec};
use crate::image::{self, ImageError};
use crate::layer::Compression;
use crate::store::{ImageRecord, Store, layout};

const RECORD: &str = "container.json";

/// A kept container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Its name (`--name`, else the short ID).
    pub name: String,
    /// The image it ran.
    pub image: Digest,
    /// The name the image was given on the command line.
    pub image_name: String,
    /// The command it ran.
    pub args: Vec<String>,
    /// When it was made (RFC 3339).
    pub created: String,
    /// Its exit code.
    pub exit_code: i32,
    /// Where its changes are.
    pub changes: ChangesRecord,
}

/// What went wrong with a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// No container by that name or ID.
    #[error("no such container: `{0}`")]
    Unknown(String),
    /// A name already taken.
    #[error("the container name `{0}` is already in use")]
    NameInUse(String),
    /// An ID prefix matching several containers.
    #[error("container ID prefix `{0}` is ambiguous")]
    Ambiguous(String),
    /// Nothing to run.
    #[error("no command specified: the image has neither ENTRYPOINT nor CMD, and none was given")]
    NoCommand,
    /// Running failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// An image operation failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] crate::error::PathError),
    /// An unreadable record.
    #[error("invalid container record {path}: {source}")]
    Json {
        /// The record.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// `strata run`'s choices over the image's config.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces the image's CMD (after the entrypoint).
    pub command: Vec<String>,
    /// Replaces the image's ENTRYPOINT (and drops its CMD, as docker does).
    pub entrypoint: Option<String>,
    /// `KEY=value` added to (or replacing in) the image's environment.
    pub env: Vec<String>,
    /// Replaces the image's USER.
    pub user: Option<String>,
    /// Replaces the image's WORKDIR.
    pub workdir: Option<String>,
    /// The network.
    pub network: Network,
    /// Host name (default: the container's short ID).
    pub hostname: Option<String>,
}

/// The run spec for `image`'s config with `options` applied, as `docker
/// run` computes it.
pub fn spec_for(
    config: &oci_spec::image::ImageConfiguration,
    options: &RunOptions,
) -> Result<RunSpec, ContainerError> {
    let empty = oci_spec::image::Config::default();
    let image = config.config().as_ref().unwrap_or(&empty);
    let entrypoint: Vec<String> = match &options.entrypoint {
        Some(entrypoint) if entrypoint.is_empty() => Vec::new(),
        Some(entrypoint) => vec![entrypoint.clone()],
        None => image.entrypoint().clone().unwrap_or_default(),
    };
    let command = if !options.command.is_empty() {
        options.command.clone()
    } else if options.entrypoint.is_some() {
        Vec::new()
    } else {
        image.cmd().clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(command).collect();
    if args.is_empty() {
        return Err(ContainerError::NoCommand);
    }
    let mut env = image.env().clone().unwrap_or_default();
    for entry in &options.env {
        let key = entry.split_once('=').map_or(entry.as_str(), |(key, _)| key);
        env.retain(|existing| existing.split_once('=').map(|(name, _)| name) != Some(key));
        env.push(entry.clone());
    }
    let hostname = options.hostname.clone().unwrap_or_default();
    // docker run sets HOSTNAME (a build step gets no such variable).
    if !hostname.is_empty()
        && !env
            .iter()
            .any(|entry| entry.split_once('=').map(|(key, _)| key) == Some("HOSTNAME"))
    {
        env.push(format!("HOSTNAME={hostname}"));
    }
    Ok(RunSpec {
        args,
        env,
        user: options
            .user
            .clone()
            .or_else(|| image.user().clone())
            .unwrap_or_default(),
        cwd: options
            .workdir
            .clone()
            .or_else(|| image.working_dir().clone())
            .unwrap_or_default(),
        network: options.network,
        hostname,
        mounts: Vec::new(),
        insecure: false,
        shm_size: None,
        ulimits: Vec::new(),
    })
}

/// A fresh container ID: 64 hex digits from the kernel's random source.
pub fn new_id() -> Result<String, ContainerError> {
    let mut bytes = [0u8; 32];
    let path = std::path::Path::new("/dev/urandom");
    std::io::Read::read_exact(
        &mut std::fs::File::open(path).map_err(io("open", path))?,
        &mut bytes,
    )
    .map_err(io("read", path))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn io<'a>(
    operation: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> ContainerError + 'a {
    crate::error::PathError::at(operation, path)
}

fn dir(store: &Store, id: &str) -> PathBuf {
    store.path(layout::CONTAINERS).join(id)
}

/// Keep `changes` as the container `container`.
pub fn keep(store: &Store, container: &Container, changes: Changes) -> Result<(), ContainerError> {
    if list(store)?
        .iter()
        .any(|other| other.name == container.name)
    {
        return Err(ContainerError::NameInUse(container.name.clone()));
    }
    let target = dir(store, &container.id);
    changes.keep(&target)?;
    let path = target.join(RECORD);
    let text = serde_json::to_vec_pretty(container).expect("records serialize");
    crate::atomic::write(&path, &text, Default::default())?;
    Ok(())
}

/// Every kept container, oldest first.
pub fn list(store: &Store) -> Result<Vec<Container>, ContainerError> {
    let root = store.path(layout::CONTAINERS);
    let entries = match std::fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io("read", &root)(error)),
    };
    let mut containers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io("read", &root))?;
        let path = entry.path().join(RECORD);
        // A directory without its record is a keep that was interrupted.
        let Ok(text) = std::fs::read(&path) else {
            continue;
        };
        let container: Container = serde_json::from_slice(&text)
            .map_err(|source| ContainerError::Json { path, source })?;
        containers.push(container);
    }
    containers.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    Ok(containers)
}

/// A container by name, ID or unique ID prefix.
pub fn find(store: &Store, wanted: &str) -> Result<Container, ContainerError> {
    let containers = list(store)?;
    if let Some(container) = containers
        .iter()
        .find(|container| container.name == wanted || container.id == wanted)
    {
        return Ok(container.clone());
    }
    let matches: Vec<&Container> = containers
        .iter()
        .filter(|container| !wanted.is_empty() && container.id.starts_with(wanted))
        .collect();
    match matches.as_slice() {
        [container] => Ok((*container).clone()),
        [] => Err(ContainerError::Unknown(wanted.to_owned())),
        _ => Err(ContainerError::Ambiguous(wanted.to_owned())),
    }
}

/// Remove a container and its changes.
pub fn remove(store: &Store, wanted: &str) -> Result<Container, ContainerError> {
    let container = find(store, wanted)?;
    let path = dir(store, &container.id);
    // The record first: a removal cut short leaves a directory that
    // `list` ignores, not a record without changes.
    let record = path.join(RECORD);
    std::fs::remove_file(&record).map_err(io("remove", &record))?;
    Changes::open(path, container.changes.clone()).discard()?;
    Ok(container)
}

/// The images kept containers run on.
pub fn images_in_use(store: &Store) -> Result<BTreeSet<Digest>, ContainerError> {
    Ok(list(store)?
        .into_iter()
        .map(|container| container.image)
        .collect())
}

/// `strata commit`: a new image made of the container's image and its
/// changes as one more layer (none if it changed nothing), with a history
/// entry for the command.
pub fn commit(
    store: &Store,
    wanted: &str,
    tags: &[String],
    message: Option<&str>,
    compression: Compression,
    epoch: Option<u64>,
) -> Result<ImageRecord, ContainerError> {
    let container = find(store, wanted)?;
    let tags = image::normalize_tags(tags)?;
    let base = store
        .index()
        .map_err(ImageError::from)?
        .images
        .get(&container.image)
        .cloned()
        .ok_or_else(|| ImageError::UnknownImage(container.image.to_string()))?;
    let changes = Changes::open(dir(store, &container.id), container.changes.clone());
    // The container stays (docker's commit keeps it too).
    let layer = changes.layer(store, compression, epoch)?;
    let config = image::read_config(store, &base)?;
    let created = crate::time::rfc3339(epoch.unwrap_or_else(crate::time::now));
    let mut value = serde_json::to_value(&config).expect("configs serialize");
    value["created"] = created.clone().into();
    let mut history = serde_json::json!({
        "created": created,
        "created_by": container.args.join(" "),
    });
    if let Some(message) = message {
        history["comment"] = message.into();
    }
    let mut layers = base.layers.clone();
    match &layer {
        Some(layer) => {
            let diff_ids = &mut value["rootfs"]["diff_ids"];
            if let Some(list) = diff_ids.as_array_mut() {
                list.push(layer.diff_id.to_string().into());
            } else {
                *diff_ids = serde_json::json!([layer.diff_id.to_string()]);
            }
            layers.push(layer.clone());
        }
        None => history["empty_layer"] = true.into(),
    }
    match value["history"].as_array_mut() {
        Some(list) => list.push(history),
        None => value["history"] = serde_json::json!([history]),
    }
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_value(value).map_err(|source| ImageError::Json {
            what: "committed config".to_owned(),
            source,
        })?;
    Ok(image::commit_image(store, &config, layers, &tags)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        entrypoint: Option<&[&str]>,
        cmd: Option<&[&str]>,
    ) -> oci_spec::image::ImageConfiguration {
        let list = |items: Option<&[&str]>| {
            items.map(|items| {
                items
                    .iter()
                    .map(|item| item.to_string())
                    .collect::<Vec<_>>()
            })
        };
        serde_json::from_value(serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": list(entrypoint),
                "Cmd": list(cmd),
                "Env": ["PATH=/bin", "A=1"],
                "User": "app",
                "WorkingDir": "/srv",
            },
            "rootfs": { "type": "layers", "diff_ids": [] },
        }))
        .unwrap()
    }

    #[test]
    fn run_specs_follow_docker_run() {
        let args = |config, options: &RunOptions| spec_for(&config, options).map(|spec| spec.args);
        let image = || config(Some(&["/entry"]), Some(&["default"]));
        assert_eq!(
            args(image(), &RunOptions::default()).unwrap(),
            ["/entry", "default"]
        );
        let command = RunOptions {
            command: vec!["other".into()],
            ..RunOptions::default()
        };
        assert_eq!(args(image(), &command).unwrap(), ["/entry", "other"]);
        // --entrypoint drops the image's CMD too.
        let entrypoint = RunOptions {
            entrypoint: Some("/bin/sh".into()),
            ..RunOptions::default()
        };
        assert_eq!(args(image(), &entrypoint).unwrap(), ["/bin/sh"]);
        let cleared = RunOptions {
            entrypoint: Some(String::new()),
            command: vec!["ls".into()],
            ..RunOptions::default()
        };
        assert_eq!(args(image(), &cleared).unwrap(), ["ls"]);
        assert!(matches!(
            args(config(None, None), &RunOptions::default()),
            Err(ContainerError::NoCommand)
        ));
        let options = RunOptions {
            env: vec!["A=2".into(), "B=3".into()],
            hostname: Some("box".into()),
            ..RunOptions::default()
        };
        let spec = spec_for(&image(), &options).unwrap();
        assert_eq!(spec.env, ["PATH=/bin", "A=2", "B=3", "HOSTNAME=box"]);
        assert_eq!((spec.user.as_str(), spec.cwd.as_str()), ("app", "/srv"));
        let overridden = RunOptions {
            user: Some("0".into()),
            workdir: Some("/tmp".into()),
            ..RunOptions::default()
        };
        let spec = spec_for(&image(), &overridden).unwrap();
        assert_eq!((spec.user.as_str(), spec.cwd.as_str()), ("0", "/tmp"));
    }
}
