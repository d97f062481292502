package exits

import (
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
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

// BenchmarkGatewayRestore is a restarted relay taking back bridge.db before it serves: n
// withdrawals (one per sidechain block) and n/100 checkpoints of 100 more each, every leaf
// recomputed and every checkpoint's root checked against the tree of its leaves.
func BenchmarkGatewayRestore(b *testing.B) {
	parsed, err := mainchain.CheckpointManagerMetaData.ParseABI()
	if err != nil {
		b.Fatal(err)
	}
	args := parsed.Events["CheckpointSubmitted"].Inputs.NonIndexed()
	root, manager := common.Address{1}, common.Address{2}
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			db, err := openStore(filepath.Join(b.TempDir(), "bridge.db"), followsJSON{Root: root, Checkpoints: manager})
			if err != nil {
				b.Fatal(err)
			}
			defer db.close()
			var leaves []Leaf
			var tree frontier // TestGatewayFrontierIsTheTree
			var logs []*types.Log
			for i := range n {
				w := merkle.Withdrawal{Kind: merkle.KindToken, Index: uint64(i), Recipient: common.Address{3}, Value: big.NewInt(int64(i + 1)), Data: new(big.Int)}
				leaves = append(leaves, Leaf{W: w, Hash: w.Leaf(), Block: uint64(i + 1)})
				tree.push(w.Leaf())
				if (i+1)%100 == 0 {
					number := uint64(len(logs))
					data, err := args.Pack(big.NewInt(int64(i-98)), big.NewInt(int64(i+1)), [32]byte{}, [32]byte(tree.root()), [32]byte{}, big.NewInt(1))
					if err != nil {
						b.Fatal(err)
					}
					logs = append(logs, &types.Log{Address: manager, Topics: []common.Hash{checkpointTopic, common.BigToHash(new(big.Int).SetUint64(number))},
						Data: data, BlockNumber: number + 1})
				}
			}
			if err := db.putSide(leaves, uint64(n+1)); err != nil {
				b.Fatal(err)
			}
			if err := db.putMain(logs, uint64(len(logs)+1), nil); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				t := &Tracker{cfg: Config{Root: root, Checkpoints: manager, Logger: slog.New(slog.DiscardHandler)}, kept: newMainState(), tail: newMainState(), db: db}
				if err := t.restore(); err != nil {
					b.Fatal(err)
				}
				if len(t.ws) != n || len(t.kept.cps) != n/100 || !t.kept.cps[len(t.kept.cps)-1].OK {
					b.Fatalf("%d withdrawals, %d checkpoints taken back", len(t.ws), len(t.kept.cps))
				}
			}
		})
	}
}
