//! `.dockerignore` rules (Docker's pattern matcher) and the glob matching of
//! COPY sources (Go's `filepath.Match`).

/// One compiled pattern element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `?`: one non-`/` character.
    One,
    /// `[...]`.
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
    /// `**` followed by more pattern: any number of whole leading segments.
    AnyDirs,
    /// `**` at the end: anything.
    AnyTail,
}

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    toks: Vec<Tok>,
}

impl Glob {
    /// Compiles `pattern`; `double_star` enables `**` (dockerignore). Without
    /// it `**` is two `*` (Go's `filepath.Match`).
    pub fn new(pattern: &str, double_star: bool) -> Result<Glob, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '*' if double_star && chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    toks.push(if i >= chars.len() {
                        Tok::AnyTail
                    } else {
                        Tok::AnyDirs
                    });
                }
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::One),
                '\\' => match chars.get(i) {
                    Some(&n) => {
                        toks.push(Tok::Lit(n));
                        i += 1;
                    }
                    None => return Err(format!("syntax error in pattern {pattern:?}")),
                },
                '[' => {
                    let mut negated = false;
                    if chars.get(i) == Some(&'^') {
                        negated = true;
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    let mut first = true;
                    while i < chars.len() {
                        let mut lo = chars[i];
                        if lo == ']' && !first {
                            closed = true;
                            i += 1;
                            break;
                        }
                        first = false;
                        i += 1;
                        if lo == '\\' {
                            lo = *chars.get(i).ok_or("bad escape in class")?;
                            i += 1;
                        }
                        let mut hi = lo;
                        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']')
                        {
                            hi = chars[i + 1];
                            i += 2;
                            if hi == '\\' {
                                hi = *chars.get(i).ok_or("bad escape in class")?;
                                i += 1;
                            }
                        }
                        ranges.push((lo, hi));
                    }
                    if !closed {
                        return Err(format!("syntax error in pattern {pattern:?}"));
                    }
                    toks.push(Tok::Class { ranges, negated });
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Glob { toks })
    }

    /// Whether the whole of `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        let chars: Vec<char> = path.chars().collect();
        match_at(&self.toks, &chars)
    }

    /// Whether the pattern has wildcards at all.
    pub fn is_literal(&self) -> bool {
        self.toks.iter().all(|t| matches!(t, Tok::Lit(_)))
    }
}

fn match_at(toks: &[Tok], s: &[char]) -> bool {
    let Some((tok, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match tok {
        Tok::Lit(c) => s.first() == Some(c) && match_at(rest, &s[1..]),
        Tok::One => s.first().is_some_and(|&c| c != '/') && match_at(rest, &s[1..]),
        Tok::Class { ranges, negated } => match s.first() {
            Some(&c) if c != '/' => {
                let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                inside != *negated && match_at(rest, &s[1..])
            }
            _ => false,
        },
        Tok::Star => {
            for n in 0..=s.len() {
                if match_at(rest, &s[n..]) {
                    return true;
                }
                if n < s.len() && s[n] == '/' {
                    break;
                }
            }
            false
        }
        Tok::AnyTail => true,
        Tok::AnyDirs => {
            // `(.*/)?`: nothing, or any prefix ending with a slash.
            if match_at(rest, s) {
                return true;
            }
            (0..s.len()).any(|n| s[n] == '/' && match_at(rest, &s[n + 1..]))
        }
    }
}

/// Go's `path.Clean` for slash paths.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[derive(Debug, Clone)]
struct Rule {
    glob: Glob,
    exclusion: bool,
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    /// Parses `.dockerignore` text like Docker: `#` comments, trimmed lines,
    /// `!` exceptions, patterns cleaned and made relative (leading `/`
    /// dropped).
    pub fn parse(text: &str) -> Result<DockerIgnore, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let invert = p.starts_with('!');
            if invert {
                p = p[1..].trim();
            }
            let mut pat = String::new();
            if !p.is_empty() {
                pat = clean_path(p);
                if pat.len() > 1 && pat.starts_with('/') {
                    pat.remove(0);
                }
            }
            patterns.push((invert, pat));
        }
        DockerIgnore::from_patterns(patterns)
    }

    /// Builds from `(is_exception, pattern)` pairs (also used for
    /// `COPY --exclude`).
    pub fn from_patterns(
        patterns: impl IntoIterator<Item = (bool, String)>,
    ) -> Result<DockerIgnore, String> {
        let mut rules = Vec::new();
        for (exclusion, p) in patterns {
            if exclusion && p.is_empty() {
                return Err("illegal exclusion pattern: \"!\"".into());
            }
            let cleaned = clean_path(&p);
            let glob = Glob::new(&cleaned, true)?;
            rules.push(Rule { glob, exclusion });
        }
        Ok(DockerIgnore { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `path` (relative to the context, slash separated) is left
    /// out. The last rule that matches the path or one of its parent
    /// directories decides.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean_path(path.trim_start_matches('/'));
        let parents: Vec<&str> = path.split('/').collect();
        let mut excluded = false;
        for rule in &self.rules {
            let mut hit = rule.glob.matches(&path);
            if !hit && parents.len() > 1 {
                hit = (1..parents.len()).any(|i| rule.glob.matches(&parents[..i].join("/")));
            }
            if hit {
                excluded = !rule.exclusion;
            }
        }
        excluded
    }

    /// What a client leaves out of the context tar it sends: like
    /// [`DockerIgnore::is_excluded`], except that the Dockerfile and
    /// `.dockerignore` are always sent (the builder needs them; COPY still
    /// honours the rules for them).
    pub fn excludes_from_context(&self, path: &str, dockerfile: &str) -> bool {
        let p = clean_path(path.trim_start_matches('/'));
        let df = clean_path(dockerfile.trim_start_matches('/'));
        if p == df || p == ".dockerignore" || p == format!("{df}.dockerignore") {
            return false;
        }
        self.is_excluded(&p)
    }

    /// Whether any `!` rule exists (then a walk must look inside excluded
    /// directories, since something below may be re-included).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exclusion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn docker_documented_examples() {
        // (dockerignore, path, excluded)
        let table: &[(&str, &str, bool)] = &[
            ("*/temp*", "somedir/temporary.txt", true),
            ("*/temp*", "somedir/temp", true),
            ("*/temp*", "somedir/temp/inner.txt", true),
            ("*/temp*", "temporary.txt", false),
            ("*/temp*", "a/b/temp", false),
            ("*/*/temp*", "somedir/subdir/temporary.txt", true),
            ("*/*/temp*", "somedir/temporary.txt", false),
            ("temp?", "tempa", true),
            ("temp?", "tempb", true),
            ("temp?", "temp", false),
            ("temp?", "tempab", false),
            ("**/*.go", "main.go", true),
            ("**/*.go", "a/b/c/x.go", true),
            ("**/*.go", "a/b/c/x.gox", false),
            ("*.md\n!README.md", "CHANGES.md", true),
            ("*.md\n!README.md", "README.md", false),
            (
                "*.md\n!README*.md\nREADME-secret.md",
                "README-secret.md",
                true,
            ),
            (
                "*.md\n!README*.md\nREADME-secret.md",
                "README-public.md",
                false,
            ),
            (
                "*.md\nREADME-secret.md\n!README*.md",
                "README-secret.md",
                false,
            ),
            ("# comment\n\n  node_modules  ", "node_modules/x/y.js", true),
            ("/build", "build/out", true),
            ("/build/", "build", true),
            ("./build", "build", true),
            ("build", "src/build", false),
            ("**/build", "src/build/x", true),
            ("**", "anything/at/all", true),
            ("**\n!keep", "keep", false),
            ("dir/**", "dir/a/b", true),
            ("dir/**", "dir", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/c", false),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[^a-c]x", "dx", true),
            ("\\*x", "*x", true),
            ("\\*x", "ax", false),
            ("*", "a/b", true),
            ("!a\nb", "a", false),
            ("docs\n!docs/keep.md", "docs/keep.md", false),
            ("docs\n!docs/keep.md", "docs/other.md", true),
            ("../x", "x", false),
        ];
        for (rules, path, want) in table {
            assert_eq!(
                ig(rules).is_excluded(path),
                *want,
                "rules {rules:?} path {path}"
            );
        }
    }

    #[test]
    fn dockerfile_and_ignore_file_are_always_sent() {
        let i = ig("*\n");
        assert!(!i.excludes_from_context("Dockerfile", "Dockerfile"));
        assert!(!i.excludes_from_context(".dockerignore", "Dockerfile"));
        assert!(!i.excludes_from_context("build/app.Dockerfile", "build/app.Dockerfile"));
        assert!(i.excludes_from_context("src/main.rs", "Dockerfile"));
        assert!(i.is_excluded("Dockerfile"));
    }

    #[test]
    fn bad_patterns() {
        assert!(DockerIgnore::parse("!").is_err());
        assert!(DockerIgnore::parse("[abc").is_err());
        assert!(DockerIgnore::parse("abc\\").is_err());
    }

    #[test]
    fn go_match_semantics() {
        let m = |p: &str, s: &str| Glob::new(p, false).unwrap().matches(s);
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "d/a.txt"));
        assert!(m("d/*.txt", "d/a.txt"));
        assert!(!m("**.txt", "d/a.txt"));
        assert!(m("fil?", "file"));
        assert!(Glob::new("abc", false).unwrap().is_literal());
        assert!(!Glob::new("a*c", false).unwrap().is_literal());
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path("a//b/./c/.."), "a/b");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(clean_path("../a"), "../a");
        assert_eq!(clean_path("./"), ".");
        assert_eq!(clean_path("a/"), "a");
    }
}
