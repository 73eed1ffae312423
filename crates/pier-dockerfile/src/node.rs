//! The raw node tree: one [`Node`] per instruction, arguments already split
//! by the per-instruction rules but not yet typed or expanded.

use crate::quote::go_quote;

/// A heredoc attached to RUN/COPY/ADD (`<<EOF` ... `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`<<'EOF'` -> `EOF`).
    pub name: String,
    /// File descriptor prefix (`3<<EOF`), 0 when absent.
    pub fd: u32,
    /// False when any part of the delimiter was quoted: no `$VAR` expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the content (see [`Heredoc::data`]).
    pub chomp: bool,
    /// The body exactly as written, each line with its newline.
    pub content: String,
}

impl Heredoc {
    /// The body with leading tabs removed when the heredoc is chomped.
    pub fn data(&self) -> String {
        if self.chomp {
            chomp_heredoc_content(&self.content)
        } else {
            self.content.clone()
        }
    }
}

/// Removes leading tabs from every line.
pub fn chomp_heredoc_content(src: &str) -> String {
    src.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// One instruction as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The instruction keyword as written (`RUN`, `run`, `Copy`...).
    pub value: String,
    /// `--name=value` flags before the arguments, quotes and escapes removed.
    pub flags: Vec<String>,
    /// Arguments: decoded JSON strings, or words / one shell string,
    /// depending on the instruction. ENV and LABEL hold key, value,
    /// separator triples (separator "" for the legacy `ENV k v` form).
    pub args: Vec<String>,
    /// The trigger of an ONBUILD.
    pub sub: Option<Box<Node>>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined) the node came from.
    pub original: String,
    pub start_line: usize,
    pub end_line: usize,
    /// Comment lines directly above the instruction.
    pub comments: Vec<String>,
}

impl Node {
    /// Lowercased keyword.
    pub fn name(&self) -> String {
        self.value.to_lowercase()
    }

    /// BuildKit's s-expression printout of this node (without parentheses).
    pub fn dump(&self) -> String {
        let mut s = self.value.to_lowercase();
        if !self.flags.is_empty() {
            let flags: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            s.push_str(&format!(" [{}]", flags.join(" ")));
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        if let Some(sub) = &self.sub {
            s.push_str(&format!(" ({})", sub.dump()));
        }
        s.trim().to_string()
    }
}

/// A parser directive (`# syntax=`, `# escape=`, `# check=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lowercased name.
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// A non-fatal finding while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub line: usize,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub nodes: Vec<Node>,
    pub directives: Vec<Directive>,
    /// The escape character in effect (`\` or `` ` ``).
    pub escape: char,
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// The whole tree in BuildKit's printout format: one `(name flags args)`
    /// line per instruction, no trailing newline.
    pub fn dump(&self) -> String {
        let lines: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("({})", n.dump()))
            .collect();
        lines.join("\n")
    }

    /// The value of a parser directive, if given.
    pub fn directive(&self, name: &str) -> Option<&str> {
        self.directives
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
            .map(|d| d.value.as_str())
    }

    /// A lexer using this file's escape character, for expanding
    /// instruction arguments.
    pub fn lexer(&self) -> crate::shell::Lexer {
        crate::shell::Lexer::new(self.escape)
    }

    /// The frontend image named by `# syntax=`.
    pub fn syntax(&self) -> Option<&str> {
        self.directive("syntax")
    }
}
