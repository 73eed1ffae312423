//! The OS boundary: the only Pier crate allowed `unsafe`. Every unsafe block is
//! small and carries a SAFETY note; callers get safe functions returning
//! `io::Result` with the path or operation named in the error.

// The OS layer is synchronous: the engine calls it from blocking threads.
#![allow(clippy::disallowed_methods)]
// The workspace denies `unsafe_code`; this crate is where it is allowed.
#![allow(unsafe_code)]

mod activation;
mod fdpass;
mod memory;
mod mount;
mod mount_opts;
mod process;
mod seccomp;
mod tty;

pub use activation::{take_activation_listeners, Activated, FIRST_ACTIVATION_FD};
pub use fdpass::{recv_fd, send_fd};
pub use memory::release_clean_file_pages;
pub use mount::{bind_mount, mount_overlay, mount_overlay_volatile, unmount};
pub use mount_opts::{mount_tmpfs, mount_with_options};
pub use process::{
    exit_immediately, fork_single_threaded, redirect_fd, reset_signals_for_exec, run_in_child,
    run_in_child_then, set_child_subreaper, thread_count, Forked,
};
pub use seccomp::load_seccomp_filter;
pub use tty::{get_winsize, set_winsize};

#[doc(hidden)]
pub mod testing {
    //! Entry points used by tests to exercise fallbacks on kernels that would not
    //! take them on their own.
    pub use crate::mount::mount_overlay_legacy;
}
