//! Hashing against the published RFC 6962 vectors (the certificate-transparency 8-leaf tree), and
//! every proof for every size up to a few thousand against a naive recomputation.

use super::*;
use proptest::prelude::*;

/// The RFC 6962 reference leaves (certificate-transparency-go / trillian test data).
const LEAVES: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
/// The roots of the trees of 0..=8 of those leaves.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];
const H_96A2: &str = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7";
const H_5F08: &str = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e";
const H_6B47: &str = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4";
const H_BC1A: &str = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b";
const H_CA85: &str = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0";
const H_0EBC: &str = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a";

fn h(text: &str) -> Hash {
    hex::decode(text).unwrap().try_into().unwrap()
}

fn hashes(texts: &[&str]) -> Vec<Hash> {
    texts.iter().map(|text| h(text)).collect()
}

/// Leaf hashes, with every perfect subtree hashed level by level up front (`levels[h][i]`).
struct Leaves(Vec<Hash>, Vec<Vec<Hash>>);

impl Leaves {
    fn new(leaves: Vec<Hash>) -> Leaves {
        let mut levels = vec![leaves.clone()];
        while levels.last().unwrap().len() > 1 {
            let next = levels.last().unwrap().chunks_exact(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
            levels.push(next);
        }
        Leaves(leaves, levels)
    }
}

/// `MTH` exactly as RFC 6962 2.1 defines it.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

impl HashSource for Leaves {
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, LedgerError> {
        Ok(self.1[level as usize][index as usize])
    }
}

fn reference_tree() -> Leaves {
    Leaves::new(LEAVES.iter().map(|leaf| leaf_hash(&hex::decode(leaf).unwrap())).collect())
}

#[test]
fn roots_match_rfc_6962_for_every_size() {
    let tree = reference_tree();
    for (size, expected) in ROOTS.iter().enumerate() {
        assert_eq!(root(&tree, size as u64).unwrap(), h(expected), "size {size}");
    }
}

#[test]
fn inclusion_proofs_match_the_published_vectors() {
    let tree = reference_tree();
    let cases: [(u64, u64, Vec<Hash>); 4] = [
        (0, 8, hashes(&[H_96A2, H_5F08, H_6B47])),
        (5, 8, hashes(&[H_BC1A, H_CA85, ROOTS[4]])),
        (2, 3, hashes(&[ROOTS[2]])),
        (1, 5, hashes(&[ROOTS[1], H_5F08, H_BC1A])),
    ];
    for (index, size, expected) in cases {
        let proof = inclusion_proof(&tree, index, size).unwrap();
        assert_eq!(proof, expected, "leaf {index} of {size}");
        assert!(verify_inclusion(&tree.0[index as usize], index, size, &proof, &h(ROOTS[size as usize])));
    }
}

#[test]
fn consistency_proofs_match_the_published_vectors() {
    let tree = reference_tree();
    let cases: [(u64, u64, Vec<Hash>); 4] = [
        (1, 1, vec![]),
        (1, 8, hashes(&[H_96A2, H_5F08, H_6B47])),
        (6, 8, hashes(&[H_0EBC, H_CA85, ROOTS[4]])),
        (2, 5, hashes(&[H_5F08, H_BC1A])),
    ];
    for (first, second, expected) in cases {
        let proof = consistency_proof(&tree, first, second).unwrap();
        assert_eq!(proof, expected, "{first} -> {second}");
        let (a, b) = (h(ROOTS[first as usize]), h(ROOTS[second as usize]));
        assert!(verify_consistency(first, second, &a, &b, &proof));
    }
}

#[test]
fn proofs_outside_the_tree_are_refused() {
    let tree = reference_tree();
    assert!(inclusion_proof(&tree, 8, 8).is_err());
    assert!(consistency_proof(&tree, 0, 8).is_err());
    assert!(consistency_proof(&tree, 5, 4).is_err());
    assert!(!verify_inclusion(&tree.0[0], 8, 8, &[], &h(ROOTS[8])));
}

fn random_leaves(count: usize, seed: u64) -> Vec<Hash> {
    (0..count as u64).map(|i| leaf_hash(&(i ^ seed).to_le_bytes())).collect()
}

#[test]
fn every_size_up_to_2100_has_the_naive_root_and_verifiable_edge_proofs() {
    let leaves = random_leaves(2100, 7);
    let tree = Leaves::new(leaves.clone());
    let roots: Vec<Hash> = (0..=leaves.len()).map(|n| naive_root(&leaves[..n])).collect();
    for size in 1..=leaves.len() as u64 {
        assert_eq!(root(&tree, size).unwrap(), roots[size as usize], "size {size}");
        let root_hash = roots[size as usize];
        for index in [0, size / 3, size / 2, size - 1] {
            let proof = inclusion_proof(&tree, index, size).unwrap();
            assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root_hash), "{index} of {size}");
        }
        for first in [1, size / 2 + 1, size] {
            let proof = consistency_proof(&tree, first, size).unwrap();
            assert!(verify_consistency(first, size, &roots[first as usize], &root_hash, &proof), "{first}->{size}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn inclusion_proofs_verify_and_tampering_fails(size in 1u64..3000, pick in any::<u64>(), flip in any::<u8>()) {
        let leaves = random_leaves(size as usize, pick);
        let tree = Leaves::new(leaves.clone());
        let root_hash = naive_root(&leaves);
        let index = pick % size;
        let proof = inclusion_proof(&tree, index, size).unwrap();
        prop_assert!(verify_inclusion(&leaves[index as usize], index, size, &proof, &root_hash));
        // A different leaf, index or proof hash does not verify.
        let mut other_leaf = leaves[index as usize];
        other_leaf[(flip % 32) as usize] ^= 1;
        prop_assert!(!verify_inclusion(&other_leaf, index, size, &proof, &root_hash));
        if size > 1 {
            let other_index = (index + 1) % size;
            prop_assert!(!verify_inclusion(&leaves[index as usize], other_index, size, &proof, &root_hash));
            let mut bad = proof.clone();
            bad[flip as usize % proof.len()][0] ^= 1;
            prop_assert!(!verify_inclusion(&leaves[index as usize], index, size, &bad, &root_hash));
        }
    }

    #[test]
    fn consistency_proofs_verify_and_tampering_fails(second in 1u64..3000, pick in any::<u64>(), flip in any::<u8>()) {
        let leaves = random_leaves(second as usize, pick);
        let tree = Leaves::new(leaves.clone());
        let first = 1 + pick % second;
        let (first_root, second_root) = (naive_root(&leaves[..first as usize]), naive_root(&leaves));
        let proof = consistency_proof(&tree, first, second).unwrap();
        prop_assert!(verify_consistency(first, second, &first_root, &second_root, &proof));
        let mut other_root = first_root;
        other_root[(flip % 32) as usize] ^= 1;
        prop_assert!(!verify_consistency(first, second, &other_root, &second_root, &proof));
        let mut other_second = second_root;
        other_second[(flip % 32) as usize] ^= 1;
        prop_assert!(!verify_consistency(first, second, &first_root, &other_second, &proof));
        if !proof.is_empty() {
            let mut bad = proof.clone();
            bad[flip as usize % proof.len()][31] ^= 1;
            prop_assert!(!verify_consistency(first, second, &first_root, &second_root, &bad));
        }
    }
}
