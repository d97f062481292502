// Package merkle builds the Merkle trees Stagepass's sidechain contracts verify: fixed-depth
// binary trees hashed as OpenZeppelin's MerkleTree and MerkleProof do (commutative
// keccak256: a parent is keccak256 of its two children, smaller first), empty leaves zero,
// and leaves double-hashed ABI encodings, as OpenZeppelin's StandardMerkleTree builds them.
//
// ChildGateway keeps its withdrawal tree on chain (depth 32, the same tree OpenZeppelin's
// MerkleTree builds); validators rebuild it here from its WithdrawalQueued logs to prove
// exits to RootGateway.
// Checkpoints' block roots are the same kind of tree over a range's block hashes.
package merkle

import (
	"bytes"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// WithdrawalDepth is the depth of ChildGateway's withdrawal tree.
const WithdrawalDepth = 32

// Withdrawal kinds, as SidechainTypes.sol numbers them.
const (
	KindToken  uint8 = 1
	KindTicket uint8 = 2
)

// Hash is a node or leaf of a tree.
type Hash = common.Hash

// HashPair is OpenZeppelin's commutativeKeccak256: keccak256 of the two, smaller first.
func HashPair(a, b Hash) Hash {
	if bytes.Compare(a[:], b[:]) > 0 {
		a, b = b, a
	}
	return crypto.Keccak256Hash(a[:], b[:])
}

// LeafOf double-hashes an ABI encoding: keccak256(keccak256(encoded)).
func LeafOf(encoded []byte) Hash {
	inner := crypto.Keccak256(encoded)
	return crypto.Keccak256Hash(inner)
}

var (
	uint8T, _   = abi.NewType("uint8", "", nil)
	uint256T, _ = abi.NewType("uint256", "", nil)
	addressT, _ = abi.NewType("address", "", nil)
	bytes32T, _ = abi.NewType("bytes32", "", nil)

	withdrawalArgs = abi.Arguments{{Type: uint8T}, {Type: uint256T}, {Type: addressT}, {Type: addressT}, {Type: uint256T}, {Type: uint256T}}
	blockArgs      = abi.Arguments{{Type: uint256T}, {Type: bytes32T}}
)

// Withdrawal is one leaf of the withdrawal tree (SidechainTypes.sol's Withdrawal): Kind
// KindToken pays Value stablecoin units to Recipient (Asset and Data zero); KindTicket
// mirrors ticket Value of event Asset, Data 1 if it was checked in. Index is its position.
type Withdrawal struct {
	Kind      uint8
	Index     uint64
	Recipient common.Address
	Asset     common.Address
	Value     *big.Int
	Data      *big.Int
}

// Leaf is the withdrawal's leaf:
// keccak256(keccak256(abi.encode(kind, index, recipient, asset, value, data))).
func (w Withdrawal) Leaf() Hash {
	value, data := w.Value, w.Data
	if value == nil {
		value = new(big.Int)
	}
	if data == nil {
		data = new(big.Int)
	}
	enc, err := withdrawalArgs.Pack(w.Kind, new(big.Int).SetUint64(w.Index), w.Recipient, w.Asset, value, data)
	if err != nil {
		panic(fmt.Sprintf("merkle: encode withdrawal: %v", err)) // only negative or oversized numbers
	}
	return LeafOf(enc)
}

// BlockLeaf is a block's leaf in a checkpoint's block root:
// keccak256(keccak256(abi.encode(uint256 number, bytes32 hash))).
func BlockLeaf(number uint64, hash Hash) Hash {
	enc, err := blockArgs.Pack(new(big.Int).SetUint64(number), hash)
	if err != nil {
		panic(err)
	}
	return LeafOf(enc)
}

// Tree is a fixed-depth tree over leaves appended in order; the rest are zero.
type Tree struct {
	depth  int
	leaves []Hash
	zeros  []Hash // zeros[i]: root of an empty subtree of height i
}

// New returns an empty tree of the given depth (1..64).
func New(depth int) *Tree {
	if depth < 1 || depth > 64 {
		panic(fmt.Sprintf("merkle: depth %d out of 1..64", depth))
	}
	z := make([]Hash, depth+1)
	for i := 1; i <= depth; i++ {
		z[i] = HashPair(z[i-1], z[i-1])
	}
	return &Tree{depth: depth, zeros: z}
}

// DepthFor is the least depth (at least 1) that holds n leaves.
func DepthFor(n int) int {
	d := 1
	for 1<<d < n {
		d++
	}
	return d
}

// BlockRoot is the root over blocks first, first+1, … with the given hashes: a tree of
// depth DepthFor(len(hashes)) over their BlockLeafs.
func BlockRoot(first uint64, hashes []Hash) Hash {
	t := New(DepthFor(len(hashes)))
	for i, h := range hashes {
		t.Push(BlockLeaf(first+uint64(i), h))
	}
	return t.Root()
}

// Push appends a leaf and returns its index.
func (t *Tree) Push(leaf Hash) int {
	if t.depth < 63 && len(t.leaves) >= 1<<t.depth {
		panic("merkle: tree full")
	}
	t.leaves = append(t.leaves, leaf)
	return len(t.leaves) - 1
}

// Len is the number of leaves pushed.
func (t *Tree) Len() int { return len(t.leaves) }

// Root is the tree's root: the same as OpenZeppelin's MerkleTree returns after the same pushes.
func (t *Tree) Root() Hash {
	level := t.leaves
	for h := 0; h < t.depth; h++ {
		level = t.up(level, h)
	}
	if len(level) == 0 {
		return t.zeros[t.depth]
	}
	return level[0]
}

// Proof is the siblings of leaf i from the bottom up, as MerkleProof.verify takes them.
func (t *Tree) Proof(i int) ([]Hash, error) {
	if i < 0 || i >= len(t.leaves) {
		return nil, fmt.Errorf("merkle: no leaf %d (tree has %d)", i, len(t.leaves))
	}
	proof := make([]Hash, t.depth)
	level := t.leaves
	for h := 0; h < t.depth; h++ {
		sib := i ^ 1
		if sib < len(level) {
			proof[h] = level[sib]
		} else {
			proof[h] = t.zeros[h]
		}
		level = t.up(level, h)
		i /= 2
	}
	return proof, nil
}

// Verify reports whether proof takes leaf to root (MerkleProof.verify's rule).
func Verify(proof []Hash, root, leaf Hash) bool {
	h := leaf
	for _, p := range proof {
		h = HashPair(h, p)
	}
	return h == root
}

// up hashes one level into the next; a missing right sibling is the zero subtree of height h.
func (t *Tree) up(level []Hash, h int) []Hash {
	next := make([]Hash, (len(level)+1)/2)
	for j := range next {
		right := t.zeros[h]
		if 2*j+1 < len(level) {
			right = level[2*j+1]
		}
		next[j] = HashPair(level[2*j], right)
	}
	return next
}
