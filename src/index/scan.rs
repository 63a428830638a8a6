//! Which paths hold results (`Layout`), and the full directory scan.

use rustc_hash::FxHashSet as HashSet;
use std::fs::{self, FileType, Metadata};
use std::io::ErrorKind;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::map::{Found, Order, Rank};
use super::pattern::{is_temp_name, OrderBy, Pattern};
use crate::error::{Check, Error, Result};

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
    /// A subdirectory (only reported when recursive); carries its name relative to the
    /// directory (a file of that name, if indexed, is gone).
    Dir(String),
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
        // A hidden component anywhere: `rel` starts with '.' or has "/." (one memchr-based
        // search instead of splitting every path).
        if rel.starts_with('.') || rel.contains("/.") || rel.len() > u32::MAX as usize {
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
            Ok(meta) if meta.is_dir() && self.recursive => Probe::Dir(rel.to_owned()),
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

    /// Every result under `dir` (subdirectories too when recursive). `check` is called every
    /// few thousand entries; its error ends the scan. Only `dir` itself must be readable: a
    /// subdirectory that cannot be read is skipped and named in `Scanned::skipped`.
    pub fn scan(&self, check: Check) -> Result<Scanned> {
        let mut walk = Walk::new(check);
        let meta = fs::metadata(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let id = dir_id(&self.dir, &meta);
        walk.push(self.dir.clone(), String::new(), id, None);
        self.walk(&mut walk, true)?;
        Ok(walk.done)
    }

    /// Every result under `sub` (a directory below `dir`), for a directory that appeared.
    pub fn scan_subdir(&self, sub: &Path, check: Check) -> Result<Scanned> {
        let mut walk = Walk::new(check);
        let Some(rel) = self.rel(sub) else {
            return Ok(walk.done);
        };
        // Its ancestors from `dir` down, so a new link back into one of them is seen as the loop
        // it is (and a directory gone meanwhile simply has no results).
        let mut at = self.dir.clone();
        let mut parent = None;
        for part in std::iter::once(None).chain(rel.split('/').map(Some)) {
            if let Some(part) = part {
                at.push(part);
            }
            let Ok(meta) = fs::metadata(&at) else {
                return Ok(walk.done);
            };
            let id = dir_id(&at, &meta);
            if walk.is_ancestor(parent, &id) {
                return Ok(walk.done);
            }
            walk.nodes.push((id, parent));
            parent = Some(walk.nodes.len() - 1);
        }
        let node = walk.nodes.len() - 1;
        walk.stack.push((sub.to_path_buf(), rel.to_owned(), node));
        self.walk(&mut walk, false)?;
        Ok(walk.done)
    }

    /// Reads the directories on `walk.stack` until none is left (one open directory at a time, so
    /// depth costs neither stack frames nor file descriptors). `root`: the first directory must
    /// be readable (it is the indexed one); any later one that is not is skipped.
    fn walk(&self, walk: &mut Walk<'_>, root: bool) -> Result<()> {
        let mut first = root;
        let mut child_rel = String::new();
        while let Some((dir, rel, node)) = walk.stack.pop() {
            let must = mem::take(&mut first);
            walk.tick()?;
            let entries = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if must => return Err(Error::io(&dir, e)),
                Err(e) => {
                    walk.done.skip(dir, e);
                    continue;
                }
            };
            for entry in entries {
                walk.tick()?;
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(e) if must => return Err(Error::io(&dir, e)),
                    Err(e) => {
                        walk.done.skip(dir.clone(), e);
                        break;
                    }
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
                child_rel.clear();
                child_rel.push_str(&rel);
                if !rel.is_empty() {
                    child_rel.push('/');
                }
                child_rel.push_str(name);
                let (is_dir, is_file, meta) = self.classify(&entry, ftype);
                if is_dir {
                    if !self.recursive {
                        continue;
                    }
                    let path = entry.path();
                    let meta = match meta {
                        Some(meta) => meta,
                        None => match fs::metadata(&path) {
                            Ok(meta) => meta,
                            // Gone since it was listed: nothing to index in it.
                            Err(_) => continue,
                        },
                    };
                    // A link to one of its own ancestors (`ln -s . again`) would be followed
                    // forever: skip it, as `find -L` and notify's own walk (walkdir) do.
                    let id = dir_id(&path, &meta);
                    if !walk.is_ancestor(Some(node), &id) {
                        walk.push(path, child_rel.clone(), id, Some(node));
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
                        &mut walk.key,
                        &mut walk.keys,
                    ) {
                        walk.done.found.push(found);
                    }
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

/// What a scan found, and the subdirectories it could not read.
#[derive(Debug, Default)]
pub struct Scanned {
    pub found: Vec<Found>,
    /// Unreadable subdirectories (the first few, with the OS's reason) and how many there were.
    pub skipped: Vec<(PathBuf, std::io::Error)>,
    pub skipped_count: usize,
}

/// How many unreadable subdirectories a scan names; the rest are only counted.
const SKIPPED_NAMED: usize = 3;

impl Scanned {
    fn skip(&mut self, dir: PathBuf, e: std::io::Error) {
        // A directory deleted between listing and reading simply has no results.
        if e.kind() == ErrorKind::NotFound {
            return;
        }
        self.skipped_count += 1;
        if self.skipped.len() < SKIPPED_NAMED {
            self.skipped.push((dir, e));
        }
    }

    /// One line naming the subdirectories that were skipped, if any.
    pub fn problem(&self) -> Option<String> {
        if self.skipped_count == 0 {
            return None;
        }
        let named: Vec<String> = self
            .skipped
            .iter()
            .map(|(dir, e)| format!("{}: {e}", dir.display()))
            .collect();
        let more = self.skipped_count - self.skipped.len();
        Some(format!(
            "skipped {} unreadable subdirector{} ({}{})",
            self.skipped_count,
            if self.skipped_count == 1 { "y" } else { "ies" },
            named.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        ))
    }
}

/// A directory's identity: a link that leads back to an ancestor is a loop, and a results
/// directory whose identity changed was replaced.
#[cfg(unix)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirId(u64, u64);

#[cfg(unix)]
pub fn dir_id(_path: &Path, meta: &Metadata) -> DirId {
    use std::os::unix::fs::MetadataExt;
    DirId(meta.dev(), meta.ino())
}

/// Without (device, inode) numbers, the resolved path stands for the directory.
#[cfg(not(unix))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirId(PathBuf);

#[cfg(not(unix))]
pub fn dir_id(path: &Path, _meta: &Metadata) -> DirId {
    DirId(fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Entries between two calls of the scan's `check`.
const CHECK_EVERY: u32 = 4096;

/// State of one scan: the directories left to read, every directory entered (identity and
/// parent, to recognize loops), the output and scratch buffers.
struct Walk<'a> {
    check: Check<'a>,
    ticks: u32,
    stack: Vec<(PathBuf, String, usize)>,
    nodes: Vec<(DirId, Option<usize>)>,
    done: Scanned,
    key: String,
    keys: HashSet<Arc<str>>,
}

impl<'a> Walk<'a> {
    fn new(check: Check<'a>) -> Self {
        Walk {
            check,
            ticks: 0,
            stack: Vec::new(),
            nodes: Vec::new(),
            done: Scanned::default(),
            key: String::new(),
            keys: HashSet::default(),
        }
    }

    #[inline]
    fn tick(&mut self) -> Result<()> {
        self.ticks += 1;
        if self.ticks >= CHECK_EVERY {
            self.ticks = 0;
            (self.check)()?;
        }
        Ok(())
    }

    fn push(&mut self, path: PathBuf, rel: String, id: DirId, parent: Option<usize>) {
        self.nodes.push((id, parent));
        self.stack.push((path, rel, self.nodes.len() - 1));
    }

    /// Whether `id` is the directory `node` or one of its ancestors.
    fn is_ancestor(&self, mut node: Option<usize>, id: &DirId) -> bool {
        while let Some(n) = node {
            let (ancestor, parent) = &self.nodes[n];
            if ancestor == id {
                return true;
            }
            node = *parent;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::never;

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
            names(l.scan(&never).unwrap().found),
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
            names(by_name.scan(&never).unwrap().found),
            ["A_1.json", "x/A_2.json", "x/y/B_1.json"]
        );
        let by_path = layout(d, "{group}/{symbol}_{stamp}.json", "stamp", true);
        let found = by_path.scan(&never).unwrap().found;
        assert_eq!(names(found.clone()), ["x/A_2.json"]);
        assert_eq!(&*found[0].key, "x\u{0}A");
        assert_eq!(
            names(by_name.scan_subdir(&d.join("x"), &never).unwrap().found),
            ["x/A_2.json", "x/y/B_1.json"]
        );
    }

    #[test]
    fn mtime_order_reads_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        touch(&d.join("A.json"));
        let l = layout(d, "{symbol}.json", "mtime", false);
        let found = l.scan(&never).unwrap().found;
        assert!(matches!(found[0].rank, Rank::Mtime(t) if t > 0));
    }

    #[test]
    fn missing_and_non_directories_are_io_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = layout(&tmp.path().join("nope"), "{a}.json", "a", false);
        let err = missing.scan(&never).unwrap_err();
        assert!(matches!(&err, Error::Io { source, .. } if source.kind() == ErrorKind::NotFound));
        assert!(err.to_string().contains("nope"));
        touch(&tmp.path().join("file"));
        let file = layout(&tmp.path().join("file"), "{a}.json", "a", false);
        assert!(matches!(file.scan(&never), Err(Error::Io { .. })));
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
        assert_eq!(deep.probe(&d.join("sub")), Probe::Dir("sub".into()));
        assert_eq!(deep.probe(&d.join("gone")), Probe::Gone("gone".into()));
        assert_eq!(
            deep.order_of(&d.join("x/B_7.json")).unwrap(),
            Order::Text("7".into())
        );
    }
}
