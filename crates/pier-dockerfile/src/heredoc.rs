//! Finding heredoc markers (`<<EOF`, `<<-'EOF'`, `3<<EOF`) on an
//! instruction line.

use crate::node::Heredoc;
use crate::shell::{ExpandError, Lexer};

fn no_env(_: &str) -> Option<String> {
    None
}

/// Parses one word as a heredoc marker. `Ok(None)` when it is not one;
/// an error when its quoting is broken (`<<'EOF`).
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, ExpandError> {
    // ^(\d*)<<(-?)\s*([^<]*)$
    let digits_len = src.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = src[digits_len..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches([' ', '\t', '\n', '\x0c', '\r']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = src[..digits_len].parse::<u32>().unwrap_or(0);

    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &no_env)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &no_env)?;
    // Any quoting in the delimiter (visible as a difference in quote
    // characters between the two lexings) disables expansion of the body.
    let count = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let expand = raw.len() == 1 && count(&words[0]) == count(&raw[0]);
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd,
        expand,
        chomp,
        content: String::new(),
    }))
}

/// All heredoc markers on a logical line, in order.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ExpandError> {
    let lex = Lexer {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset_env: true,
        ..Lexer::new('\\')
    };
    // A line that does not lex (unbalanced quotes) has no heredocs.
    let words = lex.process_words(line, &no_env).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        for ok in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(parse_heredoc(ok).unwrap().unwrap().name, "EOF", "{ok}");
        }
        for not in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert!(parse_heredoc(not).unwrap().is_none(), "{not}");
        }
        for bad in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(bad).is_err(), "{bad}");
        }
        let h = parse_heredoc("3<<-'X'").unwrap().unwrap();
        assert_eq!((h.fd, h.chomp, h.expand), (3, true, false));
        assert!(parse_heredoc("<<eo\\'f").unwrap().unwrap().expand);
    }

    #[test]
    fn from_line() {
        let names = |l: &str| -> Vec<String> {
            heredocs_from_line(l)
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        // The lexer splits "<<-" from "EOF", so BuildKit finds nothing here.
        assert!(names("RUN <<- EOF").is_empty());
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
    }
}
