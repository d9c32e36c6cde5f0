//! Opens node libraries: checks the file, loads a private copy, verifies the API version and the
//! ABI layout, and closes the library for real when the node is done with it.
//!
//! The recipe (measured in `plugin-unload-measured.md`): the layout is checked with a private
//! `CheckingGlobals` that is dropped right after the check, so abi_stable's process-wide state
//! never points into a library and closing it is sound. Everything the library made must be
//! dropped before its [`NodeLibrary`] is, and every call into it must run on threads that are
//! joined before then; the node runtime keeps both rules.

pub(crate) mod elf;

pub use elf::ElfError;

use abi_stable::StableAbi;
use abi_stable::abi_stability::abi_checking::{
    AbiInstability, AbiInstabilityErrors, CheckingGlobals, check_layout_compatibility_with_globals,
};
use abi_stable::library::{AbiHeaderRef, LibHeader, ROOT_MODULE_LOADER_NAME_WITH_NUL, RootModule};
use abi_stable::std_types::RResult;
use abi_stable::type_layout::TLFieldOrFunction;
use hivemind::abi::{CallbackError, NodeInit, NodeLib_Ref, NodeParts};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The largest library file the host reads, in bytes. A node library built in debug is tens of
/// MB; a file beyond this is refused before it is read (a link to `/dev/zero` is not read).
pub(crate) const MAX_LIBRARY_BYTES: u64 = 512 << 20;

/// The naming rule for node libraries, kept here alone: the library `bat-signal` (a node's
/// `library` setting, or a node crate's package name) is the file `nodes/libbat_signal.so`,
/// `-` written `_` as cargo writes it.
pub(crate) fn library_file_name(library: &str) -> String {
    format!("lib{}.so", library.replace('-', "_"))
}

/// Whether `file`, a name in `nodes/`, is named like a node library.
pub(crate) fn is_library_file_name(file: &str) -> bool {
    file.len() > "lib.so".len() && file.starts_with("lib") && file.ends_with(".so")
}

/// The file of the library `library` in the hive at `root`.
pub(crate) fn library_path(root: &Path, library: &str) -> PathBuf {
    root.join("nodes").join(library_file_name(library))
}

/// A loaded, checked node library.
pub(crate) struct NodeLibrary {
    module: NodeLib_Ref,
    info: LibraryInfo,
    library: Option<libloading::Library>,
    copy: PathBuf,
}

/// What a library says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LibraryInfo {
    /// The file it was loaded from (not the private copy).
    pub path: PathBuf,
    /// The node crate's package name.
    pub crate_name: String,
    /// The node's Rust type.
    pub type_name: String,
    /// The hivemind API version it was built against.
    pub api_version: String,
    /// A hash of the file's content (xxh3, hex), which tells versions apart.
    pub hash: String,
    /// The file's modification time (RFC 3339), when the file system has one.
    pub modified: Option<String>,
    /// The file's size in bytes.
    pub size: u64,
}

/// Why a library could not be loaded; names the file and says what to do.
#[derive(Debug)]
pub struct LoadError {
    /// The library file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: LoadErrorKind,
}

/// The kinds of [`LoadError`].
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    /// No such file.
    #[error("it does not exist")]
    Missing,
    /// The file exists but cannot be read (permissions, too many open files...): worth a retry.
    #[error("it cannot be read: {0}")]
    Unreadable(String),
    /// Not a regular file: a FIFO, a device, a folder, a dangling or looping link. Never read.
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
    /// Larger than [`MAX_LIBRARY_BYTES`]. Never read.
    #[error("it is {size} bytes, over the {limit}-byte limit for a node library")]
    TooLarge {
        /// The file's size.
        size: u64,
        /// [`MAX_LIBRARY_BYTES`].
        limit: u64,
    },
    /// Not a complete shared library.
    #[error("{0}")]
    NotALibrary(#[from] ElfError),
    /// The dynamic loader refused it.
    #[error("the dynamic loader refused it: {0}")]
    Open(String),
    /// A shared library without a node in it.
    #[error("it is a shared library but not a hivemind node (it exports no node header)")]
    NotANode,
    /// Built with an abi_stable that cannot talk to this host's.
    #[error("its ABI header is not compatible with this hm: {0}")]
    Header(String),
    /// Built against another hivemind API.
    #[error("it was built against hivemind API {library}, but this hm speaks API {host}")]
    ApiVersion {
        /// The library's API version.
        library: String,
        /// This host's API version.
        host: String,
    },
    /// Same version on paper, different types in fact.
    #[error("its ABI does not match this hm's, although both say API {version}: {summary}")]
    Layout {
        /// The shared version.
        version: String,
        /// The last lines of abi_stable's report.
        summary: String,
    },
    /// Its root module failed to initialise.
    #[error("its root module failed to initialise: {0}")]
    Init(String),
    /// The private copy could not be made.
    #[error("it could not be copied for loading: {0}")]
    Copy(String),
}

impl LoadError {
    /// What the user should do about it.
    pub fn help(&self) -> &'static str {
        match self.kind {
            LoadErrorKind::Unreadable(_) => {
                "check the file's permissions and the host's open-file limit; hm tries again with backoff"
            }
            LoadErrorKind::NotAFile(_) | LoadErrorKind::TooLarge { .. } => {
                "only node libraries belong in nodes/: replace it with the regular file cargo built (`hm dev` installs them); the running version stays"
            }
            LoadErrorKind::Missing => {
                "build the node (`hm dev` builds every crate in nodes/) or copy its compiled library there"
            }
            LoadErrorKind::NotALibrary(ElfError::Truncated { .. }) => {
                "wait for the build or copy to finish, or rebuild the node"
            }
            LoadErrorKind::NotALibrary(_) | LoadErrorKind::Open(_) | LoadErrorKind::NotANode => {
                "only node libraries belong in nodes/: build a node crate (`hm create_node NAME`) whose lib.rs ends with `hivemind::export_node!(YourNode);`"
            }
            LoadErrorKind::Header(_)
            | LoadErrorKind::ApiVersion { .. }
            | LoadErrorKind::Layout { .. } => {
                "rebuild the node against the hivemind crate that this hm ships (`hm dev` rebuilds the hive's nodes; a hive made by `hm new` keeps that crate in vendor/hivemind)"
            }
            LoadErrorKind::Init(_) => "see the node's log; fix the node and rebuild it",
            LoadErrorKind::Copy(_) => {
                "check the free space and permissions of the temporary folder"
            }
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot load {}: {}", self.path.display(), self.kind)
    }
}

impl std::error::Error for LoadError {}

impl NodeLibrary {
    /// Loads `path`, already read (by [`read_library`]) into `bytes`, through a private copy in
    /// `scratch`, after checking that it is a complete node library built against this host's API.
    fn open_bytes(path: &Path, file: &LibraryFile, scratch: &Path) -> Result<Self, LoadError> {
        let bytes = &file.bytes[..];
        let fail = |kind: LoadErrorKind| LoadError {
            path: path.to_path_buf(),
            kind,
        };
        elf::check(bytes).map_err(|e| fail(e.into()))?;
        let copy = private_copy(path, bytes, scratch)
            .map_err(|e| fail(LoadErrorKind::Copy(e.to_string())))?;
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| OffsetDateTime::from(t).format(&Rfc3339).ok());
        match open_checked(&copy) {
            Ok((library, module, api_version)) => Ok(Self {
                info: LibraryInfo {
                    path: path.to_path_buf(),
                    crate_name: module.crate_name().as_str().to_owned(),
                    type_name: module.type_name().as_str().to_owned(),
                    api_version,
                    hash: file.hash.clone(),
                    modified,
                    size: bytes.len() as u64,
                },
                module,
                library: Some(library),
                copy,
            }),
            Err(kind) => {
                let _ = std::fs::remove_file(&copy);
                Err(fail(kind))
            }
        }
    }

    /// What the library says about itself.
    pub(crate) fn info(&self) -> &LibraryInfo {
        &self.info
    }

    /// Calls the library's node constructor. Call it on the node's own thread.
    pub(crate) fn new_node(&self, init: NodeInit<'_>) -> RResult<NodeParts, CallbackError> {
        (self.module.new_node())(init)
    }
}

impl Drop for NodeLibrary {
    fn drop(&mut self) {
        if let Some(library) = self.library.take()
            && let Err(error) = library.close()
        {
            tracing::warn!("closing {} failed: {error}", self.copy.display());
        }
        if is_mapped(&self.copy) {
            // glibc defers the unload while a thread-local destructor of the library is pending.
            tracing::warn!(
                "{} stays mapped after unloading (code in it left a thread-local behind); it is released when that thread exits",
                self.info.path.display()
            );
        }
        let _ = std::fs::remove_file(&self.copy);
    }
}

/// Reads a library file without ever blocking or reading without bound: the path must name a
/// regular file (links are followed, but a dangling or looping link, a FIFO, a device or a
/// folder is refused unread) of at most [`MAX_LIBRARY_BYTES`]. The file is opened non-blocking
/// and checked again through the open descriptor, so a file swapped for a FIFO between the two
/// looks cannot hang the reader.
pub(crate) fn read_library(path: &Path) -> Result<Vec<u8>, LoadError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |kind| LoadError {
        path: path.to_path_buf(),
        kind,
    };
    let metadata = std::fs::metadata(path).map_err(|e| fail(classify_error(path, &e)))?;
    check_file_type(&metadata).map_err(fail)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| fail(classify_error(path, &e)))?;
    let metadata = file
        .metadata()
        .map_err(|e| fail(LoadErrorKind::Unreadable(e.to_string())))?;
    check_file_type(&metadata).map_err(fail)?;
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    (&mut file)
        .take(MAX_LIBRARY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(LoadErrorKind::Unreadable(e.to_string())))?;
    if bytes.len() as u64 > MAX_LIBRARY_BYTES {
        return Err(fail(LoadErrorKind::TooLarge {
            size: bytes.len() as u64,
            limit: MAX_LIBRARY_BYTES,
        }));
    }
    Ok(bytes)
}

/// Whether a library path names a file at all, for the watcher: `false` only when neither the
/// path nor a link at it exists (a dangling or looping link is a bad file, not a removal).
pub(crate) fn library_exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn check_file_type(metadata: &std::fs::Metadata) -> Result<(), LoadErrorKind> {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = metadata.file_type();
    let what = if kind.is_file() {
        if metadata.len() > MAX_LIBRARY_BYTES {
            return Err(LoadErrorKind::TooLarge {
                size: metadata.len(),
                limit: MAX_LIBRARY_BYTES,
            });
        }
        return Ok(());
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a folder"
    } else {
        "a special file"
    };
    Err(LoadErrorKind::NotAFile(what))
}

fn classify_error(path: &Path, error: &std::io::Error) -> LoadErrorKind {
    if error.raw_os_error() == Some(libc::ELOOP) {
        return LoadErrorKind::NotAFile("a symbolic link that loops");
    }
    if error.kind() == std::io::ErrorKind::NotFound {
        return if library_exists(path) {
            LoadErrorKind::NotAFile("a symbolic link to nothing")
        } else {
            LoadErrorKind::Missing
        };
    }
    LoadErrorKind::Unreadable(error.to_string())
}

/// The libraries loaded now, so that nodes running the same file with the same content share
/// one loaded copy (a hive of a thousand nodes built from one crate maps it once). A library
/// closes when the last node using it lets go; a new content gets a new copy.
pub(crate) struct Libraries {
    scratch: PathBuf,
    loaded: Mutex<HashMap<(PathBuf, String), Weak<NodeLibrary>>>,
}

impl Libraries {
    /// Loads private copies into `scratch`.
    pub(crate) fn new(scratch: PathBuf) -> Self {
        Self {
            scratch,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The loaded library for `path`'s current content: shared if some node already runs it,
    /// loaded (and checked) otherwise.
    pub(crate) fn open(&self, path: &Path) -> Result<Arc<NodeLibrary>, LoadError> {
        self.open_read(path, &LibraryFile::read(path)?)
    }

    /// Like [`Libraries::open`], for `path`'s content already read (and hashed) into `file`:
    /// that content is what gets loaded, and the file is not read again.
    pub(crate) fn open_read(
        &self,
        path: &Path,
        file: &LibraryFile,
    ) -> Result<Arc<NodeLibrary>, LoadError> {
        let key = (path.to_path_buf(), file.hash.clone());
        let mut loaded = self.loaded.lock();
        if let Some(library) = loaded.get(&key).and_then(Weak::upgrade) {
            return Ok(library);
        }
        let library = Arc::new(NodeLibrary::open_bytes(path, file, &self.scratch)?);
        loaded.retain(|_, library| library.strong_count() > 0);
        loaded.insert(key, Arc::downgrade(&library));
        Ok(library)
    }
}

/// A library file's content, read once by [`read_library`], with its [`content_hash`]: what
/// notices a change reads the file, and the build loads these very bytes (no second read, no
/// second hash, and no chance of loading other bytes than those the change was judged by).
#[derive(Debug)]
pub(crate) struct LibraryFile {
    /// The file's bytes (at most [`MAX_LIBRARY_BYTES`]).
    pub(crate) bytes: Vec<u8>,
    /// Their [`content_hash`].
    pub(crate) hash: String,
}

impl LibraryFile {
    /// Reads `path` as [`read_library`] does and hashes it.
    pub(crate) fn read(path: &Path) -> Result<Self, LoadError> {
        let bytes = read_library(path)?;
        let hash = content_hash(&bytes);
        Ok(Self { bytes, hash })
    }
}

/// The content hash of a library file, as [`LibraryInfo::hash`] gives it.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// Writes `bytes` (read from `path`) to a name of its own in `scratch`, so the watched file is
/// never mapped and every load gets a fresh path (glibc reuses a loaded library when given the
/// same path).
fn private_copy(path: &Path, bytes: &[u8], scratch: &Path) -> std::io::Result<PathBuf> {
    static COPIES: AtomicU64 = AtomicU64::new(0);
    let number = COPIES.fetch_add(1, Ordering::Relaxed);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let copy = scratch.join(format!("{stem}-{number}.so"));
    // Readable by this user only, like the scratch folder (see `isolate::scratch_folder`).
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&copy)?
        .write_all(bytes)?;
    Ok(copy)
}

fn open_checked(copy: &Path) -> Result<(libloading::Library, NodeLib_Ref, String), LoadErrorKind> {
    // SAFETY: loading runs the library's initialisers. The file was checked to be a complete
    // ELF shared object, and node libraries are Rust cdylibs whose only initialisers are std's.
    let library = unsafe { libloading::Library::new(copy) }
        .map_err(|e| LoadErrorKind::Open(e.to_string()))?;
    // SAFETY: abi_stable's root-module header is a static whose address `get` returns as an
    // `AbiHeaderRef` (a pointer-sized reference); its contents are validated by `upgrade`.
    let header: AbiHeaderRef =
        *unsafe { library.get::<AbiHeaderRef>(ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes()) }
            .map_err(|_| LoadErrorKind::NotANode)?;
    let header: &'static LibHeader = header
        .upgrade()
        .map_err(|e| LoadErrorKind::Header(e.to_string()))?;
    let api_version = check_version(header)?;
    check_layout(header, &api_version)?;
    // SAFETY: the layout of `NodeLib_Ref` was checked just above against this library's.
    let module = unsafe { header.init_root_module_with_unchecked_layout::<NodeLib_Ref>() }
        .map_err(|e| LoadErrorKind::Init(e.to_string()))?;
    Ok((library, module, api_version))
}

/// Requires the same major version (and the same minor version before 1.0).
fn check_version(header: &LibHeader) -> Result<String, LoadErrorKind> {
    let library = header.version_strings();
    let host = <NodeLib_Ref as RootModule>::VERSION_STRINGS;
    let mismatch = || LoadErrorKind::ApiVersion {
        library: library.version.to_string(),
        host: host.version.to_string(),
    };
    let (library_number, host_number) = match (library.parsed(), host.parsed()) {
        (Ok(l), Ok(h)) => (l, h),
        _ => return Err(mismatch()),
    };
    let compatible = library_number.major == host_number.major
        && (host_number.major != 0 || library_number.minor == host_number.minor);
    if compatible {
        Ok(library.version.to_string())
    } else {
        Err(mismatch())
    }
}

fn check_layout(header: &LibHeader, version: &str) -> Result<(), LoadErrorKind> {
    let Some(found) = header.layout() else {
        return Err(LoadErrorKind::Header(
            "it carries no layout to check".into(),
        ));
    };
    // A private CheckingGlobals, dropped before this returns: abi_stable's process-wide one
    // would keep pointers into the library and make closing it unsound.
    let globals = CheckingGlobals::new();
    let checked = check_layout_compatibility_with_globals(
        <NodeLib_Ref as StableAbi>::LAYOUT,
        found,
        &globals,
    );
    // The error points into the library: format it now, while the library is mapped.
    checked.map_err(|errors| {
        tracing::debug!("abi_stable's layout report:\n{errors}");
        LoadErrorKind::Layout {
            version: version.to_owned(),
            summary: summarise(&errors),
        }
    })
}

/// Where the layouts differ and how, in a line or two; abi_stable's own report runs to hundreds
/// of lines (it goes to the debug log).
fn summarise(errors: &AbiInstabilityErrors) -> String {
    let places: Vec<String> = errors
        .errors
        .iter()
        .filter(|error| !error.errs.is_empty())
        .take(2)
        .map(|error| {
            let path: Vec<&str> = error
                .stack_trace
                .iter()
                .map(|step| match &step.expected {
                    TLFieldOrFunction::Field(field) => field.name(),
                    TLFieldOrFunction::Function(_) => "fn",
                })
                .collect();
            let type_name = error
                .stack_trace
                .last()
                .and_then(|step| match &step.expected {
                    TLFieldOrFunction::Field(field) => Some(field.layout().name()),
                    TLFieldOrFunction::Function(_) => None,
                });
            let place = match (path.is_empty(), type_name) {
                (true, _) => "the root module".to_owned(),
                (false, Some(name)) => format!("type `{name}` (`{}`)", path.join(".")),
                (false, None) => format!("`{}`", path.join(".")),
            };
            let what: Vec<String> = error.errs.iter().take(3).map(describe).collect();
            format!("at {place}: {}", what.join("; "))
        })
        .collect();
    if places.is_empty() {
        "the layouts differ (run with -v for abi_stable's report in root.log)".to_owned()
    } else {
        places.join("; ")
    }
}

fn describe(difference: &AbiInstability) -> String {
    match difference {
        AbiInstability::Size(d) => format!("size {} bytes expected, {} found", d.expected, d.found),
        AbiInstability::Alignment(d) => {
            format!("alignment {} expected, {} found", d.expected, d.found)
        }
        AbiInstability::FieldCountMismatch(d) => {
            format!("{} fields expected, {} found", d.expected, d.found)
        }
        AbiInstability::UnexpectedField(d) => format!(
            "field `{}` expected, `{}` found",
            d.expected.name(),
            d.found.name()
        ),
        AbiInstability::Name(d) => format!("type `{}` expected, `{}` found", d.expected, d.found),
        AbiInstability::Package(d) => {
            format!("package `{}` expected, `{}` found", d.expected, d.found)
        }
        AbiInstability::PackageVersion(d) => {
            format!("package version {} expected, {} found", d.expected, d.found)
        }
        other => {
            let debug = format!("{other:?}");
            let name = debug
                .split(['(', '{', ' '])
                .next()
                .unwrap_or("a difference");
            format!("{name} differs")
        }
    }
}

/// Whether `path` is still mapped into this process.
pub(crate) fn is_mapped(path: &Path) -> bool {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return false;
    };
    let needle = path.to_string_lossy();
    maps.lines()
        .any(|line| line.ends_with(&*needle) || line.contains(&format!("{needle} ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(path: &Path) -> String {
        match read_library(path) {
            Ok(bytes) => format!("read {} bytes", bytes.len()),
            Err(error) => error.kind.to_string(),
        }
    }

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("libok.so"), b"twelve bytes").unwrap();
        assert_eq!(kind(&at("libok.so")), "read 12 bytes");
        std::os::unix::fs::symlink(at("libok.so"), at("liblink.so")).unwrap();
        assert_eq!(kind(&at("liblink.so")), "read 12 bytes");

        let fifo = at("libfifo.so");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Would block for ever if it were opened for a plain read.
        assert_eq!(kind(&fifo), "it is a FIFO (named pipe), not a regular file");

        std::os::unix::fs::symlink("/dev/zero", at("libzero.so")).unwrap();
        assert_eq!(
            kind(&at("libzero.so")),
            "it is a character device, not a regular file"
        );
        std::os::unix::fs::symlink(at("libloop.so"), at("libloop.so")).unwrap();
        assert_eq!(
            kind(&at("libloop.so")),
            "it is a symbolic link that loops, not a regular file"
        );
        std::os::unix::fs::symlink(at("nothing"), at("libdangling.so")).unwrap();
        assert_eq!(
            kind(&at("libdangling.so")),
            "it is a symbolic link to nothing, not a regular file"
        );
        assert!(library_exists(&at("libdangling.so")) && library_exists(&at("libloop.so")));
        assert!(!library_exists(&at("libgone.so")));
        assert_eq!(kind(&at("libgone.so")), "it does not exist");
        assert_eq!(kind(dir.path()), "it is a folder, not a regular file");

        // A sparse file over the limit is refused from its size alone (nothing is read).
        let big = std::fs::File::create(at("libbig.so")).unwrap();
        big.set_len(MAX_LIBRARY_BYTES + 1).unwrap();
        assert!(
            kind(&at("libbig.so")).contains("over the"),
            "{}",
            kind(&at("libbig.so"))
        );
    }
}
