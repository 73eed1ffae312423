//! Detach keys, shared by the daemon (which watches attach input for them,
//! as dockerd does) and the CLI (which watches what the user types).

/// Docker's `--detach-keys` syntax: `ctrl-p,ctrl-q`, `a,ctrl-@`.
/// The error text is Docker's (`Unknown character: 'x'`).
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in spec.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            let mut chars = c.chars();
            let (Some(ch), None) = (chars.next(), chars.next()) else {
                return Err(format!("Unknown character: '{k}'"));
            };
            let b = match ch {
                'a'..='z' => ch as u8 - b'a' + 1,
                '@' => 0,
                '[' => 27,
                '\\' => 28,
                ']' => 29,
                '^' => 30,
                '_' => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{k}'"));
        }
    }
    Ok(out)
}

/// Matches the detach sequence in input, holding back a partial match until
/// it completes or breaks (Docker's copyEscapable).
pub struct DetachFilter {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachFilter {
    pub fn new(keys: Vec<u8>) -> DetachFilter {
        DetachFilter { keys, matched: 0 }
    }

    /// Returns the bytes to forward, and whether the full sequence arrived.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_detach_keys("a,ctrl-@,ctrl-\\").unwrap(),
            vec![b'a', 0, 28]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn detach_filter_holds_partial_matches() {
        let mut f = DetachFilter::new(vec![16, 17]);
        assert_eq!(f.feed(b"ab"), (b"ab".to_vec(), false));
        assert_eq!(f.feed(&[16]), (vec![], false));
        assert_eq!(f.feed(b"x"), (vec![16, b'x'], false));
        assert_eq!(f.feed(&[16, 16]), (vec![16], false));
        assert_eq!(f.feed(&[17, b'z']), (vec![], true));
    }
}
