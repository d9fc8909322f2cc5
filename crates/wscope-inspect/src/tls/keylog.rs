//! The NSS key log format (`SSLKEYLOGFILE`), as browsers, curl, Python, Node and rustls write
//! it, and as pcapng Decryption Secrets Blocks carry it.
//!
//! One secret per line: `LABEL <client random, 64 hex digits> <secret, hex>`. The labels used
//! are `CLIENT_RANDOM` (the TLS 1.2 master secret) and the four TLS 1.3 traffic secrets
//! (`CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
//! `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`). Other labels (`EXPORTER_SECRET`,
//! `CLIENT_EARLY_TRAFFIC_SECRET`, `EARLY_EXPORTER_SECRET`, the old `RSA` form) are counted and
//! skipped; comments (`#`) and blank lines are skipped; a malformed line is reported with its
//! line number ([`KeyLogWarning`]) and skipped, never fatal.
//!
//! Memory: one map entry (client random, label, secret of at most 48 bytes) per useful line,
//! about 100 bytes; a key log of 100 000 lines takes about 10 MB. The warnings kept are capped
//! ([`MAX_WARNINGS`]); all are counted.
//!
//! A key log that a program is still writing (live capture) is read with a
//! [`KeyLogFollower`]: each poll hands out the whole lines appended since the last one.

use core::fmt;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use hashbrown::HashMap;

/// The most warnings a [`KeyLog`] keeps (all are counted in [`KeyLogStats::malformed`]).
pub const MAX_WARNINGS: usize = 100;

/// The longest line read; longer ones are malformed (a secret is at most 96 hex digits).
const MAX_LINE: usize = 1024;

/// Which secret a key log line gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// `CLIENT_RANDOM`: the TLS 1.2 (and earlier) master secret.
    ClientRandom,
    /// `CLIENT_HANDSHAKE_TRAFFIC_SECRET` (TLS 1.3).
    ClientHandshake,
    /// `SERVER_HANDSHAKE_TRAFFIC_SECRET` (TLS 1.3).
    ServerHandshake,
    /// `CLIENT_TRAFFIC_SECRET_0` (TLS 1.3).
    ClientTraffic0,
    /// `SERVER_TRAFFIC_SECRET_0` (TLS 1.3).
    ServerTraffic0,
}

impl Label {
    /// The label as written in a key log.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientRandom => "CLIENT_RANDOM",
            Self::ClientHandshake => "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            Self::ServerHandshake => "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            Self::ClientTraffic0 => "CLIENT_TRAFFIC_SECRET_0",
            Self::ServerTraffic0 => "SERVER_TRAFFIC_SECRET_0",
        }
    }

    fn parse(s: &[u8]) -> Option<Self> {
        Some(match s {
            b"CLIENT_RANDOM" => Self::ClientRandom,
            b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Self::ClientHandshake,
            b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => Self::ServerHandshake,
            b"CLIENT_TRAFFIC_SECRET_0" => Self::ClientTraffic0,
            b"SERVER_TRAFFIC_SECRET_0" => Self::ServerTraffic0,
            _ => return None,
        })
    }
}

/// Labels of the format that carry nothing this analyzer uses: counted, skipped.
const IGNORED: [&[u8]; 5] = [
    b"EXPORTER_SECRET",
    b"CLIENT_EARLY_TRAFFIC_SECRET",
    b"EARLY_EXPORTER_SECRET",
    b"RSA",
    b"RSA_SESSION_ID",
];

/// A secret of at most 48 bytes (the SHA-384 hash length, the TLS 1.2 master secret length).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    len: u8,
    bytes: [u8; 48],
}

impl Secret {
    /// A secret from its bytes; `None` when empty or longer than 48 bytes.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() || bytes.len() > 48 {
            return None;
        }
        let mut s = Self {
            len: bytes.len() as u8,
            bytes: [0; 48],
        };
        s.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(s)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "Secret({} bytes)", self.len)
    }
}

/// Why a key log line was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLogWarning {
    /// Where the line came from (a path, `pcapng DSB`).
    pub source: String,
    /// 1-based line number within that source.
    pub line: u64,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl fmt::Display for KeyLogWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: key log line skipped: {}",
            self.source, self.line, self.problem
        )
    }
}

/// Counters of a [`KeyLog`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLogStats {
    /// Lines read (all sources).
    pub lines: u64,
    /// Secrets kept (a repeated line counts once).
    pub secrets: u64,
    /// Lines with a known label this analyzer does not use (`EXPORTER_SECRET`, …).
    pub ignored: u64,
    /// Malformed lines (bad label, hex, lengths), skipped.
    pub malformed: u64,
}

/// An error reading a key log file: the path and the OS error.
#[derive(Debug)]
pub struct KeyLogError {
    path: String,
    err: io::Error,
}

impl KeyLogError {
    /// The path that could not be read.
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for KeyLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot read the key log: {}", self.path, self.err)
    }
}

impl core::error::Error for KeyLogError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.err)
    }
}

/// Secrets by client random and label (see the [module docs](self)).
#[derive(Clone, Debug, Default)]
pub struct KeyLog {
    map: HashMap<([u8; 32], Label), Secret>,
    warnings: Vec<KeyLogWarning>,
    stats: KeyLogStats,
}

impl KeyLog {
    /// An empty key log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a key log file and adds its secrets.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or read (the error names the path). Malformed lines are not
    /// errors: see [`KeyLog::warnings`].
    pub fn add_file(&mut self, path: impl AsRef<Path>) -> Result<(), KeyLogError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let wrap = |err| KeyLogError {
            path: name.clone(),
            err,
        };
        let file = File::open(path).map_err(wrap)?;
        self.add_reader(io::BufReader::new(file), &name)
            .map_err(wrap)
    }

    /// Adds the secrets of a key log read from `r`; `source` names it in warnings.
    ///
    /// # Errors
    ///
    /// A read error.
    pub fn add_reader(&mut self, mut r: impl BufRead, source: &str) -> io::Result<()> {
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            // Read at most MAX_LINE + 1 bytes of a line; skip the rest of a longer one.
            let n = r
                .by_ref()
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            number += 1;
            if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
                // Drop the rest of this overlong line.
                let mut rest = Vec::new();
                loop {
                    rest.clear();
                    let m = r.by_ref().take(1 << 16).read_until(b'\n', &mut rest)?;
                    if m == 0 || rest.last() == Some(&b'\n') {
                        break;
                    }
                }
                self.warn(source, number, "line too long");
                self.stats.lines += 1;
                continue;
            }
            self.add_line(&line, source, number);
        }
        Ok(())
    }

    /// Adds the secrets of a key log held in memory (a pcapng Decryption Secrets Block).
    pub fn add_bytes(&mut self, text: &[u8], source: &str) {
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            self.add_line(line, source, i as u64 + 1);
        }
    }

    fn add_line(&mut self, line: &[u8], source: &str, number: u64) {
        self.stats.lines += 1;
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            return;
        }
        match parse_line(line) {
            Ok(Some((random, label, secret))) => {
                if self.map.insert((random, label), secret).is_none() {
                    self.stats.secrets += 1;
                }
            }
            Ok(None) => self.stats.ignored += 1,
            Err(problem) => self.warn(source, number, problem),
        }
    }

    fn warn(&mut self, source: &str, line: u64, problem: &'static str) {
        self.stats.malformed += 1;
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(KeyLogWarning {
                source: source.to_owned(),
                line,
                problem,
            });
        }
    }

    /// The secret for a client random and label.
    pub fn get(&self, client_random: &[u8; 32], label: Label) -> Option<&Secret> {
        self.map.get(&(*client_random, label))
    }

    /// Adds one secret.
    pub fn insert(&mut self, client_random: [u8; 32], label: Label, secret: Secret) {
        if self.map.insert((client_random, label), secret).is_none() {
            self.stats.secrets += 1;
        }
    }

    /// Whether it holds no secret.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The first [`MAX_WARNINGS`] malformed lines.
    pub fn warnings(&self) -> &[KeyLogWarning] {
        &self.warnings
    }

    /// Counters.
    pub const fn stats(&self) -> KeyLogStats {
        self.stats
    }

    /// Adds every secret of `other` (its warnings and counters too).
    pub fn merge(&mut self, other: &Self) {
        for (k, v) in &other.map {
            if self.map.insert(*k, *v).is_none() {
                self.stats.secrets += 1;
            }
        }
        self.stats.lines += other.stats.lines;
        self.stats.ignored += other.stats.ignored;
        self.stats.malformed += other.stats.malformed;
        let room = MAX_WARNINGS.saturating_sub(self.warnings.len());
        self.warnings
            .extend(other.warnings.iter().take(room).cloned());
    }
}

/// One key log entry: client random, label, secret.
type Entry = ([u8; 32], Label, Secret);

/// One non-comment line: `Ok(None)` for a label that is skipped on purpose.
fn parse_line(line: &[u8]) -> Result<Option<Entry>, &'static str> {
    let mut parts = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|p| !p.is_empty());
    let label = parts.next().ok_or("empty line")?;
    let Some(label) = Label::parse(label) else {
        if IGNORED.contains(&label) {
            return Ok(None);
        }
        return Err("unknown label");
    };
    let random = parts.next().ok_or("no client random")?;
    let secret = parts.next().ok_or("no secret")?;
    if parts.next().is_some() {
        return Err("more than three fields");
    }
    let mut r = [0u8; 32];
    if random.len() != 64 || !unhex(random, &mut r) {
        return Err("client random is not 64 hex digits");
    }
    let mut s = [0u8; 48];
    let n = secret.len() / 2;
    if secret.len() % 2 != 0 || n == 0 || n > 48 || !unhex(secret, &mut s[..n]) {
        return Err("secret is not 2 to 96 hex digits");
    }
    if label == Label::ClientRandom && n != 48 {
        return Err("a CLIENT_RANDOM master secret is 48 bytes");
    }
    if label != Label::ClientRandom && n != 32 && n != 48 {
        return Err("a TLS 1.3 traffic secret is 32 or 48 bytes");
    }
    let secret = Secret::new(&s[..n]).ok_or("bad secret length")?;
    Ok(Some((r, label, secret)))
}

fn unhex(hex: &[u8], out: &mut [u8]) -> bool {
    if hex.len() != out.len() * 2 {
        return false;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let (Some(h), Some(l)) = (nib(pair[0]), nib(pair[1])) else {
            return false;
        };
        *o = (h << 4) | l;
    }
    true
}

/// A key log file that another program is still writing (a browser's `SSLKEYLOGFILE`, curl's,
/// Python's): [`KeyLogFollower::poll`] hands out the whole lines appended since the last poll,
/// for [`KeyLog::add_bytes`].
///
/// The file may not exist yet (a browser makes it at its first TLS connection): polls return
/// nothing until it does. A file that gets shorter (truncated, or replaced by a shorter one) is
/// read again from its start. An unfinished last line waits for its end, up to 1 KiB (a longer
/// one is malformed and dropped, so memory stays bounded).
#[derive(Debug)]
pub struct KeyLogFollower {
    path: PathBuf,
    file: Option<File>,
    /// Bytes of the file read so far.
    offset: u64,
    /// The unfinished last line.
    partial: Vec<u8>,
    /// An unfinished line grew past [`MAX_LINE`]: skip up to its end.
    skipping: bool,
}

impl KeyLogFollower {
    /// Follows the key log at `path` (opened at the first poll that finds it).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            file: None,
            offset: 0,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// A second follower of the same file that goes on from where this one is (the lines
    /// this one has handed out are not handed out again); it opens the file for itself.
    #[must_use]
    pub fn fork(&self) -> Self {
        Self {
            path: self.path.clone(),
            file: None,
            offset: self.offset,
            partial: self.partial.clone(),
            skipping: self.skipping,
        }
    }

    /// The path followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file has been found (opened).
    pub const fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// The whole lines appended since the last poll (the whole file at the first poll that
    /// finds it), or `None` when there are none.
    ///
    /// # Errors
    ///
    /// The file exists but cannot be opened or read (the error names the path). A file that
    /// does not exist yet is not an error.
    pub fn poll(&mut self) -> Result<Option<Vec<u8>>, KeyLogError> {
        let name = || self.path.display().to_string();
        let file = match &mut self.file {
            Some(f) => f,
            None => match File::open(&self.path) {
                Ok(f) => self.file.insert(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(err) => return Err(KeyLogError { path: name(), err }),
            },
        };
        let len = file
            .metadata()
            .map_err(|err| KeyLogError { path: name(), err })?
            .len();
        if len < self.offset {
            // Truncated or replaced: start again.
            self.offset = 0;
            self.partial.clear();
            self.skipping = false;
        }
        if len == self.offset {
            return Ok(None);
        }
        let mut new = Vec::new();
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.by_ref().take(len - self.offset).read_to_end(&mut new))
            .map_err(|err| KeyLogError { path: name(), err })?;
        self.offset += new.len() as u64;
        Ok(self.lines(&new))
    }

    /// The whole lines of `new` after the unfinished one kept from before.
    fn lines(&mut self, mut new: &[u8]) -> Option<Vec<u8>> {
        if self.skipping {
            let end = new.iter().position(|&b| b == b'\n')?;
            self.skipping = false;
            new = &new[end + 1..];
        }
        let Some(last) = new.iter().rposition(|&b| b == b'\n') else {
            self.partial.extend_from_slice(new);
            if self.partial.len() > MAX_LINE {
                self.partial.clear();
                self.skipping = true;
            }
            return None;
        };
        let mut out = core::mem::take(&mut self.partial);
        out.extend_from_slice(&new[..=last]);
        self.partial.extend_from_slice(&new[last + 1..]);
        if self.partial.len() > MAX_LINE {
            self.partial.clear();
            self.skipping = true;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "b5a8a3f44f6a8c6f0b7b5d9b0b6b1d12b5a8a3f44f6a8c6f0b7b5d9b0b6b1d12";

    #[test]
    fn parses_labels_and_reports_malformed_lines_with_their_number() {
        let ms = "ab".repeat(48);
        let ts = "cd".repeat(32);
        let text = format!(
            "# comment\n\nCLIENT_RANDOM {R} {ms}\nSERVER_TRAFFIC_SECRET_0 {R} {ts}\n\
             EXPORTER_SECRET {R} {ts}\nCLIENT_RANDOM zz {ms}\nBOGUS {R} {ts}\n\
             CLIENT_TRAFFIC_SECRET_0 {R} {}\r\n",
            "ef".repeat(48)
        );
        let mut k = KeyLog::new();
        k.add_reader(text.as_bytes(), "keys.txt").unwrap();
        let st = k.stats();
        assert_eq!((st.secrets, st.ignored, st.malformed), (3, 1, 2));
        let w: Vec<String> = k.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(
            w,
            [
                "keys.txt:6: key log line skipped: client random is not 64 hex digits",
                "keys.txt:7: key log line skipped: unknown label"
            ]
        );
        let mut r = [0u8; 32];
        assert!(unhex(R.as_bytes(), &mut r));
        assert_eq!(
            k.get(&r, Label::ClientRandom).unwrap().as_bytes(),
            &[0xab; 48]
        );
        assert_eq!(
            k.get(&r, Label::ServerTraffic0).unwrap().as_bytes(),
            &[0xcd; 32]
        );
        assert_eq!(
            k.get(&r, Label::ClientTraffic0).unwrap().as_bytes(),
            &[0xef; 48]
        );
        assert!(k.get(&r, Label::ClientHandshake).is_none());
    }

    #[test]
    fn overlong_and_binary_lines_are_skipped() {
        let mut text = vec![b'A'; 5000];
        text.extend_from_slice(b"\n\xff\xfe\x00\nCLIENT_RANDOM\n");
        let mut k = KeyLog::new();
        k.add_reader(&text[..], "x").unwrap();
        assert_eq!(k.stats().malformed, 3);
        assert_eq!(k.warnings()[0].line, 1);
        assert_eq!(k.warnings()[1].line, 2);
        assert_eq!(k.warnings()[2].problem, "no client random");
    }

    #[test]
    fn hundred_thousand_lines_stay_small() {
        let mut text = String::new();
        for i in 0..100_000u32 {
            let r = format!("{:064x}", u64::from(i) * 7919);
            text.push_str(&format!(
                "CLIENT_TRAFFIC_SECRET_0 {r} {}\n",
                "11".repeat(32)
            ));
        }
        let mut k = KeyLog::new();
        k.add_reader(text.as_bytes(), "big").unwrap();
        assert_eq!(k.stats().secrets, 100_000);
        // About 100 bytes per entry: bounded by the entries, not by the text.
        let per = size_of::<(([u8; 32], Label), Secret)>();
        assert!(per <= 100, "{per}");
        assert!(k.map.capacity() < 2 * 131_072);
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let e = KeyLog::new().add_file("/nonexistent/keys.log").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/keys.log: cannot read the key log"));
    }

    /// A follower hands out each whole line once, as the writer appends it: nothing before the
    /// file exists, an unfinished line when it ends, the file again from its start when it
    /// gets shorter, and an overlong unfinished line dropped up to its end.
    #[test]
    fn a_follower_hands_out_whole_lines_as_they_are_appended() {
        use std::io::Write as _;
        let dir = std::env::temp_dir().join(format!("wscope-keylog-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.log");
        let _ = std::fs::remove_file(&path);
        let mut f = KeyLogFollower::new(&path);
        assert_eq!(f.poll().unwrap(), None);
        assert!(!f.is_open());
        let mut w = File::create(&path).unwrap();
        assert_eq!(f.poll().unwrap(), None);
        assert!(f.is_open());
        let line = |n: u8| format!("CLIENT_RANDOM {R} {}\n", format!("{n:02x}").repeat(48));
        let (a, b, c) = (line(1), line(2), line(3));
        w.write_all(a.as_bytes()).unwrap();
        w.write_all(&b.as_bytes()[..40]).unwrap();
        assert_eq!(f.poll().unwrap().as_deref(), Some(a.as_bytes()));
        assert_eq!(f.poll().unwrap(), None);
        w.write_all(&b.as_bytes()[40..]).unwrap();
        w.write_all(c.as_bytes()).unwrap();
        assert_eq!(f.poll().unwrap(), Some(format!("{b}{c}").into_bytes()));
        // What was handed out makes a key log with all three secrets.
        // Truncated and written again: read from the start.
        drop(w);
        let mut w = File::create(&path).unwrap();
        w.write_all(c.as_bytes()).unwrap();
        assert_eq!(f.poll().unwrap().as_deref(), Some(c.as_bytes()));
        // An unfinished line longer than any key log line is dropped up to its end.
        w.write_all(&[b'x'; MAX_LINE + 10]).unwrap();
        assert_eq!(f.poll().unwrap(), None);
        w.write_all(b"xx\n").unwrap();
        w.write_all(a.as_bytes()).unwrap();
        let got = f.poll().unwrap().unwrap();
        assert_eq!(got, a.as_bytes());
        let mut k = KeyLog::new();
        k.add_bytes(&got, "followed");
        assert_eq!((k.stats().secrets, k.stats().malformed), (1, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
