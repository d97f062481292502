package merkle

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// A small tree computed by hand: every proof verifies, a wrong leaf or sibling does not.
// (ChildGateway's on-chain root and RootGateway's MerkleProof checks are in contracts' Gateway tests.)
func TestTreeProofs(t *testing.T) {
	for _, n := range []int{1, 2, 3, 5, 8} {
		tr := New(4)
		var leaves []Hash
		for i := range n {
			l := crypto.Keccak256Hash([]byte{byte(i)})
			leaves = append(leaves, l)
			tr.Push(l)
		}
		root := tr.Root()
		// By hand for the first level pairs, up to the root.
		level := append([]Hash(nil), leaves...)
		for len(level) < 16 {
			level = append(level, Hash{})
		}
		for len(level) > 1 {
			var next []Hash
			for j := 0; j < len(level); j += 2 {
				next = append(next, HashPair(level[j], level[j+1]))
			}
			level = next
		}
		if level[0] != root {
			t.Fatalf("n=%d: root %x, by hand %x", n, root, level[0])
		}
		for i, l := range leaves {
			p, err := tr.Proof(i)
			if err != nil {
				t.Fatal(err)
			}
			if !Verify(p, root, l) {
				t.Fatalf("n=%d: proof of %d does not verify", n, i)
			}
			if Verify(p, root, crypto.Keccak256Hash(l[:])) {
				t.Fatalf("n=%d: a wrong leaf verifies", n)
			}
			p[0][0] ^= 1
			if Verify(p, root, l) {
				t.Fatalf("n=%d: a wrong sibling verifies", n)
			}
		}
		if _, err := tr.Proof(n); err == nil {
			t.Fatal("proof of a missing leaf")
		}
	}
}

func TestEmptyRootIsZeroSubtree(t *testing.T) {
	z := Hash{}
	for range 3 {
		z = HashPair(z, z)
	}
	if got := New(3).Root(); got != z {
		t.Fatalf("empty root %x, want %x", got, z)
	}
}

func TestWithdrawalLeafDiffersByField(t *testing.T) {
	base := Withdrawal{Kind: KindToken, Index: 1, Recipient: common.HexToAddress("0x01"), Value: big.NewInt(5)}
	seen := map[Hash]bool{base.Leaf(): true}
	for _, w := range []Withdrawal{
		{Kind: KindTicket, Index: 1, Recipient: base.Recipient, Value: big.NewInt(5)},
		{Kind: KindToken, Index: 2, Recipient: base.Recipient, Value: big.NewInt(5)},
		{Kind: KindToken, Index: 1, Recipient: common.HexToAddress("0x02"), Value: big.NewInt(5)},
		{Kind: KindToken, Index: 1, Recipient: base.Recipient, Value: big.NewInt(6)},
		{Kind: KindToken, Index: 1, Recipient: base.Recipient, Value: big.NewInt(5), Data: big.NewInt(1)},
	} {
		if seen[w.Leaf()] {
			t.Fatalf("leaf collision for %+v", w)
		}
		seen[w.Leaf()] = true
	}
}
