//! Stopping the work in flight: a signal the CLI catches (SIGINT, SIGTERM,
//! SIGHUP) or a library caller's [`interrupt`].
//!
//! Cancellation is process-wide, as signals are: every sandbox running in
//! this process is killed (the modules that start processes register a
//! hook here), and every loop that waits on the network or on a step asks
//! [`interrupted`] and stops with an error naming the signal. It sits at
//! the bottom of the solver, beside `time` and `digest`, so that `registry`
//! and `exec` both use it without one importing the other.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static HANDLING: AtomicBool = AtomicBool::new(false);
/// What to do on an interrupt, besides remembering it (kill the sandboxes).
static HOOKS: Mutex<Vec<fn()>> = Mutex::new(Vec::new());

/// The signal that interrupted strata, if one did.
pub fn interrupted() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Stop everything in flight in this process as if `signal` had come: the
/// sandboxes are killed and the solves return an interrupt error, having
/// cleaned up.
pub fn interrupt(signal: i32) {
    SIGNAL.store(signal, Ordering::SeqCst);
    let hooks = HOOKS.lock().expect("cancel hooks lock").clone();
    for hook in hooks {
        hook();
    }
}

/// Call `hook` on every interrupt from now on (once per distinct hook).
pub(crate) fn on_interrupt(hook: fn()) {
    let mut hooks = HOOKS.lock().expect("cancel hooks lock");
    if !hooks.contains(&hook) {
        hooks.push(hook);
    }
}

/// On any of `signals`, [`interrupt`]: the runs then clean up and return
/// their interrupt errors. Installed once per process; later calls do
/// nothing.
pub fn stop_on_signals(signals: &[i32]) -> std::io::Result<()> {
    if HANDLING.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    let mut iterator = signal_hook::iterator::Signals::new(signals)?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            for signal in iterator.forever() {
                interrupt(signal);
            }
        })?;
    Ok(())
}
