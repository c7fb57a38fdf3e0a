//! The RFC 6962 Merkle tree over the file ledger, beside the hash chain.
//!
//! The chain shows that no record was changed in place; the tree lets one record be proven to
//! a tenant without handing over the others. Leaf `i` is the exact bytes of record `i`'s line
//! (0-based, across rotations, oldest file first) without its newline:
//!
//! - leaf hash `SHA-256(0x00 || line)`, interior node `SHA-256(0x01 || left || right)`;
//! - the tree of `n > 1` leaves splits at `k`, the largest power of two below `n`
//!   (RFC 6962 section 2.1), so any RFC 6962 or C2SP tlog library checks our proofs.
//!
//! Interior nodes are computed from the leaf hashes on demand: a proof costs one pass over the
//! leaves, fine for `audit prove`, which runs offline. Stored tiles would make it logarithmic.

use sha2::{Digest, Sha256};

/// A SHA-256 node or leaf hash.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || line)`.
pub fn leaf_hash(line: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(line);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the tree over `leaves` (leaf hashes); the empty tree's is `SHA-256("")`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `index` in the tree over `leaves`, from the leaf's sibling up to the
/// root's child (RFC 6962 section 2.1.1), or `None` if `index` is not a leaf.
pub fn inclusion_proof(index: usize, leaves: &[Hash]) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

fn path(index: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    if index < k {
        path(index, &leaves[..k], proof);
        proof.push(root(&leaves[k..]));
    } else {
        path(index - k, &leaves[k..], proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Whether `proof` shows leaf `leaf` at `index` in the tree of `size` leaves whose root is
/// `root` (the verification of RFC 9162 section 2.1.3.2, which reads RFC 6962 proofs).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// The largest power of two strictly below `n` (`n > 1`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(h: &Hash) -> String {
        hex::encode(h)
    }

    /// The leaves of the RFC 6962 reference test data (certificate-transparency-go
    /// merkletree tests), whose roots below are the published answers.
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).expect("hex")))
        .collect()
    }

    #[test]
    fn the_empty_tree_and_leaf_hashes_are_the_known_answers() {
        assert_eq!(
            hex(&root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn roots_match_the_rfc6962_reference_vectors() {
        let expected = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = reference_leaves();
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(hex(&root(&leaves[..=n])), *want, "tree of {} leaves", n + 1);
        }
    }

    #[test]
    fn audit_paths_match_the_rfc6962_reference_vectors() {
        let leaves = reference_leaves();
        let proof = inclusion_proof(0, &leaves).expect("leaf");
        assert_eq!(
            proof.iter().map(hex).collect::<Vec<_>>(),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        let proof = inclusion_proof(5, &leaves[..8]).expect("leaf");
        assert_eq!(
            proof.iter().map(hex).collect::<Vec<_>>(),
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert!(inclusion_proof(8, &leaves).is_none());
    }

    proptest! {
        /// Every leaf's proof verifies against the root, and not for another leaf's index. (The
        /// size is not bound by the proof's shape alone: the signed checkpoint binds it.)
        #[test]
        fn every_proof_verifies_and_only_where_it_belongs(n in 1usize..40, pick in 0usize..40) {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(i.to_string().as_bytes())).collect();
            let index = pick % n;
            let root = root(&leaves);
            let proof = inclusion_proof(index, &leaves).expect("leaf");
            prop_assert!(verify_inclusion(index as u64, n as u64, &leaves[index], &proof, &root));
            if n > 1 {
                let other = (index + 1) % n;
                prop_assert!(!verify_inclusion(other as u64, n as u64, &leaves[index], &proof, &root));
                let mut bent = proof.clone();
                bent[0][0] ^= 1;
                prop_assert!(!verify_inclusion(index as u64, n as u64, &leaves[index], &bent, &root));
            }
            prop_assert!(!verify_inclusion(n as u64, n as u64, &leaves[index], &proof, &root));
        }
    }
}
