//! Which paths hold results (`Layout`), and the full directory scan.

use rustc_hash::FxHashSet as HashSet;
use std::fs::{self, FileType, Metadata};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::map::{Found, Order, Rank};
use super::pattern::{is_temp_name, OrderBy, Pattern};
use crate::error::{Error, Result};

/// The indexed directory and how names in it are read.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub pattern: Pattern,
    pub recursive: bool,
}

/// What is at a path right now, as far as the index cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// A result file.
    File(Found),
    /// A subdirectory (only reported when recursive).
    Dir,
    /// Nothing, or nothing that can be a result (the path may have been a file or a
    /// directory); carries the name relative to the directory.
    Gone(String),
    /// A path the index never holds (temp or non-matching name, outside the directory).
    Ignored,
    /// The indexed directory itself.
    Root,
}

fn mtime_nanos(meta: &Metadata) -> i128 {
    match meta.modified() {
        Ok(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(before) => -(before.duration().as_nanos() as i128),
        },
        // Filesystems without mtime: everything ties and the path decides.
        Err(_) => 0,
    }
}

impl Layout {
    /// The pattern match for a path given relative to `dir` with `/` separators. `key` is a
    /// scratch buffer; `keys` interns keys so a scan allocates each key once.
    fn found_rel(
        &self,
        rel: &str,
        meta: Option<&Metadata>,
        key: &mut String,
        keys: &mut HashSet<Arc<str>>,
    ) -> Option<Found> {
        self.found_owned(rel, None, meta, key, keys)
    }

    /// `found_rel`, reusing `owned` (equal to `rel`) as the entry's name when given.
    fn found_owned(
        &self,
        rel: &str,
        owned: Option<String>,
        meta: Option<&Metadata>,
        key: &mut String,
        keys: &mut HashSet<Arc<str>>,
    ) -> Option<Found> {
        let (text, offset) = self.match_text(rel)?;
        let span = self.pattern.match_into(text, key)?;
        let rank = match span {
            Some((a, b)) => Rank::Span((a + offset) as u32, (b + offset) as u32),
            None => Rank::Mtime(meta.map_or(0, mtime_nanos)),
        };
        let key = match keys.get(key.as_str()) {
            Some(k) => Arc::clone(k),
            None => {
                let k: Arc<str> = Arc::from(key.as_str());
                keys.insert(Arc::clone(&k));
                k
            }
        };
        Some(Found {
            name: owned.map_or_else(|| rel.into(), String::into_boxed_str),
            key,
            rank,
        })
    }

    /// The text the pattern reads (the relative path, or its last component) and its offset,
    /// or None for hidden and temporary names.
    fn match_text<'a>(&self, rel: &'a str) -> Option<(&'a str, usize)> {
        if rel.split('/').any(|part| part.starts_with('.')) || rel.len() > u32::MAX as usize {
            return None;
        }
        let offset = rel.rfind('/').map_or(0, |i| i + 1);
        if is_temp_name(&rel[offset..]) {
            return None;
        }
        Some(if self.pattern.spans_dirs() {
            (rel, 0)
        } else {
            (&rel[offset..], offset)
        })
    }

    fn plausible(&self, rel: &str) -> bool {
        self.match_text(rel)
            .is_some_and(|(text, _)| self.pattern.match_into(text, &mut String::new()).is_some())
    }

    fn needs_meta(&self) -> bool {
        self.pattern.order_by() == OrderBy::Mtime
    }

    /// A path's name relative to `dir`, `/`-separated (None outside `dir` or not UTF-8).
    pub fn rel<'a>(&self, path: &'a Path) -> Option<&'a str> {
        path.strip_prefix(&self.dir).ok()?.to_str()
    }

    /// The order value a path has or had: from its name when ordering by a field (the file may
    /// be gone), from its metadata when ordering by mtime.
    pub fn order_of(&self, path: &Path) -> Result<Order> {
        let not_ours = || {
            Error::Invalid(format!(
                "{} does not match pattern {:?} in {}",
                path.display(),
                self.pattern.text(),
                self.dir.display()
            ))
        };
        let rel = self.rel(path).ok_or_else(not_ours)?;
        let meta = if self.needs_meta() {
            Some(fs::metadata(path).map_err(|e| Error::io(path, e))?)
        } else {
            None
        };
        let (text, _) = self.match_text(rel).ok_or_else(not_ours)?;
        match self.pattern.match_into(text, &mut String::new()) {
            Some(Some((a, b))) => Ok(Order::Text(text[a..b].into())),
            Some(None) => Ok(Order::Mtime(meta.as_ref().map_or(0, mtime_nanos))),
            None => Err(not_ours()),
        }
    }

    /// Looks at one path (an event's, or one a caller recorded). Stats only plausible names.
    pub fn probe(&self, path: &Path) -> Probe {
        let Some(rel) = self.rel(path) else {
            return Probe::Ignored;
        };
        if rel.is_empty() {
            return Probe::Root;
        }
        if !self.recursive && rel.contains('/') {
            return Probe::Ignored;
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if is_temp_name(name) {
            return Probe::Ignored;
        }
        let plausible = self.plausible(rel);
        if !plausible && !self.recursive {
            return Probe::Ignored;
        }
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() && self.recursive => Probe::Dir,
            Ok(meta) if meta.is_file() && plausible => {
                match self.found_rel(
                    rel,
                    Some(&meta),
                    &mut String::new(),
                    &mut HashSet::default(),
                ) {
                    Some(found) => Probe::File(found),
                    None => Probe::Ignored,
                }
            }
            Ok(_) if plausible => Probe::Gone(rel.to_owned()),
            Ok(_) => Probe::Ignored,
            Err(_) => Probe::Gone(rel.to_owned()),
        }
    }

    /// Every result under `dir` (subdirectories too when recursive).
    pub fn scan(&self) -> Result<Vec<Found>> {
        let mut scan = Scan::default();
        self.scan_into(&self.dir, "", &mut scan, true)?;
        Ok(scan.out)
    }

    /// Every result under `sub` (a directory below `dir`), for a directory that appeared.
    pub fn scan_subdir(&self, sub: &Path) -> Result<Vec<Found>> {
        let mut scan = Scan::default();
        if let Some(rel) = self.rel(sub) {
            self.scan_into(sub, rel, &mut scan, false)?;
        }
        Ok(scan.out)
    }

    fn scan_into(&self, dir: &Path, rel: &str, scan: &mut Scan, top: bool) -> Result<()> {
        // A subdirectory that vanished mid-scan simply has no results.
        let vanished = |e: &std::io::Error| !top && e.kind() == ErrorKind::NotFound;
        let entries = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if vanished(&e) => return Ok(()),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut child_rel = String::from(rel);
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if vanished(&e) => return Ok(()),
                Err(e) => return Err(Error::io(dir, e)),
            };
            let os_name = entry.file_name();
            // Names that are not UTF-8 cannot match a text pattern.
            let Some(name) = os_name.to_str() else {
                continue;
            };
            if is_temp_name(name) {
                continue;
            }
            let Ok(ftype) = entry.file_type() else {
                continue;
            };
            child_rel.truncate(rel.len());
            if !rel.is_empty() {
                child_rel.push('/');
            }
            child_rel.push_str(name);
            let (is_dir, is_file, meta) = self.classify(&entry, ftype);
            if is_dir {
                if self.recursive {
                    self.scan_into(&entry.path(), &child_rel, scan, false)?;
                }
            } else if is_file {
                // At the top level the name is the whole relative path: keep its buffer.
                let owned = if rel.is_empty() {
                    os_name.into_string().ok()
                } else {
                    None
                };
                if let Some(found) = self.found_owned(
                    &child_rel,
                    owned,
                    meta.as_ref(),
                    &mut scan.key,
                    &mut scan.keys,
                ) {
                    scan.out.push(found);
                }
            }
        }
        Ok(())
    }

    /// File type from the directory entry (no stat) unless a symlink must be followed or the
    /// order needs the mtime.
    fn classify(&self, entry: &fs::DirEntry, ftype: FileType) -> (bool, bool, Option<Metadata>) {
        if ftype.is_symlink() || (self.needs_meta() && ftype.is_file()) {
            match fs::metadata(entry.path()) {
                Ok(m) => (m.is_dir(), m.is_file(), Some(m)),
                Err(_) => (false, false, None),
            }
        } else {
            (ftype.is_dir(), ftype.is_file(), None)
        }
    }
}

/// Scratch state of one scan: the output, a key buffer and the keys seen so far.
#[derive(Default)]
struct Scan {
    out: Vec<Found>,
    key: String,
    keys: HashSet<Arc<str>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dir: &Path, pattern: &str, order_by: &str, recursive: bool) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            pattern: Pattern::new(pattern, order_by).unwrap(),
            recursive,
        }
    }

    fn touch(path: &Path) {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, b"{}").unwrap();
    }

    fn names(found: Vec<Found>) -> Vec<String> {
        let mut names: Vec<String> = found.iter().map(|f| f.name.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn scans_matching_names_only() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for n in [
            "A_1h_1.json",
            "A_1h_2.json",
            "B_4h_1.json",
            ".A_1h_3.json",
            "A_1h_4.json.tmp",
            "A_1h_5.json~",
            "notes.txt",
            "sub/A_1h_9.json",
        ] {
            touch(&d.join(n));
        }
        fs::create_dir(d.join("C_1h_1.json")).unwrap();
        let l = layout(d, "{symbol}_{timeframe}_{stamp}.json", "stamp", false);
        assert_eq!(
            names(l.scan().unwrap()),
            ["A_1h_1.json", "A_1h_2.json", "B_4h_1.json"]
        );
    }

    #[test]
    fn recursive_scans_match_names_or_relative_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for n in ["A_1.json", "x/A_2.json", "x/y/B_1.json", ".hidden/A_3.json"] {
            touch(&d.join(n));
        }
        let by_name = layout(d, "{symbol}_{stamp}.json", "stamp", true);
        assert_eq!(
            names(by_name.scan().unwrap()),
            ["A_1.json", "x/A_2.json", "x/y/B_1.json"]
        );
        let by_path = layout(d, "{group}/{symbol}_{stamp}.json", "stamp", true);
        let found = by_path.scan().unwrap();
        assert_eq!(names(found.clone()), ["x/A_2.json"]);
        assert_eq!(&*found[0].key, "x\u{0}A");
        assert_eq!(
            names(by_name.scan_subdir(&d.join("x")).unwrap()),
            ["x/A_2.json", "x/y/B_1.json"]
        );
    }

    #[test]
    fn mtime_order_reads_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        touch(&d.join("A.json"));
        let l = layout(d, "{symbol}.json", "mtime", false);
        let found = l.scan().unwrap();
        assert!(matches!(found[0].rank, Rank::Mtime(t) if t > 0));
    }

    #[test]
    fn missing_and_non_directories_are_io_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = layout(&tmp.path().join("nope"), "{a}.json", "a", false);
        let err = missing.scan().unwrap_err();
        assert!(matches!(&err, Error::Io { source, .. } if source.kind() == ErrorKind::NotFound));
        assert!(err.to_string().contains("nope"));
        touch(&tmp.path().join("file"));
        let file = layout(&tmp.path().join("file"), "{a}.json", "a", false);
        assert!(matches!(file.scan(), Err(Error::Io { .. })));
    }

    #[test]
    fn probe_classifies_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        touch(&d.join("A_1.json"));
        fs::create_dir(d.join("sub")).unwrap();
        let flat = layout(d, "{symbol}_{stamp}.json", "stamp", false);
        assert!(
            matches!(flat.probe(&d.join("A_1.json")), Probe::File(f) if &*f.key == "A" && f.rank == Rank::Span(2, 3))
        );
        assert_eq!(
            flat.probe(&d.join("A_2.json")),
            Probe::Gone("A_2.json".into())
        );
        assert_eq!(flat.probe(&d.join("A_2.json.tmp")), Probe::Ignored);
        assert_eq!(flat.probe(&d.join("sub")), Probe::Ignored);
        assert_eq!(flat.probe(d), Probe::Root);
        assert_eq!(flat.probe(Path::new("/elsewhere/A_1.json")), Probe::Ignored);
        let deep = layout(d, "{symbol}_{stamp}.json", "stamp", true);
        assert_eq!(deep.probe(&d.join("sub")), Probe::Dir);
        assert_eq!(deep.probe(&d.join("gone")), Probe::Gone("gone".into()));
        assert_eq!(
            deep.order_of(&d.join("x/B_7.json")).unwrap(),
            Order::Text("7".into())
        );
    }
}
