"""RFC 9162 Merkle tree hashing, proof generation and proof verification.

Invariants guarded here:

* hashing is exactly RFC 9162 §2.1.1 (leaf ``SHA-256(0x00 || d)``, interior node
  ``SHA-256(0x01 || l || r)``, empty tree ``SHA-256("")``), so our roots agree with every
  other RFC 6962/9162 implementation;
* proof generation reads only O(log n) stored hashes. It never needs the leaves: the
  caller supplies ``subtree(level, index)``, the hash of the *perfect* subtree of
  ``2**level`` leaves starting at leaf ``index * 2**level``. Perfect subtrees never change
  once complete, so the Django side can persist them per level as the log grows;
* verification follows the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 and the stricter
  conventions of the transparency-dev test vectors (leaf hash is 32 bytes, consistency
  from size 0 is refused, equal sizes need an empty proof and equal roots).

Pure Python, no Django: imported by ``ledger.verify``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "ProofError",
    "SubtreeFn",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "root_hash",
    "subtrees_completed_by",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

#: ``subtree(level, index)`` -> hash of leaves ``[index << level, (index + 1) << level)``.
SubtreeFn = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A Merkle proof does not establish what it claims to."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash; the 0x00 prefix keeps leaves from posing as interior nodes."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash (0x01 domain-separation prefix)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The split point k of RFC 9162: the largest power of two strictly less than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, computed bottom-up (reference, O(n))."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        # Pair neighbours; an odd last node is carried up unchanged, which yields the same
        # tree shape as the RFC's "largest power of two" left split.
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _range_hash(start: int, end: int, subtree: SubtreeFn) -> bytes:
    """MTH(D[start:end]) for a range produced by the RFC 9162 recursion.

    Such ranges always start on a boundary aligned to their largest perfect piece, so the
    range decomposes into perfect subtrees of strictly decreasing size (the binary digits
    of ``end - start``), folded right to left. Costs one ``subtree`` call per set bit.
    """
    size = end - start
    if size <= 0:
        raise ValueError("empty range has no subtree hash")
    pieces: list[bytes] = []
    offset = start
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            if offset % (1 << level):
                raise ValueError("range is not aligned to perfect subtrees")
            pieces.append(subtree(level, offset >> level))
            offset += 1 << level
    result = pieces[-1]
    for piece in reversed(pieces[:-1]):
        result = node_hash(piece, result)
    return result


def root_hash(size: int, subtree: SubtreeFn) -> bytes:
    """Root of the tree made of the first ``size`` leaves, from perfect subtree hashes."""
    if size < 0:
        raise ValueError("tree size must be non-negative")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, subtree)


def inclusion_proof(index: int, size: int, subtree: SubtreeFn) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf-side sibling first.

    Walks down from the root. Going right leaves a perfect left sibling; the first time
    we go left, the right sibling may be a partial range, but everything below a left
    turn is inside a perfect subtree -- hence O(log n) ``subtree`` calls overall.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    siblings: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            siblings.append(_range_hash(start + k, end, subtree))
            end = start + k
        else:
            siblings.append(_range_hash(start, start + k, subtree))
            start += k
    # Recursion appends the deepest sibling first; we collected root-side first.
    siblings.reverse()
    return siblings


def consistency_proof(m: int, n: int, subtree: SubtreeFn) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(m, D[0:n]) for 0 < m <= n (empty when m == n)."""
    if not 0 < m <= n:
        raise ValueError(f"no consistency proof from size {m} to size {n}")
    if m == n:
        return []
    proof: list[bytes] = []
    start, end = 0, n
    # m is tracked as an absolute leaf count; `complete` is SUBPROOF's boolean b: true
    # while the old tree's root is still a node of the new tree (only left turns so far).
    complete = True
    while True:
        if m == end:
            if not complete:
                proof.append(_range_hash(start, end, subtree))
            break
        k = _largest_power_of_two_below(end - start)
        if m <= start + k:
            proof.append(_range_hash(start + k, end, subtree))
            end = start + k
        else:
            proof.append(_range_hash(start, start + k, subtree))
            start += k
            complete = False
    proof.reverse()
    return proof


def subtrees_completed_by(
    index: int, hashed_leaf: bytes, subtree: SubtreeFn
) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees that appending leaf ``index`` completes, as (level, index, hash).

    Always starts with ``(0, index, hashed_leaf)``; a node completes its parent exactly when
    it is a right child, so at most log2(index + 1) + 1 rows. ``subtree`` must already know
    every subtree of the leaves before ``index`` -- this is what a store of per-level hashes
    writes for each appended leaf.
    """
    if len(hashed_leaf) != HASH_SIZE:
        raise ValueError("leaf hash must be 32 bytes")
    rows = [(0, index, hashed_leaf)]
    level, position, current = 0, index, hashed_leaf
    while position & 1:
        current = node_hash(subtree(level, position - 1), current)
        level += 1
        position >>= 1
        rows.append((level, position, current))
    return rows


class MerkleTree:
    """Append-only in-memory tree keeping every perfect subtree hash, level by level.

    ``levels[h][i]`` is the hash of the perfect subtree of ``2**h`` leaves starting at leaf
    ``i * 2**h`` -- the same table the database keeps -- so ``subtree`` can be handed
    straight to the proof generators above.
    """

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for item in leaf_hashes:
            self.append_hash(item)

    def __len__(self) -> int:
        return len(self.levels[0])

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def append(self, data: bytes) -> int:
        """Hash ``data`` as a leaf and append it; returns its leaf index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, hashed_leaf: bytes) -> int:
        """Append an already-hashed leaf, completing any perfect subtrees it closes."""
        index = len(self.levels[0])
        for level, position, value in subtrees_completed_by(index, hashed_leaf, self.subtree):
            if level == len(self.levels):
                self.levels.append([])
            # Levels fill strictly left to right, so the new hash lands at `position`.
            assert len(self.levels[level]) == position
            self.levels[level].append(value)
        return index

    def subtree(self, level: int, index: int) -> bytes:
        """Hash of a complete perfect subtree; IndexError if it is not complete yet."""
        if level < 0 or level >= len(self.levels) or not 0 <= index < len(self.levels[level]):
            raise IndexError(f"no complete subtree at level {level}, index {index}")
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        """Root hash at ``size`` (default: current size)."""
        return root_hash(self.size if size is None else size, self.subtree)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self.subtree)

    def consistency_proof(self, m: int, n: int | None = None) -> list[bytes]:
        return consistency_proof(m, self.size if n is None else n, self.subtree)


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, item in enumerate(proof):
        if len(item) != HASH_SIZE:
            raise ProofError(f"proof element {position} is {len(item)} bytes, expected 32")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. Raises ``ProofError``; returns None on success.
    """
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError("leaf hash must be 32 bytes")
    if index < 0 or size < 0:
        raise ProofError("negative index or size")
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _check_proof_hashes(proof)
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # Skip the levels where our node is the last, sibling-less one on the right edge.
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (size1, root1) is a prefix of the tree (size2, root2).

    RFC 9162 §2.1.4.2, plus: size 0 is refused (it proves nothing and the vectors demand
    rejection), and equal sizes require an empty proof and identical roots.
    """
    if size1 < 0 or size2 < 0:
        raise ProofError("negative tree size")
    if size1 == 0:
        raise ProofError("consistency from an empty tree proves nothing")
    if size1 > size2:
        raise ProofError(f"size1 {size1} is larger than size2 {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("proof must be empty when sizes are equal")
        if root1 != root2:
            raise ProofError("roots differ for equal tree sizes")
        return
    if not proof:
        raise ProofError("empty consistency proof for different sizes")
    _check_proof_hashes(proof)
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        # The old tree is a perfect left subtree, so the proof omits its own root.
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError("consistency proof does not reproduce the old root")
    if sr != root2:
        raise ProofError("consistency proof does not reproduce the new root")
