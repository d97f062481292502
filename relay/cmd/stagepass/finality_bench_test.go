package main

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/anchor/anchortest"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// BenchmarkCheckpointFinalityDev: how long a fan's purchase takes, from its submission to the
// relay, to be checkpointed on the main chain and anchored in proof of work, in `stagepass
// dev` at its default cadence (its block time, a checkpoint every 16 sidechain blocks, four
// in-process validators, btcd simnet mining each anchor). Each iteration buys one ticket of
// the demo event as another development account and follows sp_finality every 50 ms.
//
//	go test ./relay/cmd/stagepass -run '^$' -bench CheckpointFinalityDev -benchtime 3x
func BenchmarkCheckpointFinalityDev(b *testing.B) {
	anchortest.RequireBtcd(b)
	sideAddr := freeAddr(b)
	p := start(b, nil, "dev", "--data", b.TempDir(), "--chain-rpc", sideAddr)
	d := &devChains{t: b, p: p}
	side, _, err := dialChain(context.Background(), "side", "http://"+sideAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer side.Close()
	d.side = side
	d.mustRPC(protocol.MethodChainInfo, nil, &d.info)
	var demo protocol.EventInfo
	var evs []protocol.EventInfo
	d.mustRPC(protocol.MethodEvents, nil, &evs)
	if len(evs) == 0 {
		b.Fatal("stagepass dev has no demo event")
	}
	demo = evs[0]
	var master *keys.Master
	master, err = keys.FromMnemonic(devnet.DevMnemonic, "")
	if err != nil {
		b.Fatal(err)
	}
	var toCheckpoint, toAnchor time.Duration
	b.ResetTimer()
	for i := range b.N {
		fan, err := master.Account(uint32(6 + i%4))
		if err != nil {
			b.Fatal(err)
		}
		var permit protocol.PermitInfo
		d.mustRPC(protocol.MethodPermitInfo, []any{demo.Currency, fan.Address().Hex()}, &permit)
		buy, err := actions.Buy(fan.Address(), d.env(fan.Address()), &demo, &permit, 0, 1)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		var token *big.Int
		for _, l := range d.forward(buy, fan).Logs {
			if p, err := devchain.Ticket.UnpackPurchasedEvent(l); err == nil {
				token = p.FirstTokenId
			}
		}
		if token == nil {
			b.Fatal("the purchase minted no ticket")
		}
		var f server.Finality
		var checkpointed time.Duration
		d.waitFor("the purchase anchored", 3*time.Minute, func() bool {
			if err := d.rpc(protocol.MethodFinality, []any{demo.Address, token.String()}, &f); err != nil {
				return false
			}
			if checkpointed == 0 && f.Stage != server.FinalitySidechain {
				checkpointed = time.Since(t0)
			}
			return f.Stage == server.FinalityAnchored
		})
		toCheckpoint += checkpointed
		toAnchor += time.Since(t0)
	}
	b.ReportMetric(toCheckpoint.Seconds()/float64(b.N), "s/checkpointed")
	b.ReportMetric(toAnchor.Seconds()/float64(b.N), "s/anchored")
}
