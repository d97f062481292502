package exits

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/merkle"
)

// BenchmarkGatewayProof is sp_withdrawalProof's work: the checkpoint's tree rebuilt from
// its leaves and one proof, with n withdrawals queued.
func BenchmarkGatewayProof(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			t := &Tracker{synced: true, kept: mainState{cps: []*checkpointAt{{Checkpoint: Checkpoint{Leaves: n, OK: true}}}}}
			for i := range n {
				w := merkle.Withdrawal{Kind: merkle.KindToken, Index: uint64(i), Recipient: common.Address{1}, Value: big.NewInt(int64(i + 1)), Data: new(big.Int)}
				t.ws = append(t.ws, &entry{Leaf: Leaf{W: w, Hash: w.Leaf()}})
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := t.Proof(uint64(i % n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
