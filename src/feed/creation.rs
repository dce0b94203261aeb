//! Where `FeedIndex::create` builds an index: in a directory of its own beside the target,
//! `.NAME.neardup-create-PID-XXXXXX`, renamed into place once whole, so that a kill leaves
//! either no index or a whole one, never a directory that is neither.

use std::fs;
use std::io;
use std::path::Path;

use super::format;

use crate::outfile::{RANDOM_CHARS, abandoned, pid_and_random};

/// What marks a directory as one `create` builds in.
const MARK: &str = ".neardup-create-";

/// `.NAME.neardup-create-` for a target named NAME (cut as temporary outputs' names are).
fn prefix(target: &Path) -> String {
    crate::outfile::hidden_prefix(target, MARK)
}

/// The pid in a name `prefix` PID `-` six letters or digits; `None` for any other name.
fn pid_in(name: &str, prefix: &str) -> Option<u32> {
    pid_and_random(name.strip_prefix(prefix)?)
}

/// Whether `dir` is named as a directory `create` builds in (of whatever target).
pub(super) fn is_creation_dir(dir: &Path) -> bool {
    let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.match_indices(MARK).any(|(at, _)| {
        name.starts_with('.') && at > 0 && pid_in(name, &name[..at + MARK.len()]).is_some()
    })
}

/// Removes the directories a killed `create` of `target` left beside it: those whose
/// process is gone and whose index lock (taken first thing) is free. Best effort, and
/// anything that may belong to a live process is left.
pub(super) fn remove_stale(target: &Path) {
    let Some(parent) = target.parent() else {
        return;
    };
    let prefix = prefix(target);
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = pid_in(&entry.file_name().to_string_lossy(), &prefix) else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && abandoned(pid, &entry.path().join(format::LOCK_FILE)) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A directory beside `target` to build its index in, removed when dropped unless
/// [`Building::finish`] moved it into place.
pub(super) struct Building {
    dir: tempfile::TempDir,
}

impl Building {
    /// Makes the directory (with the permissions of `target` when it exists, so an empty
    /// directory replaced keeps them).
    pub(super) fn new(target: &Path) -> io::Result<Building> {
        let parent = target.parent().unwrap_or(Path::new("."));
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}{}-", prefix(target), std::process::id()))
            .rand_bytes(RANDOM_CHARS)
            .tempdir_in(parent)?;
        if let Ok(m) = fs::metadata(target) {
            fs::set_permissions(dir.path(), m.permissions())?;
        }
        Ok(Building { dir })
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Renames the directory to `target` (replacing it if it is an empty directory) and
    /// syncs their parent.
    pub(super) fn finish(self, target: &Path) -> io::Result<()> {
        // rename(2) replaces an empty directory at once; elsewhere it must go first.
        #[cfg(not(unix))]
        if target.is_dir() {
            fs::remove_dir(target)?;
        }
        fs::rename(self.dir.path(), target)?;
        // Moved: nothing is left for the temporary directory to remove.
        let _ = self.dir.keep();
        super::log::sync_dir(target.parent().unwrap_or(Path::new(".")))
    }
}

/// Whether `target` must be filled in place: it is a mount point (a rename cannot
/// replace it), or a test asks for it.
pub(super) fn in_place(target: &Path) -> bool {
    #[cfg(test)]
    if FORCE_IN_PLACE.with(std::cell::Cell::get) {
        return true;
    }
    is_mount_point(target)
}

#[cfg(unix)]
fn is_mount_point(target: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = target.parent().unwrap_or(Path::new("."));
    match (fs::metadata(target), fs::metadata(parent)) {
        (Ok(t), Ok(p)) => t.is_dir() && (t.dev() != p.dev() || t.ino() == p.ino()),
        _ => false,
    }
}

#[cfg(not(unix))]
fn is_mount_point(_target: &Path) -> bool {
    false
}

/// Whether making a directory beside the target failed for want of a writable parent.
pub(super) fn parent_refused(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

/// Clears what a create filling `target` in place left when it was killed: its lock (if
/// free), statistics, empty article log and temporary files, in a directory without
/// `index.meta`. Anything else there, or a lock another process holds, leaves the
/// directory as it is, for `create` to refuse.
pub(super) fn clear_interrupted(target: &Path) {
    if target.join(format::META_FILE).exists() {
        return;
    }
    let Ok(entries) = fs::read_dir(target) else {
        return;
    };
    let mut left = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return;
        };
        let ours = match name {
            format::LOCK_FILE => {
                fs::File::open(&path).is_ok_and(|f| matches!(crate::lock::try_lock(&f), Ok(true)))
            }
            format::STATS_FILE => true,
            _ if name == format::log_file_name(0) => {
                fs::metadata(&path).is_ok_and(|m| m.len() == format::LOG_HEADER_BYTES)
            }
            _ => crate::outfile::is_stale_temporary(&path, name),
        };
        if !ours || !entry.file_type().is_ok_and(|t| t.is_file()) {
            return;
        }
        left.push(path);
    }
    for path in left {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
thread_local! {
    /// The step after which `create` fails, in a test.
    static FAIL_AFTER: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
    /// Whether `create` fills its target in place, in a test.
    static FORCE_IN_PLACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A point of `create` where a test may make it fail.
pub(super) fn step(step: &str) -> io::Result<()> {
    #[cfg(test)]
    if FAIL_AFTER.with(|f| f.get() == Some(step)) {
        return Err(io::Error::other(format!("failure injected after {step}")));
    }
    let _ = step;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recognised_exactly() {
        let target = Path::new("/x/news.idx");
        let p = prefix(target);
        assert_eq!(p, ".news.idx.neardup-create-");
        assert_eq!(pid_in(".news.idx.neardup-create-42-aB3xYz", &p), Some(42));
        for other in [
            ".news.idx.neardup-create-42-aB3xY",
            ".news.idx.neardup-create--aB3xYz",
            ".news.idx.neardup-create-4x-aB3xYz",
            ".other.idx.neardup-create-42-aB3xYz",
            "news.idx",
        ] {
            assert_eq!(pid_in(other, &p), None, "{other}");
        }
        assert!(is_creation_dir(Path::new(
            "/x/.news.idx.neardup-create-42-aB3xYz"
        )));
        assert!(is_creation_dir(Path::new(
            ".a.neardup-create-b.neardup-create-7-abcdef"
        )));
        assert!(!is_creation_dir(Path::new("/x/news.idx")));
        assert!(!is_creation_dir(Path::new(
            "/x/.news.idx.neardup-create-42"
        )));
    }

    fn settings() -> crate::feed::IndexSettings {
        let pipeline = crate::PipelineBuilder::new().build().unwrap();
        crate::feed::IndexSettings::new(pipeline.settings(), crate::feed::Level::Story, None)
            .unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A create that fails at any step leaves nothing: no target (or the empty directory
    /// given, as it was) and no directory beside it; the same create then succeeds.
    #[test]
    fn a_create_that_fails_part_way_leaves_nothing() {
        use crate::feed::{Access, FeedIndex};
        let stats = crate::story::StoryStats::default();
        for existing in [false, true] {
            for at in ["directory", "stats", "log", "meta"] {
                let scratch = tempfile::tempdir().unwrap();
                let target = scratch.path().join("news.idx");
                if existing {
                    fs::create_dir(&target).unwrap();
                }
                FAIL_AFTER.with(|f| f.set(Some(at)));
                let e = FeedIndex::create_with_stats(&target, &settings(), Some(&stats));
                FAIL_AFTER.with(|f| f.set(None));
                let e = format!("{:?}", e.unwrap_err());
                assert!(e.contains("failure injected"), "{e}");
                let expected: &[&str] = if existing { &["news.idx"] } else { &[] };
                assert_eq!(names(scratch.path()), expected, "failed after {at}");
                if existing {
                    assert!(names(&target).is_empty());
                }
                let e = FeedIndex::open(&target, Access::Read, &crate::progress::Silent)
                    .unwrap_err()
                    .to_string();
                assert!(e.contains("create one first"), "{e}");
                FeedIndex::create_with_stats(&target, &settings(), Some(&stats)).unwrap();
                assert_eq!(names(scratch.path()), ["news.idx"]);
                assert_eq!(
                    names(&target),
                    ["articles.0.log", "index.meta", "lock", "story.stats"]
                );
                FeedIndex::open(&target, Access::Write, &crate::progress::Silent).unwrap();
            }
        }
    }

    /// A target filled in place (a mount point, or a read-only parent) is left without
    /// `index.meta` by a failure at any step before it (after it, it is whole); the next
    /// create clears what it left and
    /// succeeds, while a directory holding anything else is still refused.
    #[test]
    fn a_create_in_place_that_fails_part_way_is_cleared_by_the_next() {
        use crate::feed::{Access, FeedIndex};
        let stats = crate::story::StoryStats::default();
        FORCE_IN_PLACE.with(|f| f.set(true));
        for at in ["directory", "stats", "log", "meta"] {
            let scratch = tempfile::tempdir().unwrap();
            let target = scratch.path().join("news.idx");
            fs::create_dir(&target).unwrap();
            FAIL_AFTER.with(|f| f.set(Some(at)));
            let e = FeedIndex::create_with_stats(&target, &settings(), Some(&stats));
            FAIL_AFTER.with(|f| f.set(None));
            assert!(format!("{:?}", e.unwrap_err()).contains("failure injected"));
            assert_eq!(names(scratch.path()), ["news.idx"], "nothing beside it");
            if at == "meta" {
                // `index.meta` is written last: the index is whole.
                FeedIndex::open(&target, Access::Write, &crate::progress::Silent).unwrap();
                continue;
            }
            assert!(
                !target.join(format::META_FILE).exists(),
                "failed after {at}"
            );
            FeedIndex::create_with_stats(&target, &settings(), Some(&stats)).unwrap();
            assert_eq!(
                names(&target),
                ["articles.0.log", "index.meta", "lock", "story.stats"]
            );
            FeedIndex::open(&target, Access::Write, &crate::progress::Silent).unwrap();
        }
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("news.idx");
        fs::create_dir(&target).unwrap();
        fs::write(target.join(format::STATS_FILE), "").unwrap();
        fs::write(target.join("notes.txt"), "mine").unwrap();
        let e = FeedIndex::create_with_stats(&target, &settings(), Some(&stats)).unwrap_err();
        FORCE_IN_PLACE.with(|f| f.set(false));
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(names(&target), ["notes.txt", "story.stats"]);
    }
}
