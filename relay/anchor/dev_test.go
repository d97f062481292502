package anchor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/anchor/anchortest"
)

// devAnchor is a main chain with the sidechain contracts and StartDev's btcd and anchor loop.
func devAnchor(t testing.TB) (*devchain.Bridge, *anchor.Dev) {
	t.Helper()
	bin := anchortest.RequireBtcd(t)
	b := devchain.NewTestBridge(t, "anchor-dev", 1337, 31337, devchain.BridgeOptions{})
	d, err := anchor.StartDev(context.Background(), anchor.DevConfig{Bin: bin, Dir: t.TempDir(), Main: b.Main.Client, Manager: b.Checkpoints})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return b, d
}

// submitAndWait submits the next checkpoint and waits until the Dev loop has it mined in
// btcd.
func submitAndWait(t testing.TB, b *devchain.Bridge, d *anchor.Dev) anchor.Proof {
	t.Helper()
	e := &anchorEnv{b: b}
	cp := e.submit(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if d.Anchorer.Anchored(cp.Number) {
			p, err := d.Anchorer.Verify(context.Background(), cp)
			if err == nil && p.Confirmations >= 1 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %d not anchored within 20 s", cp.Number)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// StartDev (what `stagepass dev` can run): each checkpoint anchored and mined by itself.
func TestCheckpointAnchorDev(t *testing.T) {
	b, d := devAnchor(t)
	p0 := submitAndWait(t, b, d)
	p1 := submitAndWait(t, b, d)
	if p0.Height != 101 || p1.Height != 102 || p0.Txid == p1.Txid {
		t.Fatalf("anchors: %+v, %+v", p0, p1)
	}
}

// BenchmarkCheckpointAnchorLoop times a checkpoint from its submission on the main chain to
// its anchor mined in btcd simnet at StartDev's cadence (the main chain read every second).
func BenchmarkCheckpointAnchorLoop(b *testing.B) {
	br, d := devAnchor(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		submitAndWait(b, br, d)
	}
}
