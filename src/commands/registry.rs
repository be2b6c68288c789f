//! `strata pull`, `push`, `login`, `logout`, and the transfer progress they
//! (and `build`) show.

use std::io::{IsTerminal, Read, Write};
use std::sync::Mutex;

use anyhow::{Context, bail};
use strata_solver::graph::Platform;
use strata_solver::image;
use strata_solver::registry::{self, RegistryOptions, Transfer, auth::Credentials};

use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs, RegistryArgs};

/// The solver's options from the command line's.
pub(crate) fn options(args: &RegistryArgs) -> anyhow::Result<RegistryOptions> {
    let credentials = match &args.creds {
        Some(text) => {
            let (username, password) = text
                .split_once(':')
                .context("--creds takes USER:PASSWORD")?;
            Some(Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            })
        }
        None => None,
    };
    Ok(RegistryOptions {
        tls_verify: args.tls_verify,
        auth_file: args.authfile.clone(),
        cert_dir: args.cert_dir.clone(),
        credentials,
        chunk_size: None,
    })
}

/// Progress of blob transfers: a bar on a terminal, else one line per blob
/// (as skopeo prints them).
pub(crate) struct TransferProgress {
    bar: Option<indicatif::ProgressBar>,
    verb: &'static str,
    quiet: bool,
    total: Mutex<u64>,
}

impl TransferProgress {
    pub(crate) fn new(verb: &'static str, quiet: bool) -> TransferProgress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_message(verb);
            bar
        });
        TransferProgress {
            bar,
            verb,
            quiet,
            total: Mutex::new(0),
        }
    }

    pub(crate) fn event(&self, transfer: Transfer<'_>) {
        match transfer {
            Transfer::Blob {
                digest,
                size,
                present,
            } => {
                if present {
                    let line = format!(
                        "{} blob {} skipped: already exists",
                        self.verb,
                        short(digest)
                    );
                    if let Some(bar) = &self.bar {
                        bar.println(line);
                    } else if !self.quiet {
                        let _ = writeln!(std::io::stderr(), "{line}");
                    }
                } else {
                    *self.total.lock().expect("progress lock") += size;
                    if let Some(bar) = &self.bar {
                        bar.inc_length(size);
                    }
                }
            }
            Transfer::Mounted { digest, from } => {
                let line = format!("{} blob {} mounted from {from}", self.verb, short(digest));
                if let Some(bar) = &self.bar {
                    bar.println(line);
                } else if !self.quiet {
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
            }
            Transfer::Bytes(bytes) => {
                if let Some(bar) = &self.bar {
                    bar.inc(bytes);
                }
            }
            Transfer::Done(digest) => {
                if self.bar.is_none() && !self.quiet {
                    let _ = writeln!(
                        std::io::stderr(),
                        "{} blob {} done",
                        self.verb,
                        short(digest)
                    );
                }
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn short(digest: &strata_solver::digest::Digest) -> String {
    format!("sha256:{}", &digest.hex()[..12])
}

pub(crate) fn parse_platform(text: Option<&str>) -> anyhow::Result<Platform> {
    match text {
        Some(text) => Platform::parse(text).with_context(|| {
            format!("invalid platform `{text}`: expected os/arch[/variant], e.g. linux/amd64")
        }),
        None => Ok(Platform::host()),
    }
}

pub(crate) fn pull(root: Option<std::path::PathBuf>, args: PullArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let platform = parse_platform(args.platform.as_deref())?;
    let options = options(&args.registry)?;
    let progress = TransferProgress::new("Copying", args.quiet);
    let pulled = registry::pull(&store, &args.image, &platform, &options, &|transfer| {
        progress.event(transfer)
    });
    progress.finish();
    let image = pulled?;
    let mut stdout = std::io::stdout().lock();
    if args.quiet {
        writeln!(stdout, "{}", image.id)?;
    } else {
        let reference = image::Reference::parse(&args.image)?;
        if let Some(repo_digest) = image.repo_digests.last() {
            writeln!(
                stdout,
                "Digest: {}",
                repo_digest.split('@').nth(1).unwrap_or("")
            )?;
        }
        writeln!(stdout, "Image: {} ({})", reference.qualified(), image.id)?;
    }
    Ok(())
}

pub(crate) fn push(root: Option<std::path::PathBuf>, args: PushArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let image = image::resolve(&store, &args.image)?;
    let destination = args
        .destination
        .clone()
        .unwrap_or_else(|| args.image.clone());
    let mut options = options(&args.registry)?;
    options.chunk_size = args.chunk_size;
    let progress = TransferProgress::new("Copying", args.quiet);
    let pushed = registry::push(&store, &image, &destination, &options, &|transfer| {
        progress.event(transfer)
    });
    progress.finish();
    let digest = pushed?;
    if let Some(path) = &args.digestfile {
        std::fs::write(path, digest.to_string())
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.quiet {
        writeln!(stdout, "{digest}")?;
    } else {
        let reference = image::Reference::parse(&destination)?;
        writeln!(
            stdout,
            "Pushed {} (digest: {digest})",
            reference.qualified()
        )?;
    }
    Ok(())
}

/// `HOST[:PORT]` of a login argument (docker accepts URLs too).
fn server_host(server: Option<&str>) -> String {
    let server = server.unwrap_or("docker.io");
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(server);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

pub(crate) fn login(args: LoginArgs) -> anyhow::Result<()> {
    let host = server_host(args.server.as_deref());
    let username = match &args.username {
        Some(username) => username.clone(),
        None => {
            if !std::io::stdin().is_terminal() || args.password_stdin {
                bail!("give the user name with -u/--username");
            }
            eprint_flush("Username: ")?;
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("failed to read the password from standard input")?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else if let Some(password) = &args.password {
        password.clone()
    } else {
        bail!("give the password with --password-stdin (or -p)");
    };
    if username.is_empty() || password.is_empty() {
        bail!("the user name and the password must not be empty");
    }
    let credentials = Credentials { username, password };
    let mut options = options(&args.registry)?;
    options.credentials = Some(credentials.clone());
    registry::Client::check_login(&host, &options)?;
    let place = registry::auth::store(&host, &credentials, args.registry.authfile.as_deref())?;
    writeln!(
        std::io::stdout(),
        "Login Succeeded (credentials for {host} kept in {place})"
    )?;
    Ok(())
}

fn eprint_flush(text: &str) -> anyhow::Result<()> {
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(text.as_bytes())?;
    stderr.flush()?;
    Ok(())
}

pub(crate) fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    let host = server_host(args.server.as_deref());
    if registry::auth::erase(&host, args.authfile.as_deref())? {
        writeln!(std::io::stdout(), "Removed login credentials for {host}")?;
        Ok(())
    } else {
        bail!("not logged in to {host}")
    }
}
