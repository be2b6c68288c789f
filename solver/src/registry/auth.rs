//! Credentials, where docker keeps them, so that existing logins work.
//!
//! The file is `--authfile`, else `$REGISTRY_AUTH_FILE`, else
//! `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (podman's
//! `$XDG_RUNTIME_DIR/containers/auth.json` is read too). In it:
//! - `auths`: `{"HOST": {"auth": base64("user:password")}}` (or
//!   `username`/`password` fields);
//! - `credHelpers`: `{"HOST": "NAME"}` and `credsStore`: `"NAME"`: the
//!   credentials are kept by the program `docker-credential-NAME`, spoken to
//!   with docker's helper protocol (`get`/`store`/`erase`, JSON on stdin and
//!   stdout).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use super::RegistryError;

/// A user name and password (or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(formatter, "Credentials({})", self.username)
    }
}

impl Credentials {
    /// `base64(user:password)`, for `Authorization: Basic`.
    pub fn basic(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }

    fn decode(auth: &str) -> Option<Credentials> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (username, password) = text.split_once(':')?;
        Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }
}

/// The credentials file strata reads and `strata login` writes.
pub fn config_path(auth_file: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = auth_file {
        return Some(path.to_owned());
    }
    if let Some(path) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The keys a host may be filed under in `auths`.
fn keys(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_owned(),
        format!("https://{host}"),
        format!("http://{host}"),
        format!("https://{host}/v1/"),
        format!("https://{host}/v2/"),
    ];
    if host == "docker.io" {
        keys.extend(
            [
                "https://index.docker.io/v1/",
                "index.docker.io",
                "registry-1.docker.io",
            ]
            .map(str::to_owned),
        );
    }
    keys
}

/// The name a helper knows a host by (docker hub's historical URL).
fn server_url(host: &str) -> String {
    if host == "docker.io" {
        "https://index.docker.io/v1/".to_owned()
    } else {
        host.to_owned()
    }
}

fn read_config(path: &Path) -> Result<serde_json::Value, RegistryError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| {
            RegistryError::Credentials(format!(
                "failed to parse the credentials file `{}`: {error}",
                path.display()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(error) => Err(RegistryError::Credentials(format!(
            "failed to read the credentials file `{}`: {error}",
            path.display()
        ))),
    }
}

fn helper_of(config: &serde_json::Value, host: &str) -> Option<String> {
    config["credHelpers"][host]
        .as_str()
        .or_else(|| config["credsStore"].as_str())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

fn run_helper(name: &str, verb: &str, input: &[u8]) -> Result<(bool, Vec<u8>), RegistryError> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| {
            RegistryError::Credentials(format!(
                "failed to run the credential helper `{program}`: {error}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let output = child.wait_with_output().map_err(|error| {
        RegistryError::Credentials(format!(
            "failed to run the credential helper `{program}`: {error}"
        ))
    })?;
    let mut said = output.stdout;
    said.extend_from_slice(&output.stderr);
    Ok((output.status.success(), said))
}

/// The stored credentials for `host`, if any.
pub fn lookup(host: &str, auth_file: Option<&Path>) -> Result<Option<Credentials>, RegistryError> {
    let mut files: Vec<PathBuf> = config_path(auth_file).into_iter().collect();
    if auth_file.is_none()
        && let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty())
    {
        files.push(PathBuf::from(runtime).join("containers/auth.json"));
    }
    for file in files {
        // Another user's home (a HOME kept across a user switch) cannot be
        // read: it holds no credentials of this user's.
        if let Err(error) = std::fs::metadata(&file)
            && error.kind() == std::io::ErrorKind::PermissionDenied
        {
            continue;
        }
        let config = read_config(&file)?;
        if let Some(helper) = config["credHelpers"][host]
            .as_str()
            .filter(|name| !name.is_empty())
        {
            return helper_get(helper, host);
        }
        for key in keys(host) {
            let entry = &config["auths"][&key];
            if let Some(auth) = entry["auth"].as_str().filter(|auth| !auth.is_empty()) {
                return Credentials::decode(auth).map(Some).ok_or_else(|| {
                    RegistryError::Credentials(format!(
                        "the credentials for {host} in `{}` are not base64 of `user:password`",
                        file.display()
                    ))
                });
            }
            if let (Some(username), Some(password)) =
                (entry["username"].as_str(), entry["password"].as_str())
            {
                return Ok(Some(Credentials {
                    username: username.to_owned(),
                    password: password.to_owned(),
                }));
            }
        }
        if let Some(helper) = config["credsStore"]
            .as_str()
            .filter(|name| !name.is_empty())
        {
            return helper_get(helper, host);
        }
    }
    Ok(None)
}

fn helper_get(helper: &str, host: &str) -> Result<Option<Credentials>, RegistryError> {
    let (ok, output) = run_helper(helper, "get", server_url(host).as_bytes())?;
    if !ok {
        let said = String::from_utf8_lossy(&output);
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(RegistryError::Credentials(format!(
            "the credential helper `docker-credential-{helper}` failed for {host}: {}",
            said.trim()
        )));
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&output).map_err(|error| {
        RegistryError::Credentials(format!(
            "the credential helper `docker-credential-{helper}` answered something else than \
             {{\"Username\", \"Secret\"}} for {host}: {error}"
        ))
    })?;
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

fn write_config(path: &Path, config: &serde_json::Value) -> Result<(), RegistryError> {
    let fail = |error: std::io::Error| {
        RegistryError::Credentials(format!(
            "failed to write the credentials file `{}`: {error}",
            path.display()
        ))
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut bytes = serde_json::to_vec_pretty(config).expect("JSON values serialize");
    bytes.push(b'\n');
    // Private, and synced: credentials must survive a crash whole.
    let options = crate::atomic::Options {
        sync: true,
        mode: 0o600,
    };
    crate::atomic::write(path, &bytes, options).map_err(|error| fail(error.source))
}

/// Keep `credentials` for `host`: with its credential helper if the file
/// names one, else in `auths`. Returns where they went.
pub fn store(
    host: &str,
    credentials: &Credentials,
    auth_file: Option<&Path>,
) -> Result<String, RegistryError> {
    let path = config_path(auth_file).ok_or_else(|| {
        RegistryError::Credentials("no credentials file: set HOME or DOCKER_CONFIG".to_owned())
    })?;
    let mut config = read_config(&path)?;
    if let Some(helper) = helper_of(&config, host) {
        let input = serde_json::json!({
            "ServerURL": server_url(host),
            "Username": credentials.username,
            "Secret": credentials.password,
        });
        let (ok, output) = run_helper(&helper, "store", input.to_string().as_bytes())?;
        if !ok {
            return Err(RegistryError::Credentials(format!(
                "the credential helper `docker-credential-{helper}` failed to store the credentials for {host}: {}",
                String::from_utf8_lossy(&output).trim()
            )));
        }
        return Ok(format!("docker-credential-{helper}"));
    }
    if !config.is_object() {
        config = serde_json::json!({});
    }
    if !config["auths"].is_object() {
        config["auths"] = serde_json::json!({});
    }
    let key = if host == "docker.io" {
        server_url(host)
    } else {
        host.to_owned()
    };
    config["auths"][key] = serde_json::json!({ "auth": credentials.basic() });
    write_config(&path, &config)?;
    Ok(path.display().to_string())
}

/// Forget the credentials for `host`. False when there were none.
pub fn erase(host: &str, auth_file: Option<&Path>) -> Result<bool, RegistryError> {
    let path = config_path(auth_file).ok_or_else(|| {
        RegistryError::Credentials("no credentials file: set HOME or DOCKER_CONFIG".to_owned())
    })?;
    let mut config = read_config(&path)?;
    let mut found = false;
    if let Some(auths) = config["auths"].as_object_mut() {
        for key in keys(host) {
            found |= auths.remove(&key).is_some();
        }
    }
    if found {
        write_config(&path, &config)?;
    }
    if let Some(helper) = helper_of(&config, host) {
        let (ok, _) = run_helper(&helper, "erase", server_url(host).as_bytes())?;
        found |= ok;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_round_trip_and_keep_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"other:5000":{"auth":"eDp5"}},"detachKeys":"ctrl-x"}"#,
        )
        .unwrap();
        let credentials = Credentials {
            username: "me".into(),
            password: "p:ss".into(),
        };
        store("reg.example:5000", &credentials, Some(&path)).unwrap();
        assert_eq!(
            lookup("reg.example:5000", Some(&path)).unwrap(),
            Some(credentials)
        );
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(config["detachKeys"], "ctrl-x");
        assert_eq!(
            lookup("other:5000", Some(&path)).unwrap().unwrap().username,
            "x"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(erase("reg.example:5000", Some(&path)).unwrap());
        assert_eq!(lookup("reg.example:5000", Some(&path)).unwrap(), None);
        assert!(!erase("reg.example:5000", Some(&path)).unwrap());
    }

    #[test]
    fn docker_hub_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}}}"#,
        )
        .unwrap();
        let found = lookup("docker.io", Some(&path)).unwrap().unwrap();
        assert_eq!(
            (found.username.as_str(), found.password.as_str()),
            ("u", "p")
        );
    }
}
