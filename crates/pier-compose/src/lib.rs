//! `pier compose`: the Compose Specification loaded into one typed
//! [`Project`](load::Project) (see `load` for the pipeline), and the compose
//! commands, which reach the daemon only through `pier-client`.

pub mod api;
pub mod cli;
pub mod cmd;
pub mod convert;
pub mod ctx;
pub mod de;
pub mod dotenv;
pub mod error;
pub mod interp;
pub mod labels;
pub mod load;
pub mod merge;
pub mod model;
mod out;
pub mod plugin;
pub mod ports;
mod prep;
pub mod progress;
pub mod secrets;
pub mod tree;
pub mod volumes;
pub mod yaml;

pub use error::{ComposeError, Result};
pub use load::{load, Options, Project};
