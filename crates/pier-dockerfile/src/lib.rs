//! Dockerfile parser and shell-word expander for Pier's builder.
//!
//! No I/O: everything takes text and returns data. [`parse`] gives the raw
//! node tree (what BuildKit calls the AST), [`Dockerfile::instructions`]
//! types it, [`Dockerfile::stages`] splits it into build stages, and the
//! [`shell`] module expands variables the way BuildKit does.

mod directives;
mod error;
mod heredoc;
mod instructions;
mod line_parsers;
mod node;
mod parser;
mod quote;
pub mod shell;
mod stages;

pub use error::{ParseError, ParseErrorKind};
pub use heredoc::parse_heredoc;
pub use instructions::{
    parse_mount, Add, ArgDecl, CacheSharing, Command, CommandLine, Copy, From, HealthConfig,
    Healthcheck, Instruction, KeyValue, Mount, MountType, NetworkMode, Onbuild, Run, Security,
    SourceContent,
};
pub use node::{chomp_heredoc_content, Directive, Dockerfile, Heredoc, Node, Warning};
pub use parser::{parse, parse_bytes};
pub use shell::{expand_with_refs, expand_word, expand_words, ExpandError, Expansion, Lexer};
pub use stages::Stage;
