//! [`Stamp`]: which version of a set of files is on disk, told apart without reading them. The
//! web config's watcher and the key file watcher both compare stamps; one `stat` per file.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The state of some files (`None` for one that could not be read).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stamp(Vec<(PathBuf, Option<FileState>)>);

/// What tells a file's versions apart without reading it: modification time, size, and on Unix
/// the inode, so a file replaced by rename (editors, config management, Kubernetes secret
/// updates) counts as changed even within the file system's timestamp granularity.
type FileState = (SystemTime, u64, u64);

impl Stamp {
    /// The state of `paths` now.
    pub(crate) fn of(paths: &[PathBuf]) -> Self {
        Self(paths.iter().map(|p| (p.clone(), file_state(p))).collect())
    }

    /// Adds `path` as it is now.
    pub(crate) fn add(&mut self, path: &Path) {
        self.0.push((path.to_path_buf(), file_state(path)));
    }

    /// True when every file is as it was.
    pub(crate) fn unchanged(&self) -> bool {
        self.0
            .iter()
            .all(|(path, state)| file_state(path) == *state)
    }
}

fn file_state(path: &Path) -> Option<FileState> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some((m.modified().ok()?, m.len(), inode))
}
