//! Dockerfile parser and shell-word expander for Pier's builder.
//!
//! No I/O: everything takes text and returns data. [`parse`] gives the raw
//! node tree (what BuildKit calls the AST), [`Dockerfile::instructions`]
//! types it, [`Dockerfile::stages`] splits it into build stages, and the
//! [`shell`] module expands variables the way BuildKit does.
//!
//! ```
//! use pier_dockerfile::{parse, CommandLine, Instruction};
//!
//! let df = parse("ARG V=1\nFROM alpine AS base\nENV A=\"x $V\"\nRUN echo $A\n").unwrap();
//! let (globals, stages) = df.stages().unwrap();
//! assert_eq!(globals[0].name, "V");
//! assert_eq!(stages[0].name.as_deref(), Some("base"));
//! let Instruction::Env(kv) = &stages[0].commands[0].instruction else { panic!() };
//! // Values stay raw; the builder expands them with its ARG/ENV state.
//! let env = |k: &str| (k == "V").then(|| "1".to_string());
//! let e = df.lexer().process(&kv[0].value, &env).unwrap();
//! assert_eq!(e.result, "x 1");
//! assert!(e.matched.contains("V"));
//! let Instruction::Run(run) = &stages[0].commands[1].instruction else { panic!() };
//! assert_eq!(run.command, CommandLine::Shell("echo $A".into()));
//! ```

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
pub use shell::{
    expand_heredoc, expand_with_refs, expand_word, expand_words, ExpandError, Expansion, Lexer,
};
pub use stages::Stage;
