//! One registry host: transport choice, authentication, retries.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{self, Response, StatusCode};

use super::RegistryError;
use super::auth::{self, Credentials};
use super::net;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `--tls-verify`: `Some(false)` allows plain http and unverified TLS
    /// for every host; by default only loopback hosts get them.
    pub tls_verify: Option<bool>,
    /// `--authfile`: the credentials file instead of docker's.
    pub auth_file: Option<PathBuf>,
    /// `--cert-dir`: extra CA certificates (`*.crt`) for every host.
    pub cert_dir: Option<PathBuf>,
    /// `--creds USER:PASSWORD`, used instead of stored credentials.
    pub credentials: Option<Credentials>,
    /// Push blobs larger than this in chunks (`PATCH`) rather than in one
    /// `PUT`; `None`: always one `PUT`.
    pub chunk_size: Option<u64>,
}

/// What a request needs the token to allow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(pub String);

impl Scope {
    /// Pull from `repository`.
    pub fn pull(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull"))
    }

    /// Push to `repository` (and pull from it, which pushing needs).
    pub fn push(repository: &str) -> Scope {
        Scope(format!("repository:{repository}:pull,push"))
    }

    /// Push to `repository` and mount blobs from `source`.
    pub fn mount(repository: &str, source: &str) -> Scope {
        Scope(format!(
            "repository:{repository}:pull,push repository:{source}:pull"
        ))
    }
}

/// A request body that can be sent again (after a token refresh or a
/// transient failure).
pub(crate) enum Body<'a> {
    /// No body.
    Empty,
    /// Bytes in memory (manifests, chunks).
    Bytes(&'a [u8]),
    /// A whole file (a blob of the store).
    File(&'a Path),
}

#[derive(Debug, Clone)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Debug, Default)]
struct AuthState {
    challenge: Option<Challenge>,
    tokens: HashMap<Scope, String>,
}

/// A client for one registry host.
pub struct Client {
    /// As references spell it (`docker.io`, `127.0.0.1:5000`).
    host: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    endpoint: String,
    agent: ureq::Agent,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
    /// The reference the work is about, for messages.
    reference: String,
    options: RegistryOptions,
    /// A signal shuts the agent down, ending its transfers.
    _watch: net::Watch,
}

/// Attempts per request for transient failures.
const ATTEMPTS: u32 = 4;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Whether `host` (`name[:port]`) is this machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|byte| byte.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Whether plain http and unverified TLS may be used for `host`: for
/// loopback hosts unless `--tls-verify=true`, for others only with
/// `--tls-verify=false`.
fn insecure(host: &str, options: &RegistryOptions) -> bool {
    match options.tls_verify {
        Some(verify) => !verify,
        None => is_loopback(host),
    }
}

fn certificates(dir: &Path) -> Vec<ureq::tls::Certificate<'static>> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "crt"))
        .collect();
    paths.sort();
    for path in paths {
        if let Ok(pem) = std::fs::read(&path) {
            for item in ureq::tls::parse_pem(&pem).flatten() {
                if let ureq::tls::PemItem::Certificate(cert) = item {
                    found.push(cert);
                }
            }
        }
    }
    found
}

/// Whether credentials may be sent to the token service `realm`: over
/// https, or over plain http where plain http is allowed (a loopback host,
/// or `--tls-verify=false`).
fn credentials_may_go_to(realm: &str, options: &RegistryOptions) -> bool {
    let Some((scheme, host, port)) = origin(realm) else {
        return false;
    };
    scheme == "https" || (scheme == "http" && insecure(&format!("{host}:{port}"), options))
}

/// CA certificates for `host`: `--cert-dir`, then the directories docker
/// and podman read (`/etc/docker/certs.d/HOST`, `/etc/containers/certs.d/HOST`,
/// `~/.config/containers/certs.d/HOST`).
fn host_certificates(
    host: &str,
    options: &RegistryOptions,
) -> Vec<ureq::tls::Certificate<'static>> {
    let mut dirs = Vec::new();
    if let Some(dir) = &options.cert_dir {
        dirs.push(dir.clone());
    }
    dirs.push(Path::new("/etc/docker/certs.d").join(host));
    dirs.push(Path::new("/etc/containers/certs.d").join(host));
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(
            PathBuf::from(home)
                .join(".config/containers/certs.d")
                .join(host),
        );
    }
    dirs.iter().flat_map(|dir| certificates(dir)).collect()
}

fn transport_reason(error: &ureq::Error) -> String {
    net::describe(error)
}

/// Scheme, host and port of `url` (the port the scheme implies if none is
/// given), lowercased: credentials go only where all three are the
/// registry's.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    origin_of(&uri)
}

fn origin_of(uri: &http::Uri) -> Option<(String, String, u16)> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some((scheme, host, port))
}

impl Client {
    /// Connect to the registry of `host` for work on `reference`: choose
    /// the transport and learn how it authenticates (`GET /v2/`).
    pub fn connect(
        host: &str,
        reference: &str,
        options: &RegistryOptions,
    ) -> Result<Client, RegistryError> {
        let insecure = insecure(host, options);
        let mut tls = ureq::tls::TlsConfig::builder();
        if insecure {
            tls = tls.disable_verification(true);
        } else {
            let extra = host_certificates(host, options);
            if !extra.is_empty() {
                tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&extra));
            }
        }
        let agent = net::agent(tls.build());
        let watch = net::watch(&agent);
        let address = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let credentials = match &options.credentials {
            Some(credentials) => Some(credentials.clone()),
            None => auth::lookup(host, options.auth_file.as_deref())?,
        };
        let mut client = Client {
            host: host.to_owned(),
            endpoint: format!("https://{address}"),
            agent,
            credentials,
            auth: Mutex::new(AuthState::default()),
            reference: reference.to_owned(),
            options: options.clone(),
            _watch: watch,
        };
        let mut schemes = vec!["https"];
        if insecure {
            schemes.push("http");
        }
        let mut last = String::new();
        let count = schemes.len();
        for (position, scheme) in schemes.into_iter().enumerate() {
            client.endpoint = format!("{scheme}://{address}");
            // Retry only the last way to connect: a first (https) that
            // fails is answered by the next (plain http).
            match client.ping(position + 1 == count) {
                Ok(()) => return Ok(client),
                Err(PingError::Transport(reason)) => last = reason,
                Err(PingError::Registry(error)) => return Err(*error),
            }
        }
        Err(RegistryError::Unreachable {
            reference: reference.to_owned(),
            host: host.to_owned(),
            reason: last,
        })
    }

    /// `strata login`: whether the registry of `host` accepts
    /// `options.credentials`.
    pub fn check_login(host: &str, options: &RegistryOptions) -> Result<(), RegistryError> {
        let client = Client::connect(host, host, options)?;
        let response = client.send("GET", "/v2/", &[], Body::Empty, &Scope(String::new()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(client.status_error("GET", "/v2/", response, "pull", 1))
        }
    }

    /// The host, as references spell it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The reference the client works for.
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// The options it was made with.
    pub fn options(&self) -> &RegistryOptions {
        &self.options
    }

    fn ping(&self, retry: bool) -> Result<(), PingError> {
        let url = format!("{}/v2/", self.endpoint);
        let mut last = String::new();
        let attempts = if retry { ATTEMPTS } else { 1 };
        for attempt in 0..attempts {
            match self.agent.get(&url).call() {
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::UNAUTHORIZED {
                        // Only the registry itself may say where its
                        // credentials go, not a host it redirected to.
                        if self.same_origin(ureq::ResponseExt::get_uri(&response)) {
                            let challenge = parse_challenge(&response);
                            self.auth.lock().expect("auth lock").challenge = challenge;
                        }
                        return Ok(());
                    }
                    if status.is_success() {
                        return Ok(());
                    }
                    if transient(status) && attempt + 1 < attempts {
                        self.pause(backoff(attempt, &response))
                            .map_err(|error| PingError::Registry(Box::new(error)))?;
                        continue;
                    }
                    return Err(PingError::Registry(Box::new(self.status_error(
                        "GET",
                        "/v2/",
                        response,
                        "pull",
                        attempt + 1,
                    ))));
                }
                Err(error) => {
                    if let Some(signal) = crate::cancel::interrupted() {
                        return Err(PingError::Registry(Box::new(self.interrupted(signal))));
                    }
                    last = transport_reason(&error);
                    // A TLS or protocol failure will not go away, and a
                    // timeout would only take as long again.
                    if net::retryable(&error) && attempt + 1 < attempts {
                        self.pause(Duration::from_millis(250 << attempt))
                            .map_err(|error| PingError::Registry(Box::new(error)))?;
                        continue;
                    }
                    return Err(PingError::Transport(last));
                }
            }
        }
        Err(PingError::Transport(last))
    }

    /// The `Authorization` header for `scope`, fetching a token if the
    /// registry wants one.
    fn authorization(&self, scope: &Scope, refresh: bool) -> Result<Option<String>, RegistryError> {
        let mut state = self.auth.lock().expect("auth lock");
        match state.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self
                .credentials
                .as_ref()
                .map(|credentials| format!("Basic {}", credentials.basic()))),
            Some(Challenge::Bearer { realm, service }) => {
                if !refresh && let Some(token) = state.tokens.get(scope) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scope)?;
                state.tokens.insert(scope.clone(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<String, RegistryError> {
        let mut url = realm.to_owned();
        let mut separator = if url.contains('?') { '&' } else { '?' };
        if let Some(service) = service {
            url.push(separator);
            url.push_str("service=");
            url.push_str(&encode_query(service));
            separator = '&';
        }
        for part in scope.0.split(' ').filter(|part| !part.is_empty()) {
            url.push(separator);
            url.push_str("scope=");
            url.push_str(&encode_query(part));
            separator = '&';
        }
        // The registry names its token service, which may be another host
        // (auth.docker.io): it gets the credentials, but never in the
        // clear where the registry itself would not be reached so.
        let credentials = self
            .credentials
            .as_ref()
            .filter(|_| credentials_may_go_to(realm, &self.options));
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            let mut request = self.agent.get(&url);
            if let Some(credentials) = credentials {
                request = request.header("Authorization", format!("Basic {}", credentials.basic()));
            }
            let response = match request.call() {
                Ok(response) => response,
                Err(error) => {
                    if let Some(signal) = crate::cancel::interrupted() {
                        return Err(self.interrupted(signal));
                    }
                    last = transport_reason(&error);
                    if !net::retryable(&error) {
                        return Err(self.transfer(
                            format!("reading a token from {}", strip_query(realm)),
                            last,
                        ));
                    }
                    self.pause(Duration::from_millis(250 << attempt))?;
                    continue;
                }
            };
            let status = response.status();
            if status.is_success() {
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let body = net::read_limited(response, net::MAX_TOKEN, "token answers").map_err(
                    |error| {
                        self.transfer(
                            format!("reading a token from {}", strip_query(realm)),
                            error.to_string(),
                        )
                    },
                )?;
                let token: Token = serde_json::from_slice(&body).map_err(|error| {
                    RegistryError::protocol(
                        &self.reference,
                        format!("the token service {realm} answered no token: {error}"),
                    )
                })?;
                return token.token.or(token.access_token).ok_or_else(|| {
                    RegistryError::protocol(
                        &self.reference,
                        format!("the token service {realm} answered no token"),
                    )
                });
            }
            if transient(status) && attempt + 1 < ATTEMPTS {
                self.pause(backoff(attempt, &response))?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(self.unauthorized());
            }
            return Err(self.status_error("GET", realm, response, "pull", attempt + 1));
        }
        Err(RegistryError::Unreachable {
            reference: self.reference.clone(),
            host: realm.to_owned(),
            reason: last,
        })
    }

    fn unauthorized(&self) -> RegistryError {
        let hint = match &self.credentials {
            Some(credentials) => format!(
                "the credentials of `{}` were refused; check them with `strata login {}`",
                credentials.username, self.host
            ),
            None => format!("it needs credentials: run `strata login {}`", self.host),
        };
        RegistryError::Unauthorized {
            reference: self.reference.clone(),
            host: self.host.clone(),
            hint,
        }
    }

    /// Send a request to `path` (under the endpoint, or an absolute URL
    /// the registry gave), authenticated for `scope`, retrying what is
    /// transient. Any status comes back: callers decide what it means. The
    /// response's body may take [`net::transfer_timeout`] of an image
    /// config's limit; [`Client::send_sized`] says how large it may be.
    pub(crate) fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        scope: &Scope,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        self.send_sized(method, path, headers, body, scope, net::MAX_CONFIG)
    }

    /// [`Client::send`] for a response body of up to `size` bytes (a
    /// blob's), which gets [`net::transfer_timeout`] of that.
    ///
    /// `Authorization` goes only to the registry's own scheme, host and
    /// port: an upload `Location` or a URL elsewhere gets none, and a 401
    /// from elsewhere teaches nothing about where credentials go.
    pub(crate) fn send_sized(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        scope: &Scope,
        size: u64,
    ) -> Result<Response<ureq::Body>, RegistryError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.endpoint)
        };
        let ours = origin(&url).is_some_and(|found| Some(found) == origin(&self.endpoint));
        let operation = || format!("{method} {}", strip_query(path));
        let mut refreshed = false;
        let mut last = String::new();
        let mut attempt = 0;
        while attempt < ATTEMPTS {
            let authorization = if ours {
                self.authorization(scope, false)?
            } else {
                None
            };
            let mut builder = http::Request::builder().method(method).uri(&url);
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            if let Some(authorization) = &authorization {
                builder = builder.header("Authorization", authorization);
            }
            let sent = match &body {
                Body::Empty => {
                    let request = builder.body(()).map_err(|error| {
                        RegistryError::protocol(&self.reference, error.to_string())
                    })?;
                    self.run(request, 0, size)
                }
                Body::Bytes(bytes) => {
                    let request = builder.body(*bytes).map_err(|error| {
                        RegistryError::protocol(&self.reference, error.to_string())
                    })?;
                    self.run(request, bytes.len() as u64, size)
                }
                Body::File(file) => {
                    let opened = std::fs::File::open(file)
                        .map_err(crate::error::PathError::at::<RegistryError>("open", file))?;
                    let length = opened
                        .metadata()
                        .map_err(crate::error::PathError::at::<RegistryError>(
                            "inspect", file,
                        ))?
                        .len();
                    let request = builder.body(opened).map_err(|error| {
                        RegistryError::protocol(&self.reference, error.to_string())
                    })?;
                    self.run(request, length, size)
                }
            };
            let response = match sent {
                Ok(response) => response,
                Err(error) => {
                    if let Some(signal) = crate::cancel::interrupted() {
                        return Err(self.interrupted(signal));
                    }
                    last = transport_reason(&error);
                    if !net::retryable(&error) {
                        return Err(self.transfer(operation(), last));
                    }
                    attempt += 1;
                    if attempt < ATTEMPTS {
                        self.pause(Duration::from_millis(250 << attempt))?;
                    }
                    continue;
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                if !ours || !self.same_origin(ureq::ResponseExt::get_uri(&response)) {
                    // Another host (a Location, a redirect) wants
                    // credentials: it gets none of the registry's.
                    return Ok(response);
                }
                // A token expired, or the registry challenges only now (a
                // new scope): learn the challenge, fetch once more.
                let challenge = parse_challenge(&response);
                if !refreshed && challenge.is_some() {
                    refreshed = true;
                    {
                        let mut state = self.auth.lock().expect("auth lock");
                        state.challenge = challenge;
                        state.tokens.remove(scope);
                    }
                    if matches!(
                        self.auth.lock().expect("auth lock").challenge,
                        Some(Challenge::Basic)
                    ) && self.credentials.is_none()
                    {
                        return Err(self.unauthorized());
                    }
                    self.authorization(scope, true)?;
                    continue;
                }
                return Err(self.unauthorized());
            }
            if transient(status) {
                attempt += 1;
                if attempt < ATTEMPTS {
                    self.pause(backoff(attempt - 1, &response))?;
                    continue;
                }
                return Err(self.status_error(
                    method,
                    path,
                    response,
                    scope_action(scope),
                    attempt,
                ));
            }
            return Ok(response);
        }
        Err(RegistryError::Unreachable {
            reference: self.reference.clone(),
            host: self.host.clone(),
            reason: last,
        })
    }

    /// Run `request` with the transfer timeouts for a body of `sending`
    /// bytes and an answer of up to `receiving`.
    fn run<S: ureq::AsSendBody>(
        &self,
        request: http::Request<S>,
        sending: u64,
        receiving: u64,
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .timeout_send_body(Some(net::transfer_timeout(sending)))
            .timeout_recv_body(Some(net::transfer_timeout(receiving)))
            .build();
        self.agent.run(request)
    }

    /// Whether `uri` is the registry's scheme, host and port.
    fn same_origin(&self, uri: &http::Uri) -> bool {
        origin_of(uri).is_some_and(|found| Some(found) == origin(&self.endpoint))
    }

    /// Wait before another attempt, unless strata is interrupted.
    fn pause(&self, duration: Duration) -> Result<(), RegistryError> {
        net::sleep(duration).map_err(|signal| self.interrupted(signal))
    }

    /// A signal ended the work.
    pub(crate) fn interrupted(&self, signal: i32) -> RegistryError {
        RegistryError::Interrupted {
            reference: self.reference.clone(),
            host: self.host.clone(),
            signal,
        }
    }

    /// A transfer (`operation`: `GET /v2/...`, `reading blob ...`) failed.
    pub(crate) fn transfer(&self, operation: String, reason: String) -> RegistryError {
        RegistryError::Transfer {
            reference: self.reference.clone(),
            host: self.host.clone(),
            operation,
            reason,
        }
    }

    /// The error for reading a body of `operation`.
    pub(crate) fn read_error(&self, operation: String, error: net::ReadError) -> RegistryError {
        match error {
            net::ReadError::Interrupted(signal) => self.interrupted(signal),
            other => self.transfer(operation, other.to_string()),
        }
    }

    /// The error for a status the caller did not expect.
    pub(crate) fn status_error(
        &self,
        method: &str,
        path: &str,
        response: Response<ureq::Body>,
        action: &'static str,
        attempts: u32,
    ) -> RegistryError {
        let status = response.status();
        let retry_after = retry_after(&response);
        let detail = registry_detail(response);
        let reference = self.reference.clone();
        let host = self.host.clone();
        match status.as_u16() {
            401 => self.unauthorized(),
            403 => RegistryError::Forbidden {
                reference,
                host,
                action,
                detail: if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                },
            },
            429 => RegistryError::RateLimited {
                reference,
                host,
                attempts,
                retry_after: retry_after
                    .map(|after| format!(", it asked to retry after {}s", after.as_secs()))
                    .unwrap_or_default(),
            },
            code => RegistryError::Status {
                reference,
                host,
                status: code,
                method: method.to_owned(),
                path: path.split('?').next().unwrap_or(path).to_owned(),
                detail: if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                },
            },
        }
    }
}

enum PingError {
    Transport(String),
    Registry(Box<RegistryError>),
}

fn scope_action(scope: &Scope) -> &'static str {
    if scope.0.contains("push") {
        "push"
    } else {
        "pull"
    }
}

/// What is worth trying again: rate limits and a server's passing trouble.
fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn retry_after(response: &Response<ureq::Body>) -> Option<Duration> {
    response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// How long to wait before attempt `attempt + 1`: the registry's
/// `Retry-After` when it gives one (capped), else 0.5 s doubling.
fn backoff(attempt: u32, response: &Response<ureq::Body>) -> Duration {
    retry_after(response)
        .map(|after| after.min(MAX_RETRY_AFTER))
        .unwrap_or(Duration::from_millis(500 << attempt.min(5)))
}

/// The start of a body nobody needs whole (an error's, a push's answer):
/// at most [`net::MAX_ERROR_BODY`], the rest left unread.
pub(crate) fn read_small(response: Response<ureq::Body>) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    response
        .into_body()
        .into_reader()
        .take(net::MAX_ERROR_BODY)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `url` without its query (which may hold upload state or tokens).
pub(crate) fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The registry's explanation: `errors[].message` (and code) of its JSON
/// error body, or the body's first line.
pub(crate) fn registry_detail(response: Response<ureq::Body>) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let Ok(body) = read_small(response) else {
        return String::new();
    };
    if let Ok(errors) = serde_json::from_slice::<Errors>(&body) {
        return errors
            .errors
            .iter()
            .map(
                |entry| match (entry.code.is_empty(), entry.message.is_empty()) {
                    (false, false) => format!("{} ({})", entry.message, entry.code),
                    (false, true) => entry.code.clone(),
                    _ => entry.message.clone(),
                },
            )
            .collect::<Vec<_>>()
            .join("; ");
    }
    String::from_utf8_lossy(&body)
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

/// The error codes of a registry's JSON error body.
pub(crate) fn error_codes(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| {
            value["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(|error| error["code"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn parse_challenge(response: &Response<ureq::Body>) -> Option<Challenge> {
    let header = response.headers().get("www-authenticate")?.to_str().ok()?;
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(params);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
    })
}

/// `key="value", key=value` pairs of a challenge (quoted values may hold
/// commas).
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((at, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, next)) = chars.next() {
                            value.push(next);
                        }
                    }
                    '"' => {
                        end = at + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            (value, &quoted[end..])
        } else {
            match after.split_once(',') {
                Some((value, remaining)) => (value.trim().to_owned(), remaining),
                None => (after.trim().to_owned(), ""),
            }
        };
        params.insert(key, value);
        rest = remaining.trim_start_matches([',', ' ']);
    }
    params
}

fn encode_query(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:/,".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters() {
        let params = parse_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(params["realm"], "https://auth.docker.io/token");
        assert_eq!(params["service"], "registry.docker.io");
        assert_eq!(params["scope"], "repository:a/b:pull,push");
        let params = parse_params("realm=http://x/token, service=reg");
        assert_eq!(params["realm"], "http://x/token");
        assert_eq!(params["service"], "reg");
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.0.0.2"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn plain_http_only_for_loopback_or_when_asked() {
        let with = |tls_verify| RegistryOptions {
            tls_verify,
            ..RegistryOptions::default()
        };
        assert!(insecure("127.0.0.1:5000", &with(None)));
        assert!(insecure("localhost:5000", &with(None)));
        assert!(!insecure("127.0.0.1:5000", &with(Some(true))));
        assert!(!insecure("registry.example.com", &with(None)));
        assert!(!insecure("10.1.2.3:5000", &with(None)));
        assert!(insecure("registry.example.com", &with(Some(false))));
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        assert_eq!(
            origin("http://127.0.0.1:5000/v2/x/blobs/uploads/1?_state=a"),
            Some(("http".to_owned(), "127.0.0.1".to_owned(), 5000))
        );
        assert_eq!(
            origin("https://Registry.Example/v2/"),
            Some(("https".to_owned(), "registry.example".to_owned(), 443))
        );
        assert_eq!(
            origin("https://registry.example:443/x"),
            origin("https://registry.example/y")
        );
        // Another port, another scheme, user info posing as the host.
        assert_ne!(
            origin("http://127.0.0.1:5001/"),
            origin("http://127.0.0.1:5000/")
        );
        assert_ne!(
            origin("http://registry.example/"),
            origin("https://registry.example/")
        );
        assert_eq!(
            origin("http://registry.example@evil.example/").map(|found| found.1),
            Some("evil.example".to_owned())
        );
        assert_eq!(origin("/v2/relative"), None);
    }

    #[test]
    fn credentials_go_to_token_services_in_the_clear_only_where_allowed() {
        let options = RegistryOptions::default();
        assert!(credentials_may_go_to(
            "https://auth.docker.io/token",
            &options
        ));
        assert!(credentials_may_go_to(
            "http://127.0.0.1:5000/token",
            &options
        ));
        assert!(!credentials_may_go_to(
            "http://auth.example/token",
            &options
        ));
        assert!(!credentials_may_go_to("ftp://auth.example/token", &options));
        assert!(!credentials_may_go_to("/token", &options));
        let insecure = RegistryOptions {
            tls_verify: Some(false),
            ..RegistryOptions::default()
        };
        assert!(credentials_may_go_to(
            "http://auth.example/token",
            &insecure
        ));
    }

    #[test]
    fn query_encoding() {
        assert_eq!(encode_query("a b&c=d"), "a%20b%26c%3Dd");
        assert_eq!(
            encode_query("repository:x/y:pull,push"),
            "repository:x/y:pull,push"
        );
    }
}
