//! Limits for everything strata reads from the network (registries and
//! `ADD <url>`), in one place:
//!
//! - **Timeouts.** Connecting (DNS, TCP, TLS) gets [`Limits::connect`]
//!   (30 s, as docker's dialer); a connection that sends or accepts no
//!   byte for [`Limits::idle`] (30 s) fails; response headers must arrive
//!   within [`RESPONSE`] (or the idle timeout, if longer); a whole body
//!   must arrive within [`transfer_timeout`]: [`TRANSFER_BASE`] plus one
//!   second per [`MIN_RATE`] bytes of its declared size, and a body of
//!   unknown size must keep that average rate. Tests shorten the first two
//!   with `STRATA_NET_CONNECT_TIMEOUT` and `STRATA_NET_IDLE_TIMEOUT`
//!   (seconds, fractions allowed), read here only.
//! - **Sizes.** Manifests and indexes: [`MAX_MANIFEST`] (4 MiB, as
//!   containerd); image configs: [`MAX_CONFIG`]; token answers:
//!   [`MAX_TOKEN`]; error bodies are read up to [`MAX_ERROR_BODY`]. Blobs
//!   must be exactly their descriptor's size, checked as they stream: the
//!   read stops at the first byte too many. `ADD` downloads: at most
//!   [`MAX_DOWNLOAD`], and exactly their `Content-Length` when they give
//!   one.
//! - **Cancellation.** Every agent is registered with [`watch`]; once
//!   SIGINT, SIGTERM or SIGHUP has been caught (see
//!   `cancel::stop_on_signals`), a watcher shuts down every registered
//!   agent, which makes blocked reads and writes return at once, and
//!   [`copy`] checks between reads. TCP connects are polled in slices of
//!   100 ms and end on a signal too.
//! - **Credentials** are never sent on a redirect: agents follow redirects
//!   with `RedirectAuthHeaders::Never`, and the registry client adds
//!   `Authorization` only to requests for the registry's own scheme, host
//!   and port (see `client.rs`).

use std::io::{Read, Write};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

use ureq::http::Response;

/// Largest manifest or index (containerd's limit).
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config.
pub(crate) const MAX_CONFIG: u64 = 8 << 20;
/// Largest answer of a token service.
pub(crate) const MAX_TOKEN: u64 = 1 << 20;
/// What is read of an error body (the rest is ignored).
pub(crate) const MAX_ERROR_BODY: u64 = 64 << 10;
/// Largest `ADD <url>` download.
pub(crate) const MAX_DOWNLOAD: u64 = 16 << 30;
/// The time any body gets, whatever its size.
pub(crate) const TRANSFER_BASE: Duration = Duration::from_secs(60);
/// The slowest average rate a transfer may keep beyond
/// [`TRANSFER_BASE`], in bytes per second.
pub(crate) const MIN_RATE: u64 = 32 << 10;
/// The time response headers get (at least the idle timeout).
pub(crate) const RESPONSE: Duration = Duration::from_secs(120);

/// The timeouts in force.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connecting: DNS, TCP and TLS handshake.
    pub(crate) connect: Duration,
    /// No byte read or written for this long.
    pub(crate) idle: Duration,
}

fn seconds_from_env(name: &str, default: Duration) -> Duration {
    std::env::var(name)
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// The timeouts: the defaults, or the environment's.
pub(crate) fn limits() -> Limits {
    static LIMITS: OnceLock<Limits> = OnceLock::new();
    *LIMITS.get_or_init(|| Limits {
        connect: seconds_from_env("STRATA_NET_CONNECT_TIMEOUT", Duration::from_secs(30)),
        idle: seconds_from_env("STRATA_NET_IDLE_TIMEOUT", Duration::from_secs(30)),
    })
}

/// The time a body of `size` bytes gets.
pub(crate) fn transfer_timeout(size: u64) -> Duration {
    TRANSFER_BASE + Duration::from_secs(size / MIN_RATE)
}

/// `2 s`, `0.5 s`.
pub(crate) fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// `4 MiB`, `8 KiB`, `123 bytes`.
pub(crate) fn bytes(size: u64) -> String {
    if size >= 1 << 30 && size.is_multiple_of(1 << 30) {
        format!("{} GiB", size >> 30)
    } else if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size.is_multiple_of(1 << 10) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} bytes")
    }
}

/// An agent with strata's limits, `tls` for https.
pub(crate) fn agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
    let limits = limits();
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .user_agent(concat!("strata/", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(Some(limits.connect))
        .timeout_connect(Some(limits.connect))
        .timeout_per_read(Some(limits.idle))
        .timeout_per_write(Some(limits.idle))
        .timeout_recv_response(Some(RESPONSE.max(limits.idle)))
        .max_redirects(10)
        // Never: a redirect may lead anywhere (blob storage on another
        // host); what it needs is in its URL, not in our credentials.
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::Never)
        .tls_config(tls)
        .build();
    // ureq's default chain, with a TCP connect a signal can end.
    use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(Connect)
            .chain(RustlsConnector::default());
    ureq::Agent::with_parts(
        config,
        connector,
        ureq::unversioned::resolver::DefaultResolver::default(),
    )
}

/// Opens TCP connections as ureq's `TcpConnector` does, but polls the
/// connect in slices of 100 ms so that a signal ends it, and registers the
/// socket so that [`watch`]'s shutdown reaches it.
#[derive(Debug)]
struct Connect;

/// A TCP connection as ureq's own transport keeps it (which ureq does not
/// export): reads and writes bounded by the timeout ureq computes for each
/// (the idle timeout, or less of a phase's budget).
#[derive(Debug)]
struct Connected {
    stream: std::sync::Arc<std::net::TcpStream>,
    buffers: ureq::unversioned::transport::LazyBuffers,
}

/// The time `timeout` leaves, `None` for no limit; an error once spent.
fn budget(
    timeout: &ureq::unversioned::transport::NextTimeout,
) -> Result<Option<Duration>, ureq::Error> {
    if timeout.after.is_not_happening() {
        return Ok(None);
    }
    let after = *timeout.after;
    if after.is_zero() {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    Ok(Some(after))
}

/// Whether `error` is a socket timeout (`SO_RCVTIMEO`/`SO_SNDTIMEO` say
/// `EAGAIN`).
fn timed_out(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    )
}

impl ureq::unversioned::transport::Transport for Connected {
    fn buffers(&mut self) -> &mut dyn ureq::unversioned::transport::Buffers {
        &mut self.buffers
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<(), ureq::Error> {
        use ureq::unversioned::transport::Buffers as _;
        let timeout = timeout.for_write();
        self.stream.set_write_timeout(budget(&timeout)?)?;
        let output = &self.buffers.output()[..amount];
        match (&*self.stream).write_all(output) {
            Ok(()) => Ok(()),
            Err(error) if timed_out(&error) => Err(ureq::Error::Timeout(timeout.reason)),
            Err(error) => Err(error.into()),
        }
    }

    fn await_input(
        &mut self,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<bool, ureq::Error> {
        use ureq::unversioned::transport::Buffers as _;
        let timeout = timeout.for_read();
        self.stream.set_read_timeout(budget(&timeout)?)?;
        let input = self.buffers.input_append_buf();
        let read = loop {
            match (&*self.stream).read(input) {
                Ok(read) => break read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) if timed_out(&error) => {
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                Err(error) => return Err(error.into()),
            }
        };
        self.buffers.input_appended(read);
        Ok(read > 0)
    }

    fn is_open(&mut self) -> bool {
        // Idle in the pool: nothing may be waiting, and it must not be
        // closed.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8];
        let open = matches!(
            (&*self.stream).read(&mut byte),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock
        );
        open && self.stream.set_nonblocking(false).is_ok()
    }
}

impl<In: ureq::unversioned::transport::Transport> ureq::unversioned::transport::Connector<In>
    for Connect
{
    type Out = ureq::unversioned::transport::Either<In, Connected>;

    fn connect(
        &self,
        details: &ureq::unversioned::transport::ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        use ureq::unversioned::transport::{Either, LazyBuffers};
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        // As ureq does: each address gets a share of what is left of the
        // budget (a half, a quarter...), so that one address that never
        // answers (IPv6 without a route) leaves time for the next.
        let started = Instant::now();
        let budget = details.timeout.not_zero().map(|after| *after);
        let count = details.addrs.len();
        let mut last = None;
        for (position, address) in details.addrs.iter().enumerate() {
            let deadline = budget.map(|budget| {
                let left = budget.saturating_sub(started.elapsed());
                let share = if position + 1 == count {
                    left
                } else {
                    (left / 2).max(Duration::from_millis(10))
                };
                Instant::now() + share
            });
            match connect_interruptibly(*address, deadline) {
                Ok(stream) => {
                    let config = details.config;
                    if config.no_delay() {
                        stream.set_nodelay(true)?;
                    }
                    let stream = std::sync::Arc::new(stream);
                    let weak = std::sync::Arc::downgrade(&stream)
                        as std::sync::Weak<dyn ureq::unversioned::transport::ShutdownHandle>;
                    (details.register_shutdown)(weak)?;
                    return Ok(Some(Either::B(Connected {
                        stream,
                        buffers: LazyBuffers::new(
                            config.input_buffer_size(),
                            config.output_buffer_size(),
                        ),
                    })));
                }
                Err(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                    if budget.is_some_and(|budget| started.elapsed() >= budget) {
                        return Err(ureq::Error::Timeout(details.timeout.reason));
                    }
                    last = Some(error);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {
                    return Err(ureq::Error::Io(error));
                }
                Err(error) => last = Some(error),
            }
        }
        match last {
            Some(error) if error.kind() == std::io::ErrorKind::TimedOut => {
                Err(ureq::Error::Timeout(details.timeout.reason))
            }
            Some(error) => Err(ureq::Error::Io(error)),
            None => Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "Connection refused",
            ))),
        }
    }
}

/// Connect to `address` by `deadline`, checking for a signal every 100 ms.
fn connect_interruptibly(
    address: std::net::SocketAddr,
    deadline: Option<Instant>,
) -> std::io::Result<std::net::TcpStream> {
    use nix::errno::Errno;
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrStorage, connect, getsockopt, socket, sockopt,
    };
    use std::os::fd::{AsFd, AsRawFd};
    let family = if address.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let socket = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match connect(socket.as_raw_fd(), &SockaddrStorage::from(address)) {
        Ok(()) => {}
        Err(Errno::EINPROGRESS | Errno::EINTR) => loop {
            if let Some(signal) = crate::cancel::interrupted() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Interrupted,
                    format!("interrupted by signal {signal}"),
                ));
            }
            let mut slice = Duration::from_millis(100);
            if let Some(deadline) = deadline {
                let now = Instant::now();
                if now >= deadline {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                slice = slice.min(deadline - now);
            }
            let millis = u16::try_from(slice.as_millis().max(1)).unwrap_or(100);
            let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLOUT)];
            match poll(&mut fds, PollTimeout::from(millis)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => match getsockopt(&socket, sockopt::SocketError)? {
                    0 => break,
                    code => return Err(std::io::Error::from_raw_os_error(code)),
                },
                Err(error) => return Err(error.into()),
            }
        },
        Err(error) => return Err(error.into()),
    }
    let flags = OFlag::from_bits_truncate(fcntl(&socket, FcntlArg::F_GETFL)?);
    fcntl(&socket, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(std::net::TcpStream::from(socket))
}

#[derive(Default)]
struct Watched {
    next: u64,
    agents: Vec<(u64, ureq::Agent)>,
    fired: bool,
}

static WATCHED: Mutex<Watched> = Mutex::new(Watched {
    next: 0,
    agents: Vec::new(),
    fired: false,
});

/// While alive, a signal shuts the agent down.
pub(crate) struct Watch(u64);

impl Drop for Watch {
    fn drop(&mut self) {
        WATCHED
            .lock()
            .expect("watch lock")
            .agents
            .retain(|(id, _)| *id != self.0);
    }
}

/// Shut `agent` down (ending its transfers) when strata is interrupted.
pub(crate) fn watch(agent: &ureq::Agent) -> Watch {
    static WATCHER: Once = Once::new();
    WATCHER.call_once(|| {
        // Without the thread, transfers still end within their timeouts.
        let _ = std::thread::Builder::new()
            .name("net-cancel".to_owned())
            .spawn(|| {
                while crate::cancel::interrupted().is_none() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let agents = {
                    let mut watched = WATCHED.lock().expect("watch lock");
                    watched.fired = true;
                    std::mem::take(&mut watched.agents)
                };
                for (_, agent) in agents {
                    agent.shutdown();
                }
            });
    });
    let mut watched = WATCHED.lock().expect("watch lock");
    if watched.fired {
        agent.clone().shutdown();
    }
    watched.next += 1;
    let id = watched.next;
    watched.agents.push((id, agent.clone()));
    Watch(id)
}

/// Sleep `duration` unless strata is interrupted: the signal's number.
pub(crate) fn sleep(duration: Duration) -> Result<(), i32> {
    let end = Instant::now() + duration;
    loop {
        if let Some(signal) = crate::cancel::interrupted() {
            return Err(signal);
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

/// Why a transfer failed, in words for an error message.
pub(crate) fn describe(error: &ureq::Error) -> String {
    use ureq::Timeout;
    let limits = limits();
    match error {
        ureq::Error::Timeout(Timeout::PerRead) => {
            format!("no data for {} (idle timeout)", seconds(limits.idle))
        }
        ureq::Error::Timeout(Timeout::PerWrite) => {
            format!("could not send for {} (idle timeout)", seconds(limits.idle))
        }
        ureq::Error::Timeout(Timeout::Resolve | Timeout::Connect) => format!(
            "no connection within {} (connect timeout)",
            seconds(limits.connect)
        ),
        ureq::Error::Timeout(Timeout::RecvResponse) => format!(
            "no answer within {} (response timeout)",
            seconds(RESPONSE.max(limits.idle))
        ),
        ureq::Error::Timeout(Timeout::RecvBody | Timeout::SendBody) => format!(
            "not complete within the transfer timeout ({} plus 1 s per {} of its size)",
            seconds(TRANSFER_BASE),
            bytes(MIN_RATE)
        ),
        ureq::Error::Timeout(other) => format!("timed out ({other})"),
        ureq::Error::Io(io) => describe_io(io),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        other => other.to_string(),
    }
}

/// [`describe`] for what a body reader returns.
pub(crate) fn describe_io(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
    {
        Some(inner) => describe(inner),
        None => error.to_string(),
    }
}

/// Whether a transport failure is worth another attempt: a connection
/// refused, reset or closed early; never a timeout (the next attempt would
/// hang as long) nor anything after a signal.
pub(crate) fn retryable(error: &ureq::Error) -> bool {
    if crate::cancel::interrupted().is_some() {
        return false;
    }
    match error {
        ureq::Error::Io(io) => {
            !matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) && io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                .is_none_or(retryable)
        }
        ureq::Error::ConnectionFailed => true,
        _ => false,
    }
}

/// How much a body may or must hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expect {
    /// Exactly this many bytes (a blob's descriptor size).
    Exactly(u64),
    /// At most `limit` bytes of `what` (`manifests`); more is an error.
    AtMost {
        /// The limit.
        limit: u64,
        /// What it is the limit for, plural.
        what: &'static str,
    },
}

/// Why reading a body failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The transport failed (a timeout, a reset).
    #[error("{reason}")]
    Transport {
        /// In words.
        reason: String,
        /// Whether another attempt may do better (a reset, not a
        /// timeout).
        retryable: bool,
    },
    /// A signal ended it.
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
    /// More than a limit.
    #[error("larger than the {} limit for {what}", bytes(*limit))]
    TooLarge {
        /// The limit.
        limit: u64,
        /// What for.
        what: &'static str,
    },
    /// More than the declared size arrived (or was announced).
    #[error("more than its declared size of {declared} bytes arrived")]
    Longer {
        /// The declared size.
        declared: u64,
    },
    /// The body ended early.
    #[error("it ended after {got} of its declared {declared} bytes")]
    Shorter {
        /// What arrived.
        got: u64,
        /// The declared size.
        declared: u64,
    },
    /// Slower than [`MIN_RATE`] on average, past [`TRANSFER_BASE`].
    #[error(
        "only {got} bytes in {}, slower than the minimum rate of {}/s",
        seconds(*elapsed),
        bytes(MIN_RATE)
    )]
    TooSlow {
        /// What arrived.
        got: u64,
        /// In this time.
        elapsed: Duration,
    },
    /// Writing what arrived failed.
    #[error("{0}")]
    Write(std::io::Error),
}

/// The `Content-Length` a response announces.
pub(crate) fn content_length(response: &Response<ureq::Body>) -> Option<u64> {
    response
        .headers()
        .get("content-length")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Copy the body of `response` to `out`, as `expect` says, checking the
/// limits between reads; the bytes copied.
pub(crate) fn copy(
    response: Response<ureq::Body>,
    out: &mut dyn Write,
    expect: Expect,
) -> Result<u64, ReadError> {
    let (limit, exact) = match expect {
        Expect::Exactly(size) => (size, true),
        Expect::AtMost { limit, .. } => (limit, false),
    };
    let too_much = |_: u64| match expect {
        Expect::Exactly(declared) => ReadError::Longer { declared },
        Expect::AtMost { limit, what } => ReadError::TooLarge { limit, what },
    };
    let announced = content_length(&response);
    if let Some(length) = announced
        && length > limit
    {
        return Err(too_much(length));
    }
    let mut reader = response.into_body().into_reader();
    let started = Instant::now();
    let mut buffer = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        if let Some(signal) = crate::cancel::interrupted() {
            return Err(ReadError::Interrupted(signal));
        }
        // Never more than one byte past the limit.
        let room = usize::try_from((limit - total).saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(buffer.len());
        let read = match reader.read(&mut buffer[..room]) {
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                if let Some(signal) = crate::cancel::interrupted() {
                    return Err(ReadError::Interrupted(signal));
                }
                // The connection closed before its Content-Length.
                if exact && error.kind() == std::io::ErrorKind::UnexpectedEof {
                    return Err(ReadError::Shorter {
                        got: total,
                        declared: limit,
                    });
                }
                return Err(ReadError::Transport {
                    reason: describe_io(&error),
                    retryable: retryable(&ureq::Error::Io(error)),
                });
            }
        };
        if read == 0 {
            break;
        }
        total += read as u64;
        if total > limit {
            return Err(too_much(total));
        }
        out.write_all(&buffer[..read]).map_err(ReadError::Write)?;
        let elapsed = started.elapsed();
        if elapsed > transfer_timeout(total) {
            return Err(ReadError::TooSlow {
                got: total,
                elapsed,
            });
        }
    }
    // A shut-down connection may look like the end of the body.
    if let Some(signal) = crate::cancel::interrupted() {
        return Err(ReadError::Interrupted(signal));
    }
    if exact && total < limit {
        return Err(ReadError::Shorter {
            got: total,
            declared: limit,
        });
    }
    Ok(total)
}

/// The body of `response`, at most `limit` bytes of `what`.
pub(crate) fn read_limited(
    response: Response<ureq::Body>,
    limit: u64,
    what: &'static str,
) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    copy(response, &mut bytes, Expect::AtMost { limit, what })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_in_words() {
        assert_eq!(bytes(4 << 20), "4 MiB");
        assert_eq!(bytes(32 << 10), "32 KiB");
        assert_eq!(bytes(16 << 30), "16 GiB");
        assert_eq!(bytes(1000), "1000 bytes");
        assert_eq!(seconds(Duration::from_secs(2)), "2 s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5 s");
        assert_eq!(transfer_timeout(0), TRANSFER_BASE);
        assert_eq!(
            transfer_timeout(MIN_RATE * 10),
            TRANSFER_BASE + Duration::from_secs(10)
        );
    }

    #[test]
    fn read_errors_name_the_limit() {
        assert_eq!(
            ReadError::TooLarge {
                limit: MAX_MANIFEST,
                what: "manifests"
            }
            .to_string(),
            "larger than the 4 MiB limit for manifests"
        );
        assert_eq!(
            ReadError::Longer { declared: 10 }.to_string(),
            "more than its declared size of 10 bytes arrived"
        );
        assert_eq!(
            ReadError::Shorter {
                got: 3,
                declared: 10
            }
            .to_string(),
            "it ended after 3 of its declared 10 bytes"
        );
    }
}
