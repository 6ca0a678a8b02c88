//! Verification: a whole data directory (every stored trace against its project's log, every
//! signed checkpoint against the leaves), and one trace offline against a proof and a checkpoint.

use crate::error::LedgerError;
use crate::jcs::canonical_json;
use crate::ledger::{
    file_sha256, ledger_dir, project_ids, read_expired_before, read_segment_digests, read_verifier_keys,
    trace_leaf_hash,
};
use crate::log::{read_checkpoints_file, read_entries_file, LogEntryRecord};
use crate::merkle::{self, Hash};
use crate::note::{Checkpoint, NoteVerifier};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cts_store::StoredFileKind;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One thing that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A stored trace whose content differs from the leaf the log holds for it.
    Altered { project_id: String, trace_id: String, leaf_index: u64, file: PathBuf },
    /// A leaf whose trace is in no store file (and is not older than the retention mark).
    Removed { project_id: String, trace_id: String, leaf_index: u64 },
    /// A stored trace the log has no leaf for.
    Inserted { project_id: String, trace_id: String, file: PathBuf },
    /// A segment file whose bytes differ from what was sealed.
    ModifiedFile { path: PathBuf },
    /// A store file that cannot be read.
    UnreadableFile { path: PathBuf, reason: String },
    /// A signed checkpoint that does not verify (signature, origin, size or root).
    BadCheckpoint { project_id: String, number: usize, reason: String },
    /// A project's log files cannot be read.
    DamagedLog { project_id: String, reason: String },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Altered { project_id, trace_id, leaf_index, file } => write!(
                f,
                "altered: trace {trace_id} of project {project_id} (leaf {leaf_index}) differs in {}",
                file.display()
            ),
            Finding::Removed { project_id, trace_id, leaf_index } => {
                write!(f, "removed: trace {trace_id} of project {project_id} (leaf {leaf_index}) is in no store file")
            }
            Finding::Inserted { project_id, trace_id, file } => {
                write!(f, "inserted: trace {trace_id} of project {project_id} in {} is not in the log", file.display())
            }
            Finding::ModifiedFile { path } => {
                write!(f, "modified: {} differs from the segment file that was sealed", path.display())
            }
            Finding::UnreadableFile { path, reason } => write!(f, "unreadable: {}: {reason}", path.display()),
            Finding::BadCheckpoint { project_id, number, reason } => {
                write!(f, "checkpoint {number} of project {project_id}: {reason}")
            }
            Finding::DamagedLog { project_id, reason } => write!(f, "log of project {project_id}: {reason}"),
        }
    }
}

/// What [`verify_data_dir`] found.
#[derive(Debug, Default)]
pub struct DataDirReport {
    /// Leaves whose stored trace was found and matches.
    pub traces: u64,
    /// Leaves whose traces were dropped by retention.
    pub expired: u64,
    pub checkpoints: u64,
    pub findings: Vec<Finding>,
}

impl DataDirReport {
    pub fn is_valid(&self) -> bool {
        self.findings.is_empty()
    }

    /// `1,234,567 traces, 3 checkpoints: all valid` (or the number of problems).
    pub fn summary(&self) -> String {
        let expired = if self.expired > 0 {
            format!(", {} expired by retention", thousands(self.expired))
        } else {
            String::new()
        };
        let verdict = match self.findings.len() {
            0 => "all valid".to_owned(),
            1 => "1 problem".to_owned(),
            n => format!("{} problems", thousands(n as u64)),
        };
        format!("{} traces, {} checkpoints{expired}: {verdict}", thousands(self.traces), thousands(self.checkpoints))
    }
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A project's log as verification reads it.
struct ProjectCheck {
    entries: Vec<LogEntryRecord>,
    ids: HashMap<String, Vec<u64>>,
    /// Whether a store file holds the leaf's trace unchanged.
    found: Vec<bool>,
    /// The hash of an altered copy, which the tree is recomputed with.
    altered: Vec<Option<Hash>>,
}

/// Verifies a data directory no process has open: every trace of every store file against its
/// project's log, every leaf against the store, every signed checkpoint against `trusted_keys` (or,
/// when `None`, the keys listed in the ledger directory) and the leaves recomputed from the stored traces.
pub fn verify_data_dir(data_dir: &Path, trusted_keys: Option<&[NoteVerifier]>) -> Result<DataDirReport, LedgerError> {
    let dir = ledger_dir(data_dir);
    let verifiers = match trusted_keys {
        Some(keys) => keys.to_vec(),
        None => read_verifier_keys(&dir)?.iter().map(|key| NoteVerifier::parse(key)).collect::<Result<_, _>>()?,
    };
    let mut report = DataDirReport::default();
    let mut projects: HashMap<String, ProjectCheck> = HashMap::new();
    for project_id in project_ids(&dir)? {
        match read_entries_file(&dir.join(&project_id).join("entries")) {
            Ok((entries, torn)) => {
                if torn {
                    let reason = "the entries file has an unreadable tail".to_owned();
                    report.findings.push(Finding::DamagedLog { project_id: project_id.clone(), reason });
                }
                let mut ids: HashMap<String, Vec<u64>> = HashMap::with_capacity(entries.len());
                for (index, entry) in entries.iter().enumerate() {
                    ids.entry(entry.trace_id.clone()).or_default().push(index as u64);
                }
                let (found, altered) = (vec![false; entries.len()], vec![None; entries.len()]);
                projects.insert(project_id, ProjectCheck { entries, ids, found, altered });
            }
            Err(error) => report.findings.push(Finding::DamagedLog { project_id, reason: error.to_string() }),
        }
    }
    let digests = read_segment_digests(&dir)?;
    cts_store::scan_stored_files(data_dir, |file| {
        let name = file.path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(recorded) = digests.get(name.as_ref()).filter(|_| file.kind != StoredFileKind::Wal) {
            if file_sha256(&file.path).ok().as_ref() != Some(recorded) {
                report.findings.push(Finding::ModifiedFile { path: file.path.clone() });
            }
        }
        let traces = match file.traces {
            Ok(traces) => traces,
            Err(error) => {
                report.findings.push(Finding::UnreadableFile { path: file.path, reason: error.to_string() });
                return;
            }
        };
        for trace in traces {
            let inserted = || Finding::Inserted {
                project_id: trace.project_id.clone(),
                trace_id: trace.trace_id.clone(),
                file: file.path.clone(),
            };
            let Some(project) = projects.get_mut(&trace.project_id) else {
                report.findings.push(inserted());
                continue;
            };
            let Some(indexes) = project.ids.get(&trace.trace_id) else {
                report.findings.push(inserted());
                continue;
            };
            let hash = trace_leaf_hash(&trace);
            match indexes.iter().find(|&&index| project.entries[index as usize].leaf_hash == hash) {
                Some(&index) => project.found[index as usize] = true,
                None => {
                    let leaf_index = *indexes.last().expect("ids map to at least one leaf");
                    project.altered[leaf_index as usize] = Some(hash);
                    report.findings.push(Finding::Altered {
                        project_id: trace.project_id.clone(),
                        trace_id: trace.trace_id.clone(),
                        leaf_index,
                        file: file.path.clone(),
                    });
                }
            }
        }
    })
    .map_err(|e| LedgerError::Io { path: data_dir.to_owned(), source: std::io::Error::other(e.to_string()) })?;
    let expired_before = read_expired_before(&dir)?;
    let mut project_list: Vec<(String, ProjectCheck)> = projects.into_iter().collect();
    project_list.sort_by(|a, b| a.0.cmp(&b.0));
    for (project_id, project) in project_list {
        for (index, entry) in project.entries.iter().enumerate() {
            if project.found[index] {
                report.traces += 1;
            } else if project.altered[index].is_some() {
                continue;
            } else if expired_before.is_some_and(|mark| entry.time < mark) {
                report.expired += 1;
            } else {
                report.findings.push(Finding::Removed {
                    project_id: project_id.clone(),
                    trace_id: entry.trace_id.clone(),
                    leaf_index: index as u64,
                });
            }
        }
        check_checkpoints(&dir, &project_id, &project, &verifiers, &mut report)?;
    }
    Ok(report)
}

/// Checks every signed checkpoint of a project: signature, origin, sizes growing, and the root of
/// the leaves as the store holds them (an altered trace counts with its altered hash).
fn check_checkpoints(
    dir: &Path,
    project_id: &str,
    project: &ProjectCheck,
    verifiers: &[NoteVerifier],
    report: &mut DataDirReport,
) -> Result<(), LedgerError> {
    let (notes, _) = read_checkpoints_file(&dir.join(project_id).join("checkpoints"))?;
    let mut checkpoints = Vec::new();
    for (number, note) in notes.iter().enumerate().map(|(i, note)| (i + 1, note)) {
        report.checkpoints += 1;
        let mut bad = |reason: String| {
            report.findings.push(Finding::BadCheckpoint { project_id: project_id.to_owned(), number, reason })
        };
        match Checkpoint::open(note, verifiers) {
            Ok(checkpoint) if !checkpoint.origin.ends_with(&format!("/{project_id}")) => {
                bad(format!("origin {:?} is not this project's", checkpoint.origin))
            }
            Ok(checkpoint) if checkpoint.size > project.entries.len() as u64 => {
                bad(format!("size {} is beyond the log's {} leaves", checkpoint.size, project.entries.len()))
            }
            Ok(checkpoint) => checkpoints.push((number, checkpoint)),
            Err(error) => bad(error.to_string()),
        }
    }
    // One pass over the leaves, keeping the perfect subtrees of the prefix (O(log n) memory).
    checkpoints.sort_by_key(|(_, checkpoint)| checkpoint.size);
    let mut frontier: Vec<(u32, Hash)> = Vec::new();
    let mut next = checkpoints.iter().peekable();
    for size in 0..=project.entries.len() {
        while let Some((number, checkpoint)) = next.next_if(|(_, c)| c.size == size as u64) {
            let root = frontier.iter().rev().fold(None, |acc: Option<Hash>, (_, hash)| {
                Some(acc.map_or(*hash, |right| merkle::node_hash(hash, &right)))
            });
            if root.unwrap_or_else(merkle::empty_root) != checkpoint.root {
                report.findings.push(Finding::BadCheckpoint {
                    project_id: project_id.to_owned(),
                    number: *number,
                    reason: format!("the root of the first {size} stored traces differs from the signed root"),
                });
            }
        }
        let Some(entry) = project.entries.get(size) else { break };
        let mut carry = (0, project.altered[size].unwrap_or(entry.leaf_hash));
        while let Some(&(height, left)) = frontier.last().filter(|(height, _)| *height == carry.0) {
            frontier.pop();
            carry = (height + 1, merkle::node_hash(&left, &carry.1));
        }
        frontier.push(carry);
    }
    Ok(())
}

/// An inclusion proof file: the JSON the proof API returns.
#[derive(Debug, serde::Deserialize)]
struct ProofFile {
    leaf_index: u64,
    tree_size: u64,
    hashes: Vec<String>,
}

/// Verifies one trace offline: `trace_json` (the trace exactly as ListTraces returns it) is leaf
/// `proof.leaf_index` of the tree the checkpoint (signed by `verifier_key`) commits to.
pub fn verify_trace(
    trace_json: &str,
    proof_json: &str,
    checkpoint_note: &str,
    verifier_key: &str,
) -> Result<Checkpoint, LedgerError> {
    let trace: serde_json::Value =
        serde_json::from_str(trace_json).map_err(|e| LedgerError::invalid("trace", e.to_string()))?;
    let proof: ProofFile =
        serde_json::from_str(proof_json).map_err(|e| LedgerError::invalid("proof", e.to_string()))?;
    let hashes = proof
        .hashes
        .iter()
        .map(|hash| BASE64.decode(hash).ok().and_then(|bytes| Hash::try_from(bytes).ok()))
        .collect::<Option<Vec<Hash>>>()
        .ok_or_else(|| LedgerError::invalid("proof", "a hash is not 32 bytes of base64"))?;
    let verifier = NoteVerifier::parse(verifier_key)?;
    let checkpoint = Checkpoint::open(checkpoint_note, &[verifier])?;
    if proof.tree_size != checkpoint.size {
        return Err(LedgerError::invalid(
            "proof",
            format!("it is for a tree of {} leaves, the checkpoint has {}", proof.tree_size, checkpoint.size),
        ));
    }
    let leaf = merkle::leaf_hash(&canonical_json(&trace));
    if !merkle::verify_inclusion(&leaf, proof.leaf_index, proof.tree_size, &hashes, &checkpoint.root) {
        return Err(LedgerError::invalid("proof", "the trace is not included in the checkpoint's tree"));
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn counts_are_grouped_by_thousands() {
        for (n, text) in [(0, "0"), (999, "999"), (1000, "1,000"), (1_234_567, "1,234,567")] {
            assert_eq!(thousands(n), text);
        }
    }
}
