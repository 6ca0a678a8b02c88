//! RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification.
//!
//! Proof generation reads subtree hashes through [`HashSource`] (the log answers from memory for
//! subtrees of 256 leaves and more, from its entries file below that); the verifiers are the
//! RFC 9162 algorithms (sections 2.1.3.2 and 2.1.4.2), written independently of the generators.

use crate::error::LedgerError;
use sha2::{Digest, Sha256};

/// A SHA-256 hash of a leaf or an interior node.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The hashes of complete, aligned subtrees of a tree.
pub trait HashSource {
    /// The hash of the subtree of height `level` (2^level leaves) starting at leaf `index << level`.
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, LedgerError>;
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` where `start` is aligned to the largest power of two not above `end - start`
/// (true of every range the RFC 9162 recursions visit).
fn range_hash(source: &impl HashSource, start: u64, end: u64) -> Result<Hash, LedgerError> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return source.subtree(n.trailing_zeros(), start / n);
    }
    let k = split_point(n);
    Ok(node_hash(&range_hash(source, start, start + k)?, &range_hash(source, start + k, end)?))
}

/// The root of the tree of the first `size` leaves.
pub fn root(source: &impl HashSource, size: u64) -> Result<Hash, LedgerError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(source, 0, size)
}

/// The inclusion proof (RFC 9162 `PATH`) of leaf `index` in the tree of `size` leaves, leaf side first.
pub fn inclusion_proof(source: &impl HashSource, index: u64, size: u64) -> Result<Vec<Hash>, LedgerError> {
    if index >= size {
        return Err(LedgerError::OutOfRange(format!("leaf {index} is not in a tree of {size}")));
    }
    let mut proof = Vec::new();
    path(source, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path(source: &impl HashSource, index: u64, start: u64, end: u64, proof: &mut Vec<Hash>) -> Result<(), LedgerError> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split_point(n);
    if index < start + k {
        path(source, index, start, start + k, proof)?;
        proof.push(range_hash(source, start + k, end)?);
    } else {
        path(source, index, start + k, end, proof)?;
        proof.push(range_hash(source, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof (RFC 9162 `PROOF`) between the trees of `first` and `second` leaves
/// (1 ≤ first ≤ second); empty when they are equal.
pub fn consistency_proof(source: &impl HashSource, first: u64, second: u64) -> Result<Vec<Hash>, LedgerError> {
    if first == 0 || first > second {
        return Err(LedgerError::OutOfRange(format!("no consistency proof from {first} to {second}")));
    }
    let mut proof = Vec::new();
    subproof(source, first, 0, second, true, &mut proof)?;
    Ok(proof)
}

fn subproof(
    source: &impl HashSource,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), LedgerError> {
    let n = end - start;
    if m == n {
        if !complete {
            proof.push(range_hash(source, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof(source, m, start, start + k, complete, proof)?;
        proof.push(range_hash(source, start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, proof)?;
        proof.push(range_hash(source, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 2.1.3.2: whether `proof` shows leaf `index` with hash `leaf` in the tree of `size` with `root`.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// RFC 9162 2.1.4.2: whether `proof` shows the tree of `second` leaves with `second_root` extends the
/// tree of `first` leaves with `first_root`.
pub fn verify_consistency(first: u64, second: u64, first_root: &Hash, second_root: &Hash, proof: &[Hash]) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((head, rest)) = path.split_first() else { return false };
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*head, *head);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    f_r == *first_root && s_r == *second_root && s_n == 0
}

/// The hashes of the subtrees of height 1..=`height` over `leaves` (a power-of-two count), as
/// `levels[h - 1]`; `levels.last()` holds the root when `leaves.len() == 2^height`.
pub(crate) fn subtree_levels(leaves: &[Hash], height: u32) -> Vec<Vec<Hash>> {
    let mut levels: Vec<Vec<Hash>> = Vec::with_capacity(height as usize);
    let mut below: &[Hash] = leaves;
    for _ in 0..height {
        let level: Vec<Hash> = below.chunks_exact(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
        levels.push(level);
        below = levels.last().expect("just pushed");
    }
    levels
}

#[cfg(test)]
mod tests;
