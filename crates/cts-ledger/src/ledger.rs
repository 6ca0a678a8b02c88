//! The ledger: every project's log under `<data_dir>/ledger/`, the signing key and the verifier keys,
//! checkpoints, proofs and tiles. It is the store's [`AppendLog`].
//!
//! ```text
//! <data_dir>/ledger/
//!   key                    the signing key, PRIVATE+KEY+<name>+<id>+<base64> (0600), unless configured
//!   keys                   every verifier key ever used, one per line, the current one last
//!   expired-before         retention: every trace older than this time (UTC ms) may be gone
//!   segment-digests        the SHA-256 of every segment file when it was sealed (frames: hash ‖ file name)
//!   <project_id>/entries   the project's leaves (see `log.rs`)
//!   <project_id>/checkpoints  its signed checkpoints, oldest first
//! ```

use crate::error::LedgerError;
use crate::frame::push_frame;
use crate::log::{LogEntryRecord, NewLeaf, ProjectLog};
use crate::merkle::{self, Hash};
use crate::note::NoteSigner;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cts_model::Trace;
use cts_store::{is_out_of_space, AppendLog, AppendRefusal, LeafHash, LogEntry};
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// The name of the signing key created at first start.
pub const DEFAULT_KEY_NAME: &str = "cts";
/// The default prefix of every project's origin line.
pub const DEFAULT_ORIGIN_PREFIX: &str = "cts/";
/// The longest entry an entry bundle can carry (its length is a big-endian u16).
const MAX_BUNDLE_ENTRY: usize = u16::MAX as usize;

/// How the ledger is set up.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    pub data_dir: PathBuf,
    /// The signing key (`PRIVATE+KEY+...`); `None` uses `<data_dir>/ledger/key`, created at first start.
    pub signing_key: Option<String>,
    /// Each project's origin is this prefix followed by the project id.
    pub origin_prefix: String,
}

impl LedgerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> LedgerConfig {
        LedgerConfig { data_dir: data_dir.into(), signing_key: None, origin_prefix: DEFAULT_ORIGIN_PREFIX.to_owned() }
    }
}

/// The leaf data of a trace: RFC 8785 canonical JSON of the trace as ListTraces returns it.
pub fn trace_leaf_data(trace: &Trace) -> Vec<u8> {
    crate::canonical_trace::canonical_trace_json(trace)
}

/// The RFC 6962 leaf hash of a trace.
pub fn trace_leaf_hash(trace: &Trace) -> Hash {
    merkle::leaf_hash(&trace_leaf_data(trace))
}

/// An inclusion proof as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// `{"leaf_index":i,"tree_size":N,"hashes":[base64...]}`, as the API returns it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "leaf_index": self.leaf_index,
            "tree_size": self.tree_size,
            "hashes": hashes_to_base64(&self.hashes),
        })
    }
}

/// Hashes as base64 strings (proof JSON).
pub fn hashes_to_base64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|hash| BASE64.encode(hash)).collect()
}

/// The verifiable logs of every project.
pub struct Ledger {
    dir: PathBuf,
    signer: NoteSigner,
    /// Every verifier key, one per line, the current one last.
    verifier_keys: Vec<String>,
    origin_prefix: String,
    projects: RwLock<HashMap<String, Arc<ProjectLog>>>,
    /// Serialises the creation of project logs and the expiry file.
    creating: Mutex<()>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("dir", &self.dir).field("signer", &self.signer).finish()
    }
}

/// The ledger directory of a data directory.
pub fn ledger_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger")
}

/// A project id usable as a directory name.
fn check_project_id(project_id: &str) -> Result<(), LedgerError> {
    let valid = !project_id.is_empty()
        && project_id.len() <= 128
        && project_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(LedgerError::invalid("project id", format!("{project_id:?} cannot name a log")))
    }
}

/// Reads the verifier keys file (absent: none).
pub fn read_verifier_keys(dir: &Path) -> Result<Vec<String>, LedgerError> {
    let path = dir.join("keys");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().filter(|line| !line.trim().is_empty()).map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(LedgerError::io(path, e)),
    }
}

/// The retention mark: traces older than this may have been dropped (absent: none were).
pub fn read_expired_before(dir: &Path) -> Result<Option<i64>, LedgerError> {
    let path = dir.join("expired-before");
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| LedgerError::corrupt(path, "not a time")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LedgerError::io(path, e)),
    }
}

const SEGMENT_DIGESTS: &str = "segment-digests";

/// The SHA-256 of a file's contents.
pub(crate) fn file_sha256(path: &Path) -> Result<Hash, LedgerError> {
    let mut file = std::fs::File::open(path).map_err(|e| LedgerError::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| LedgerError::io(path, e))?;
    Ok(hasher.finalize().into())
}

/// The recorded digest of every segment file by file name (the latest record of a name wins).
pub fn read_segment_digests(dir: &Path) -> Result<HashMap<String, Hash>, LedgerError> {
    let path = dir.join(SEGMENT_DIGESTS);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(LedgerError::io(path, e)),
    };
    let mut digests = HashMap::new();
    let mut reader = crate::frame::FrameReader::new(&bytes[..]);
    while let Some(payload) = reader.next_frame().map_err(|e| LedgerError::io(&path, e))? {
        let (digest, name) =
            payload.split_at_checked(32).ok_or_else(|| LedgerError::corrupt(&path, "a short record"))?;
        digests.insert(String::from_utf8_lossy(name).into_owned(), digest.try_into().expect("32 bytes"));
    }
    Ok(digests)
}

/// The project directories of a ledger directory.
pub fn project_ids(dir: &Path) -> Result<Vec<String>, LedgerError> {
    let mut ids = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(LedgerError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| LedgerError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && check_project_id(&name).is_ok() {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}

impl Ledger {
    /// Opens every project's log, loads (or creates) the signing key and lists it among the verifier keys.
    pub fn open(config: LedgerConfig) -> Result<Ledger, LedgerError> {
        let dir = ledger_dir(&config.data_dir);
        std::fs::create_dir_all(&dir).map_err(|e| LedgerError::io(&dir, e))?;
        let signer = match &config.signing_key {
            Some(text) => NoteSigner::parse(text)?,
            None => load_or_create_key(&dir.join("key"))?,
        };
        let mut verifier_keys = read_verifier_keys(&dir)?;
        let current = signer.verifier_key();
        if verifier_keys.last() != Some(&current) {
            verifier_keys.retain(|key| key != &current);
            verifier_keys.push(current);
            let path = dir.join("keys");
            let text: String = verifier_keys.iter().map(|key| format!("{key}\n")).collect();
            cts_durable::write_atomically(&path, text.as_bytes()).map_err(|e| LedgerError::io(path, e))?;
        }
        let mut projects = HashMap::new();
        for project_id in project_ids(&dir)? {
            let log = ProjectLog::open(&dir.join(&project_id))?;
            projects.insert(project_id, Arc::new(log));
        }
        Ok(Ledger {
            dir,
            signer,
            verifier_keys,
            origin_prefix: config.origin_prefix,
            projects: RwLock::new(projects),
            creating: Mutex::new(()),
        })
    }

    /// The origin line of a project's checkpoints.
    pub fn origin(&self, project_id: &str) -> String {
        format!("{}{project_id}", self.origin_prefix)
    }

    /// The signing key, for other signed notes made with the ledger's key (trace file digests).
    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }

    /// The verifier keys, one per line (newline-terminated), the current one last.
    pub fn verifier_keys(&self) -> String {
        self.verifier_keys.iter().map(|key| format!("{key}\n")).collect()
    }

    fn project(&self, project_id: &str) -> Result<Arc<ProjectLog>, LedgerError> {
        self.projects.read().get(project_id).cloned().ok_or_else(|| LedgerError::UnknownProject(project_id.to_owned()))
    }

    fn project_or_create(&self, project_id: &str) -> Result<Arc<ProjectLog>, LedgerError> {
        if let Ok(log) = self.project(project_id) {
            return Ok(log);
        }
        check_project_id(project_id)?;
        let _creating = self.creating.lock();
        if let Ok(log) = self.project(project_id) {
            return Ok(log);
        }
        let log = Arc::new(ProjectLog::open(&self.dir.join(project_id))?);
        let parent = std::fs::File::open(&self.dir).and_then(|dir| dir.sync_all());
        parent.map_err(|e| LedgerError::io(&self.dir, e))?;
        self.projects.write().insert(project_id.to_owned(), log.clone());
        Ok(log)
    }

    /// Appends leaves durably, in order within each project.
    pub fn append_entries(&self, entries: &[LogEntry<'_>]) -> Result<(), LedgerError> {
        let mut by_project: Vec<(&str, Vec<NewLeaf<'_>>)> = Vec::new();
        for entry in entries {
            let leaf = (entry.time, entry.leaf_hash, entry.trace_id);
            match by_project.iter_mut().find(|(project, _)| *project == entry.project_id) {
                Some((_, leaves)) => leaves.push(leaf),
                None => by_project.push((entry.project_id, vec![leaf])),
            }
        }
        // Every project's leaves are on disk before any become visible: should one project's write
        // fail (a full disk, say), the others are withdrawn and the ledger is as it was.
        let mut written = Vec::with_capacity(by_project.len());
        for (project_id, leaves) in &by_project {
            let outcome = self.project_or_create(project_id).and_then(|log| Ok((log.write(leaves)?, log)));
            match outcome {
                Ok((leaves_written, log)) => written.push((log, leaves, leaves_written)),
                Err(error) => {
                    for (log, _, _) in written {
                        log.withdraw()?;
                    }
                    return Err(error);
                }
            }
        }
        for (log, leaves, leaves_written) in written {
            log.publish(leaves, leaves_written);
        }
        Ok(())
    }

    /// The number of leaves of a project's log (0 when it has none).
    pub fn size(&self, project_id: &str) -> u64 {
        self.project(project_id).map_or(0, |log| log.size())
    }

    /// The leaf index of a trace.
    pub fn index_of(&self, project_id: &str, trace_id: &str) -> Result<Option<u64>, LedgerError> {
        match self.project(project_id) {
            Ok(log) => log.index_of(trace_id),
            Err(_) => Ok(None),
        }
    }

    /// Signs a checkpoint for every project whose log grew since its latest one; returns how many.
    pub fn checkpoint_all(&self) -> Result<usize, LedgerError> {
        let logs: Vec<(String, Arc<ProjectLog>)> =
            self.projects.read().iter().map(|(id, log)| (id.clone(), log.clone())).collect();
        let mut signed = 0;
        for (project_id, log) in logs {
            if log.sign_checkpoint(&self.origin(&project_id), &self.signer)?.is_some() {
                signed += 1;
            }
        }
        Ok(signed)
    }

    /// The latest signed checkpoint note of a project.
    pub fn latest_checkpoint(&self, project_id: &str) -> Result<String, LedgerError> {
        let log = self.project(project_id)?;
        log.latest_checkpoint().map(|(_, note)| note).ok_or_else(|| LedgerError::UnknownProject(project_id.to_owned()))
    }

    /// The inclusion proof of a trace in the tree of `tree_size` leaves (default: the latest checkpoint's).
    pub fn inclusion_proof(
        &self,
        project_id: &str,
        trace_id: &str,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, LedgerError> {
        let log = self.project(project_id)?;
        let unknown = || LedgerError::UnknownTrace { project_id: project_id.to_owned(), trace_id: trace_id.to_owned() };
        let leaf_index = log.index_of(trace_id)?.ok_or_else(unknown)?;
        let tree_size = match tree_size {
            Some(size) => size,
            None => log.latest_checkpoint().map_or(0, |(checkpoint, _)| checkpoint.size),
        };
        log.with_view(|view| {
            if tree_size > view.size() {
                return Err(LedgerError::OutOfRange(format!("the log has {} leaves, not {tree_size}", view.size())));
            }
            if leaf_index >= tree_size {
                return Err(LedgerError::OutOfRange(format!(
                    "trace {trace_id} (leaf {leaf_index}) is not in the tree of size {tree_size} yet"
                )));
            }
            let hashes = merkle::inclusion_proof(view, leaf_index, tree_size)?;
            Ok(InclusionProof { leaf_index, tree_size, hashes })
        })
    }

    /// The consistency proof between the trees of `first` and `second` leaves.
    pub fn consistency_proof(&self, project_id: &str, first: u64, second: u64) -> Result<Vec<Hash>, LedgerError> {
        let log = self.project(project_id)?;
        log.with_view(|view| {
            if second > view.size() {
                return Err(LedgerError::OutOfRange(format!("the log has {} leaves, not {second}", view.size())));
            }
            merkle::consistency_proof(view, first, second)
        })
    }

    /// The root of a project's tree of `size` leaves.
    pub fn root(&self, project_id: &str, size: u64) -> Result<Hash, LedgerError> {
        let log = self.project(project_id)?;
        log.with_view(|view| {
            if size > view.size() {
                return Err(LedgerError::OutOfRange(format!("the log has {} leaves, not {size}", view.size())));
            }
            merkle::root(view, size)
        })
    }

    /// A C2SP hash tile: `width` hashes of tile level `level`, tile `index`, concatenated.
    pub fn hash_tile(&self, project_id: &str, level: u32, index: u64, width: u64) -> Result<Vec<u8>, LedgerError> {
        let log = self.project(project_id)?;
        let hashes = log.with_view(|view| view.hash_tile(level, index, width))?;
        Ok(hashes.concat())
    }

    /// A C2SP entry bundle: the leaf data of `width` entries of tile `index`, each prefixed by its
    /// big-endian u16 length. `fetch` returns a stored trace by id; each must still hash to its leaf.
    pub fn entry_bundle(
        &self,
        project_id: &str,
        index: u64,
        width: u64,
        mut fetch: impl FnMut(&str) -> Result<Option<Trace>, LedgerError>,
    ) -> Result<Vec<u8>, LedgerError> {
        let log = self.project(project_id)?;
        let entries: Vec<LogEntryRecord> = log.with_view(|view| {
            view.hash_tile(0, index, width)?;
            Ok(view.tile_entries(index)?.into_iter().take(width as usize).collect())
        })?;
        let mut bundle = Vec::new();
        for entry in entries {
            let unavailable = |why: &str| LedgerError::EntriesUnavailable(format!("trace {}: {why}", entry.trace_id));
            let trace = fetch(&entry.trace_id)?.ok_or_else(|| unavailable("no longer stored"))?;
            let data = trace_leaf_data(&trace);
            if merkle::leaf_hash(&data) != entry.leaf_hash {
                return Err(unavailable("the stored trace does not match its leaf"));
            }
            if data.len() > MAX_BUNDLE_ENTRY {
                return Err(unavailable("longer than an entry bundle entry can be"));
            }
            bundle.extend_from_slice(&(data.len() as u16).to_be_bytes());
            bundle.extend_from_slice(&data);
        }
        Ok(bundle)
    }

    /// Starts the thread that signs checkpoints every `interval` (and once more when stopped).
    pub fn spawn_checkpointer(self: &Arc<Self>, interval: Duration) -> Result<Checkpointer, LedgerError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let ledger = self.clone();
        let thread = std::thread::Builder::new()
            .name("cts-ledger-checkpoints".into())
            .spawn(move || loop {
                let stopping = !matches!(stopped.recv_timeout(interval), Err(mpsc::RecvTimeoutError::Timeout));
                if let Err(error) = ledger.checkpoint_all() {
                    tracing::error!(%error, "signing ledger checkpoints failed");
                }
                if stopping {
                    break;
                }
            })
            .map_err(|e| LedgerError::io("checkpoint thread", e))?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread) })
    }

    /// Appends (fsynced) the SHA-256 of each file to `segment-digests`.
    fn record_segment_digests(&self, paths: &[&Path]) -> Result<(), LedgerError> {
        let mut frames = Vec::new();
        for path in paths {
            let mut payload = file_sha256(path)?.to_vec();
            payload.extend_from_slice(path.file_name().unwrap_or_default().as_encoded_bytes());
            push_frame(&payload, &mut frames);
        }
        let path = self.dir.join(SEGMENT_DIGESTS);
        let _creating = self.creating.lock();
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        let written = file.and_then(|mut file| file.write_all(&frames).and_then(|()| file.sync_data()));
        written.map_err(|e| LedgerError::io(&path, e))?;
        std::fs::File::open(&self.dir).and_then(|dir| dir.sync_all()).map_err(|e| LedgerError::io(&self.dir, e))
    }

    fn record_expiry_mark(&self, cutoff_ms: i64) -> Result<(), LedgerError> {
        let _creating = self.creating.lock();
        if read_expired_before(&self.dir)?.is_some_and(|mark| mark >= cutoff_ms) {
            return Ok(());
        }
        let path = self.dir.join("expired-before");
        cts_durable::write_atomically(&path, format!("{cutoff_ms}\n").as_bytes()).map_err(|e| LedgerError::io(path, e))
    }
}

/// Signs checkpoints in the background; stopping (drop) signs a last one and joins the thread.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the checkpoint thread panicked");
            }
        }
    }
}

fn load_or_create_key(path: &Path) -> Result<NoteSigner, LedgerError> {
    match std::fs::read_to_string(path) {
        Ok(text) => NoteSigner::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = NoteSigner::generate(DEFAULT_KEY_NAME)?;
            let text = format!("{}\n", signer.private_key_text());
            cts_durable::write_atomically(path, text.as_bytes()).map_err(|e| LedgerError::io(path, e))?;
            tracing::info!(key = %signer.verifier_key(), "created the ledger signing key");
            Ok(signer)
        }
        Err(e) => Err(LedgerError::io(path, e)),
    }
}

impl AppendLog for Ledger {
    fn leaf_hash(&self, trace: &Trace) -> LeafHash {
        trace_leaf_hash(trace)
    }

    fn append(&self, entries: &[LogEntry<'_>]) -> Result<(), AppendRefusal> {
        self.append_entries(entries).map_err(|error| match error {
            LedgerError::Io { source, .. } if is_out_of_space(&source) => AppendRefusal::OutOfSpace,
            error => AppendRefusal::Failed(error.to_string()),
        })
    }

    fn contains(&self, project_id: &str, trace_id: &str) -> Result<bool, String> {
        self.index_of(project_id, trace_id).map(|index| index.is_some()).map_err(|e| e.to_string())
    }

    fn record_expiry(&self, cutoff_ms: i64) -> Result<(), String> {
        self.record_expiry_mark(cutoff_ms).map_err(|e| e.to_string())
    }

    fn segment_files_written(&self, paths: &[&Path]) -> Result<(), String> {
        self.record_segment_digests(paths).map_err(|e| e.to_string())
    }
}
