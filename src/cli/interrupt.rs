//! Ctrl-C and SIGTERM during apply: the first asks the engine to stop starting steps (the
//! requests in flight finish and are recorded, then apply reports what it did); the second
//! ends the process at once, which the journal also makes safe.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: _exit is async-signal-safe; nothing else is touched.
        unsafe { libc::_exit(130) };
    }
    STOP.store(true, Ordering::SeqCst);
    const MSG: &[u8] =
        b"\ninterrupted: finishing the steps in flight (press Ctrl-C again to stop at once)\n";
    // SAFETY: write(2) is async-signal-safe; the buffer is static.
    unsafe { libc::write(2, MSG.as_ptr().cast(), MSG.len()) };
}

/// Installs the handlers for SIGINT and SIGTERM; returns the flag they set.
pub fn install() -> &'static AtomicBool {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches atomics and async-signal-safe calls.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    &STOP
}
