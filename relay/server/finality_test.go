package server_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/anchor/anchortest"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/relay/validator"
	"github.com/stagepass/stagepass/site"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// newBridgeEnv is newEnv on the two development chains: the relay with its validator
// aggregator and, with withAnchor, StartDev's btcd simnet and anchor loop. The validators
// are not running yet (startValidators).
func newBridgeEnv(t *testing.T, withAnchor bool) *env {
	t.Helper()
	chain, err := devnet.Start(devnet.Config{BlockTime: 50 * time.Millisecond, MainChain: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	vc := &server.ValidatorConfig{Main: chain.Main.Client, MainChainID: chain.Main.ChainID, Root: chain.Bridge.Root,
		Child: chain.Bridge.Child, Submitter: chain.Submitter}
	if withAnchor {
		bin := anchortest.RequireBtcd(t)
		pow, err := anchor.StartDev(context.Background(), anchor.DevConfig{Bin: bin, Dir: t.TempDir(), Main: chain.Main.Client,
			Manager: chain.Bridge.Checkpoints, Poll: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pow.Close)
		vc.Anchors = pow.Anchorer
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := server.Start(context.Background(), server.Config{
		Listener: ln, DataDir: t.TempDir(), Client: chain.Client, ChainID: chain.ChainID,
		Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD, Relayer: chain.Relayer, Site: site.FS(),
		Validators: vc,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = relay.Shutdown(ctx)
	})
	return &env{t: t, chain: chain, relay: relay, base: "http://" + relay.Addr()}
}

func (e *env) startValidators() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	if _, err := e.chain.StartValidators(ctx, func(int) validator.Relay { return e.relay.Validators() },
		validator.NodeConfig{Every: 4, Confirmations: 2, Poll: 50 * time.Millisecond}, nil); err != nil {
		e.t.Fatal(err)
	}
}

// boughtTicket buys one ticket and waits until the relay has indexed it.
func (e *env) boughtTicket() protocol.TicketInfo {
	e.t.Helper()
	fan := e.chain.Accounts[2]
	e.buy(fan, 1)
	var mine []protocol.TicketInfo
	waitFor(e.t, "the ticket indexed", func() bool {
		e.result(protocol.MethodTicketsByOwner, []string{fan.Address.Hex()}, &mine)
		return len(mine) == 1
	})
	return mine[0]
}

// finalityUntil reads sp_finality until its stage is `stage`.
func (e *env) finalityUntil(tk protocol.TicketInfo, stage string) server.Finality {
	e.t.Helper()
	var f server.Finality
	waitFor(e.t, "finality "+stage, func() bool {
		e.result(protocol.MethodFinality, []string{tk.Event, tk.TokenID}, &f)
		return f.Stage == stage
	})
	return f
}

// TestCheckpointFinality: a ticket bought on the sidechain is "sidechain" until a
// checkpoint on the main chain covers its purchase's block, then "checkpointed" with that
// checkpoint; without an anchorer it never shows an anchor.
func TestCheckpointFinality(t *testing.T) {
	e := newBridgeEnv(t, false)
	tk := e.boughtTicket()
	var f server.Finality
	e.result(protocol.MethodFinality, []string{tk.Event, tk.TokenID}, &f)
	if f.Stage != server.FinalitySidechain || f.Checkpoint != nil || f.Block == 0 || f.Block > tk.Updated.Block || f.MainChainID != e.chain.Main.ChainID.Uint64() {
		t.Fatalf("before any checkpoint: %+v (ticket updated in block %d)", f, tk.Updated.Block)
	}
	e.startValidators()
	g := e.finalityUntil(tk, server.FinalityCheckpointed)
	if g.Block != f.Block || g.Checkpoint == nil || g.Checkpoint.StartBlock > g.Block || g.Checkpoint.EndBlock < g.Block ||
		g.Checkpoint.SubmittedAt.IsZero() || g.Anchor != nil {
		t.Fatalf("checkpointed: %+v %+v", g, g.Checkpoint)
	}
	// Bad input: a clear error.
	for _, params := range [][]string{{tk.Event, "999999"}, {tk.Event, "x1"}, {"0x12", tk.TokenID}} {
		if r := e.call(protocol.MethodFinality, params); r.Error == nil || r.Error.Code != -32602 {
			t.Fatalf("%v: %+v", params, r)
		}
	}
}

// TestCheckpointFinalityAnchored: with StartDev's btcd simnet anchor the ticket goes on to
// "anchored", with the anchor's transaction and confirmations.
func TestCheckpointFinalityAnchored(t *testing.T) {
	e := newBridgeEnv(t, true)
	tk := e.boughtTicket()
	e.startValidators()
	f := e.finalityUntil(tk, server.FinalityAnchored)
	if f.Checkpoint == nil || f.Anchor == nil || len(f.Anchor.Txid) != 64 || f.Anchor.Confirmations < 1 || f.Anchor.Height <= 100 {
		t.Fatalf("anchored: %+v %+v %+v", f, f.Checkpoint, f.Anchor)
	}
}

// TestCheckpointFinalityOneChain: a relay that follows no main chain says so.
func TestCheckpointFinalityOneChain(t *testing.T) {
	e := newEnv(t)
	tk := e.boughtTicket()
	r := e.call(protocol.MethodFinality, []string{tk.Event, tk.TokenID})
	if r.Error == nil || !strings.Contains(r.Error.Message, "no main chain") {
		t.Fatalf("%+v", r)
	}
}
