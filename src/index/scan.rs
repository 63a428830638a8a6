//! Which paths hold results (`Layout`), and the full directory scan.

use std::fs::{self, FileType, Metadata};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use super::map::{Found, Order};
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
    /// Nothing, or nothing that can be a result (the path may have been a file or a directory).
    Gone,
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
    /// The pattern match for a path given relative to `dir` with `/` separators.
    fn found_rel(&self, rel: &str, path: PathBuf, meta: Option<&Metadata>) -> Option<Found> {
        if rel.split('/').any(|part| part.starts_with('.')) {
            return None;
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if is_temp_name(name) {
            return None;
        }
        let text = if self.pattern.spans_dirs() { rel } else { name };
        let m = self.pattern.matches(text)?;
        let order = match (self.pattern.order_by(), m.order_text) {
            (OrderBy::Field(_), Some(t)) => Order::Text(t.into()),
            _ => Order::Mtime(meta.map_or(0, mtime_nanos)),
        };
        Some(Found {
            path,
            key: m.key,
            order,
        })
    }

    fn needs_meta(&self) -> bool {
        self.pattern.order_by() == OrderBy::Mtime
    }

    fn rel<'a>(&self, path: &'a Path) -> Option<&'a str> {
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
        self.found_rel(rel, PathBuf::new(), meta.as_ref())
            .map(|f| f.order)
            .ok_or_else(not_ours)
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
        let plausible = self.found_rel(rel, PathBuf::new(), None).is_some();
        if !plausible && !self.recursive {
            return Probe::Ignored;
        }
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() && self.recursive => Probe::Dir,
            Ok(meta) if meta.is_file() && plausible => {
                match self.found_rel(rel, path.to_path_buf(), Some(&meta)) {
                    Some(found) => Probe::File(found),
                    None => Probe::Ignored,
                }
            }
            Ok(_) if plausible => Probe::Gone,
            Ok(_) => Probe::Ignored,
            Err(_) => Probe::Gone,
        }
    }

    /// Every result under `dir` (subdirectories too when recursive).
    pub fn scan(&self) -> Result<Vec<Found>> {
        let mut out = Vec::new();
        self.scan_into(&self.dir, "", &mut out, true)?;
        Ok(out)
    }

    /// Every result under `sub` (a directory below `dir`), for a directory that appeared.
    pub fn scan_subdir(&self, sub: &Path) -> Result<Vec<Found>> {
        let mut out = Vec::new();
        if let Some(rel) = self.rel(sub) {
            self.scan_into(sub, rel, &mut out, false)?;
        }
        Ok(out)
    }

    fn scan_into(&self, dir: &Path, rel: &str, out: &mut Vec<Found>, top: bool) -> Result<()> {
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
            child_rel.truncate(rel.len());
            if !rel.is_empty() {
                child_rel.push('/');
            }
            child_rel.push_str(name);
            let Ok(ftype) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            let (is_dir, is_file, meta) = self.classify(&path, ftype);
            if is_dir {
                if self.recursive {
                    self.scan_into(&path, &child_rel, out, false)?;
                }
            } else if is_file {
                if let Some(found) = self.found_rel(&child_rel, path, meta.as_ref()) {
                    out.push(found);
                }
            }
        }
        Ok(())
    }

    /// File type from the directory entry (no stat) unless a symlink must be followed or the
    /// order needs the mtime.
    fn classify(&self, path: &Path, ftype: FileType) -> (bool, bool, Option<Metadata>) {
        if ftype.is_symlink() || (self.needs_meta() && ftype.is_file()) {
            match fs::metadata(path) {
                Ok(m) => (m.is_dir(), m.is_file(), Some(m)),
                Err(_) => (false, false, None),
            }
        } else {
            (ftype.is_dir(), ftype.is_file(), None)
        }
    }
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

    fn names(mut found: Vec<Found>, dir: &Path) -> Vec<String> {
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found
            .iter()
            .map(|f| f.path.strip_prefix(dir).unwrap().display().to_string())
            .collect()
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
            names(l.scan().unwrap(), d),
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
            names(by_name.scan().unwrap(), d),
            ["A_1.json", "x/A_2.json", "x/y/B_1.json"]
        );
        let by_path = layout(d, "{group}/{symbol}_{stamp}.json", "stamp", true);
        let found = by_path.scan().unwrap();
        assert_eq!(names(found.clone(), d), ["x/A_2.json"]);
        assert_eq!(found[0].key, "x\u{0}A");
        assert_eq!(
            names(by_name.scan_subdir(&d.join("x")).unwrap(), d),
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
        assert!(matches!(found[0].order, Order::Mtime(t) if t > 0));
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
        assert!(matches!(flat.probe(&d.join("A_1.json")), Probe::File(f) if f.key == "A"));
        assert_eq!(flat.probe(&d.join("A_2.json")), Probe::Gone);
        assert_eq!(flat.probe(&d.join("A_2.json.tmp")), Probe::Ignored);
        assert_eq!(flat.probe(&d.join("sub")), Probe::Ignored);
        assert_eq!(flat.probe(d), Probe::Root);
        assert_eq!(flat.probe(Path::new("/elsewhere/A_1.json")), Probe::Ignored);
        let deep = layout(d, "{symbol}_{stamp}.json", "stamp", true);
        assert_eq!(deep.probe(&d.join("sub")), Probe::Dir);
        assert_eq!(deep.probe(&d.join("gone")), Probe::Gone);
    }
}
