//! DNS messages as the embedded server reads and writes them. Any container
//! on a network can send anything here, so every read is bounds-checked and
//! a packet that does not parse is dropped; answers fit the client's UDP
//! size (512 bytes, or what its EDNS OPT record offers) or are truncated
//! with the TC bit so it retries over TCP, and a query with an OPT record
//! gets one back (RFC 6891).

use std::net::Ipv4Addr;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
const TYPE_OPT: u16 = 41;
pub const CLASS_IN: u16 = 1;
const TTL: u32 = 600;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_REFUSED: u8 = 5;
/// Extended rcode 16: the query's EDNS version is not one we speak.
pub const RCODE_BADVERS: u16 = 16;
/// A UDP answer without EDNS (RFC 1035).
pub const PLAIN_UDP_SIZE: usize = 512;
/// The UDP payload we offer and accept at most (the size most resolvers now
/// use; larger ones fragment).
pub const EDNS_UDP_SIZE: u16 = 1232;
/// A TCP message: the length prefix is 16 bits.
pub const TCP_SIZE: usize = 65535;

const HEADER: usize = 12;
const FLAG_QR: u8 = 0x80;
const FLAG_AA: u8 = 0x04;
const FLAG_TC: u8 = 0x02;
const FLAG_RA: u8 = 0x80;

/// The EDNS(0) OPT record of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
}

/// A parsed query: its question and where the question ends in `raw`.
#[derive(Debug)]
pub struct Query<'a> {
    pub raw: &'a [u8],
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    question_end: usize,
    pub edns: Option<Edns>,
}

impl Query<'_> {
    pub fn id(&self) -> [u8; 2] {
        [self.raw[0], self.raw[1]]
    }

    /// The largest UDP answer this client takes.
    pub fn udp_limit(&self) -> usize {
        match self.edns {
            Some(e) => e.udp_size.clamp(PLAIN_UDP_SIZE as u16, EDNS_UDP_SIZE) as usize,
            None => PLAIN_UDP_SIZE,
        }
    }
}

fn u16_at(p: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(i)?, *p.get(i.checked_add(1)?)?]))
}

/// Skips a (possibly compressed) name starting at `i`; the index after it.
fn skip_name(p: &[u8], mut i: usize) -> Option<usize> {
    // 128 labels is more than the 255-byte name limit allows.
    for _ in 0..128 {
        let len = *p.get(i)? as usize;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(i + 1),
            0x00 => i = i.checked_add(1 + len)?,
            // A pointer ends the name where it stands.
            0xC0 => return p.get(i + 1).map(|_| i + 2),
            _ => return None,
        }
    }
    None
}

/// A query from a client; `None` for anything else (responses included, so
/// a forged answer cannot start a loop between servers).
pub fn parse_query(q: &[u8]) -> Option<Query<'_>> {
    if q.len() < HEADER || q[2] & FLAG_QR != 0 || u16_at(q, 4)? != 1 {
        return None;
    }
    let mut i = HEADER;
    let mut labels: Vec<String> = Vec::new();
    let mut name_len = 0usize;
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        // Queries carry no compression pointers in the question.
        if len & 0xC0 != 0 {
            return None;
        }
        name_len += len + 1;
        if name_len > 255 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).into_owned());
        i += len;
    }
    let qtype = u16_at(q, i)?;
    let qclass = u16_at(q, i + 2)?;
    let question_end = i + 4;
    // The records after the question: only an OPT in the additional section
    // matters to us; the others are skipped (and must parse).
    let records = [u16_at(q, 6)?, u16_at(q, 8)?, u16_at(q, 10)?];
    let mut edns = None;
    let mut j = question_end;
    for (section, count) in records.iter().enumerate() {
        for _ in 0..*count {
            let name_at = j;
            j = skip_name(q, j)?;
            let rtype = u16_at(q, j)?;
            let class = u16_at(q, j + 2)?;
            let ttl_hi = *q.get(j + 5)?;
            let rdlen = u16_at(q, j + 8)? as usize;
            j = j.checked_add(10 + rdlen)?;
            if j > q.len() {
                return None;
            }
            if section == 2 && rtype == TYPE_OPT && q[name_at] == 0 && edns.is_none() {
                edns = Some(Edns {
                    udp_size: class,
                    version: ttl_hi,
                });
            }
        }
    }
    Some(Query {
        raw: q,
        name: labels.join("."),
        qtype,
        qclass,
        question_end,
        edns,
    })
}

/// The OPT record we answer with; `ext_rcode` is the rcode's upper 8 bits.
fn opt_record(ext_rcode: u8) -> [u8; 11] {
    let s = EDNS_UDP_SIZE.to_be_bytes();
    [0, 0, TYPE_OPT as u8, s[0], s[1], ext_rcode, 0, 0, 0, 0, 0]
}

/// A reply of at most `limit` bytes to `q` with `rcode` and A records for
/// `ips`: the records that do not fit are left out and TC set.
pub fn reply(q: &Query, rcode: u16, ips: &[Ipv4Addr], limit: usize) -> Vec<u8> {
    let opt = q.edns.map(|_| opt_record((rcode >> 4) as u8));
    let question = &q.raw[HEADER..q.question_end];
    let fixed = HEADER + question.len() + opt.map_or(0, |o| o.len());
    let fit = limit.saturating_sub(fixed) / 16;
    let n = ips.len().min(fit).min(u16::MAX as usize);
    let truncated = n < ips.len();
    let mut out = Vec::with_capacity(fixed + n * 16);
    out.extend_from_slice(&q.id());
    // QR, the query's opcode and RD, AA; RA, the rcode's lower bits.
    let mut flags = FLAG_QR | (q.raw[2] & 0x79) | FLAG_AA;
    if truncated {
        flags |= FLAG_TC;
    }
    out.push(flags);
    out.push(FLAG_RA | (rcode & 0x0F) as u8);
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(opt.is_some() as u16).to_be_bytes());
    out.extend_from_slice(question);
    for ip in &ips[..n] {
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&ip.octets());
    }
    if let Some(o) = opt {
        out.extend_from_slice(&o);
    }
    out
}

/// An upstream's answer `a` to `q`, as the client may receive it: as is
/// when it fits `limit`, else its header and question with TC set (the
/// client asks again over TCP).
pub fn fit_answer(q: &Query, a: Vec<u8>, limit: usize) -> Vec<u8> {
    if a.len() <= limit || a.len() < HEADER {
        return a;
    }
    let rcode = u16::from(a[3] & 0x0F);
    let mut out = reply(q, rcode, &[], limit);
    out[2] = a[2] | FLAG_TC;
    out[3] = a[3];
    out
}

/// Builds a query for `name` (for tests and health checks).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.trim_end_matches('.').split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

/// `q` with an OPT record offering `udp_size` (for tests).
pub fn with_edns(mut q: Vec<u8>, udp_size: u16) -> Vec<u8> {
    q[11] = 1;
    q.extend_from_slice(&[0, 0, TYPE_OPT as u8]);
    q.extend_from_slice(&udp_size.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    q
}

/// A parsed reply: rcode, truncated, the A addresses, and the UDP size of
/// its OPT record if it has one.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub rcode: u8,
    pub truncated: bool,
    pub ips: Vec<Ipv4Addr>,
    pub edns: Option<u16>,
}

/// Reads a reply (for tests and health checks); `None` if it does not parse.
pub fn parse_reply(a: &[u8]) -> Option<Reply> {
    if a.len() < HEADER || a[2] & FLAG_QR == 0 || u16_at(a, 4)? != 1 {
        return None;
    }
    let mut i = skip_name(a, HEADER)?.checked_add(4)?;
    let mut ips = Vec::new();
    let mut edns = None;
    let counts = [u16_at(a, 6)?, u16_at(a, 8)?, u16_at(a, 10)?];
    for (section, count) in counts.iter().enumerate() {
        for _ in 0..*count {
            i = skip_name(a, i)?;
            let t = u16_at(a, i)?;
            let class = u16_at(a, i + 2)?;
            let len = u16_at(a, i + 8)? as usize;
            let data = a.get(i + 10..i + 10 + len)?;
            if section == 0 && t == TYPE_A && len == 4 {
                ips.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
            }
            if section == 2 && t == TYPE_OPT {
                edns = Some(class);
            }
            i += 10 + len;
        }
    }
    Some(Reply {
        rcode: a[3] & 0x0F,
        truncated: a[2] & FLAG_TC != 0,
        ips,
        edns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(n: usize) -> Vec<Ipv4Addr> {
        (0..n)
            .map(|i| Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1))
            .collect()
    }

    #[test]
    fn answers_fit_the_client_and_keep_edns() {
        let plain = build_query(1, "web", TYPE_A);
        let q = parse_query(&plain).unwrap();
        assert_eq!((q.name.as_str(), q.edns, q.udp_limit()), ("web", None, 512));
        let a = reply(&q, 0, &ips(100), q.udp_limit());
        assert!(a.len() <= 512, "{}", a.len());
        let r = parse_reply(&a).unwrap();
        assert!(r.truncated);
        assert_eq!(r.edns, None);
        assert!(!r.ips.is_empty() && r.ips.len() < 100);
        // Few records: whole, not truncated.
        let r = parse_reply(&reply(&q, 0, &ips(3), 512)).unwrap();
        assert_eq!((r.truncated, r.ips.len()), (false, 3));

        let big = with_edns(build_query(2, "web", TYPE_A), 4096);
        let q = parse_query(&big).unwrap();
        assert_eq!(q.edns.map(|e| e.udp_size), Some(4096));
        assert_eq!(q.udp_limit(), EDNS_UDP_SIZE as usize);
        let a = reply(&q, 0, &ips(100), q.udp_limit());
        assert!(a.len() <= EDNS_UDP_SIZE as usize);
        let r = parse_reply(&a).unwrap();
        assert_eq!(r.edns, Some(EDNS_UDP_SIZE), "the OPT record is echoed");
        assert!(r.truncated && r.ips.len() > 30);
        // An EDNS size below 512 still gets 512.
        let small = parse_query(&with_edns(build_query(3, "web", TYPE_A), 100))
            .unwrap()
            .udp_limit();
        assert_eq!(small, 512);
    }

    #[test]
    fn oversized_upstream_answers_are_truncated() {
        let raw = with_edns(build_query(9, "x.example", TYPE_A), 600);
        let q = parse_query(&raw).unwrap();
        let mut big = reply(&q, 0, &ips(200), TCP_SIZE);
        big[3] |= 0; // an upstream answer, as a resolver would send it
        let out = fit_answer(&q, big, q.udp_limit());
        assert!(out.len() <= 600);
        let r = parse_reply(&out).unwrap();
        assert!(r.truncated && r.ips.is_empty());
        assert_eq!(&out[..2], &9u16.to_be_bytes());
    }

    #[test]
    fn responses_and_garbage_are_not_queries() {
        let a = reply(
            &parse_query(&build_query(1, "a", TYPE_A)).unwrap(),
            0,
            &[],
            512,
        );
        assert!(parse_query(&a).is_none(), "a response is not a query");
        assert!(parse_query(&[0; 11]).is_none());
        let mut two = build_query(1, "a", TYPE_A);
        two[5] = 2;
        assert!(parse_query(&two).is_none());
        let mut lying = build_query(1, "a", TYPE_A);
        lying[11] = 200; // 200 additional records that are not there
        assert!(parse_query(&lying).is_none());
    }

    /// xorshift64*: deterministic cases without a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Random and mutated packets: parsing never panics, and every reply
    /// fits its limit, carries the query's id and parses back.
    #[test]
    fn fuzzed_packets_never_panic_and_replies_fit() {
        let mut r = Rng(0xD15_C0DE);
        let seeds = [
            build_query(7, "web", TYPE_A),
            with_edns(build_query(8, "db.example.com", TYPE_AAAA), 4096),
            with_edns(build_query(9, "a.b.c.d.e.f", TYPE_A), 0),
        ];
        let start = std::time::Instant::now();
        let mut parsed = 0;
        for n in 0..200_000 {
            if n % 1024 == 0 && start.elapsed() > std::time::Duration::from_secs(4) {
                break;
            }
            let mut p = if r.below(4) == 0 {
                (0..r.below(600))
                    .map(|_| r.next() as u8)
                    .collect::<Vec<u8>>()
            } else {
                seeds[r.below(seeds.len())].clone()
            };
            for _ in 0..r.below(6) {
                if p.is_empty() {
                    break;
                }
                let i = r.below(p.len());
                match r.below(4) {
                    0 => p[i] = r.next() as u8,
                    1 => p.truncate(i),
                    2 => p.insert(i, r.next() as u8),
                    _ => p.extend((0..r.below(40)).map(|_| r.next() as u8)),
                }
            }
            let Some(q) = parse_query(&p) else { continue };
            parsed += 1;
            let limit = q.udp_limit();
            let ips = ips(r.below(300));
            let rcode = r.below(24) as u16;
            let a = reply(&q, rcode, &ips, limit);
            assert!(
                a.len() <= limit.max(HEADER + 255 + 4 + 11),
                "{} > {limit}",
                a.len()
            );
            assert_eq!(&a[..2], &p[..2]);
            let back = parse_reply(&a).expect("our reply parses");
            assert_eq!(back.edns.is_some(), q.edns.is_some());
            let _ = fit_answer(&q, p.clone(), limit);
        }
        assert!(parsed > 100, "only {parsed} packets parsed as queries");
    }
}
