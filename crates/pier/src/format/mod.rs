//! Docker's output formats: Go templates, aligned tables, sizes and times.

pub mod table;
pub mod template;
pub mod units;
