package devnet_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/validator"
)

// withBridge starts the development chains with the main chain, the relay's validator
// aggregator and the validators in-process (cadence `every` blocks, 2 confirmations).
func withBridge(tb testing.TB, blockTime time.Duration, every uint64) (*devnet.Devnet, *validator.Aggregator) {
	tb.Helper()
	d, err := devnet.Start(devnet.Config{BlockTime: blockTime, MainChain: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	agg, err := validator.NewAggregator(ctx, validator.AggregatorConfig{
		Main: d.Main.Client, Side: d.Client, MainChainID: d.Main.ChainID, SideChainID: d.ChainID,
		Root: d.Bridge.Root, Child: d.Bridge.Child, Key: d.Submitter, Poll: 20 * time.Millisecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = agg.Run(ctx) }()
	if _, err := d.StartValidators(ctx, func(int) validator.Relay { return agg }, validator.NodeConfig{Every: every, Confirmations: 2, Poll: 50 * time.Millisecond}, nil); err != nil {
		tb.Fatal(err)
	}
	return d, agg
}

func checkpointCount(tb testing.TB, d *devnet.Devnet) uint64 {
	out, err := d.Main.Call(d.Bridge.Checkpoints, devchain.Checkpoints.PackCount())
	if err != nil {
		tb.Fatal(err)
	}
	n, err := devchain.Checkpoints.UnpackCount(out)
	if err != nil {
		tb.Fatal(err)
	}
	return n.Uint64()
}

// TestCheckpointDevnetMainchain: with MainChain the development chain is the sidechain of a
// second chain (its own id); a development account deposits TestUSD on the main chain, the
// in-process validators credit it on the sidechain, and checkpoint the sidechain.
func TestCheckpointDevnetMainchain(t *testing.T) {
	d, _ := withBridge(t, 50*time.Millisecond, 4)
	if d.Main.ChainID.Cmp(d.ChainID) == 0 || d.ChainID.Uint64() != 1337 {
		t.Fatalf("chain ids: main %v, sidechain %v", d.Main.ChainID, d.ChainID)
	}
	fan := d.Accounts[3]
	mainFan := d.Main.Accounts[3]
	if mainFan.Address != fan.Address {
		t.Fatal("the development accounts differ between the chains")
	}
	d.Main.MustTransact(mainFan, d.Bridge.Root, devchain.RootGW.PackDeposit(fan.Address, devchain.USDC(12)), nil)
	token := childtoken.NewChildToken()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := d.Call(d.Bridge.ChildToken, token.PackBalanceOf(fan.Address))
		if err != nil {
			t.Fatal(err)
		}
		bal, _ := token.UnpackBalanceOf(out)
		if bal.Cmp(devchain.USDC(12)) == 0 && checkpointCount(t, d) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("balance %v, %d checkpoints", bal, checkpointCount(t, d))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkCheckpointLatency times a sidechain transaction to the main-chain checkpoint
// that covers it, on the development chains at their default block time (1 s) and the
// validators' default cadence (validator.DefaultEvery blocks).
func BenchmarkCheckpointLatency(b *testing.B) {
	d, _ := withBridge(b, time.Second, validator.DefaultEvery)
	from, to := d.Accounts[5], d.Accounts[6]
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		t0 := time.Now()
		r, err := d.Transact(from, to.Address, nil, big.NewInt(1))
		if err != nil {
			b.Fatal(err)
		}
		for !covered(b, d, r.BlockNumber.Uint64()) {
			time.Sleep(20 * time.Millisecond)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/checkpointed")
}

func covered(tb testing.TB, d *devnet.Devnet, block uint64) bool {
	n := checkpointCount(tb, d)
	if n == 0 {
		return false
	}
	out, err := d.Main.Call(d.Bridge.Checkpoints, devchain.Checkpoints.PackCheckpoint(new(big.Int).SetUint64(n-1)))
	if err != nil {
		tb.Fatal(err)
	}
	cp, err := devchain.Checkpoints.UnpackCheckpoint(out)
	if err != nil {
		tb.Fatal(err)
	}
	return cp.EndBlock >= block
}

// BenchmarkDevnetStart: what the main chain adds to `stagepass dev`'s start.
func BenchmarkDevnetStart(b *testing.B) {
	for _, main := range []bool{false, true} {
		name := "sidechain"
		if main {
			name = "with_mainchain"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				d, err := devnet.Start(devnet.Config{MainChain: main})
				if err != nil {
					b.Fatal(err)
				}
				d.Close()
			}
		})
	}
}
