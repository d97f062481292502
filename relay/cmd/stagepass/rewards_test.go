package main

import (
	"bytes"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/contracts/devchain"
)

// TestCheckpointRewardsCommand: after a checkpoint signed by three of four validators,
// `stagepass rewards` shows a signer's stake and reward (pool / 1000 × 1/4) and the pool;
// --claim pays the validator from its own keystore, once; the one that did not sign has
// nothing to claim; bad flags are refused.
func TestCheckpointRewardsCommand(t *testing.T) {
	// The main chain's own JSON-RPC over HTTP: the command estimates gas and sends.
	addr := freeAddr(t)
	main, err := devchain.New(devchain.Options{Seed: t.Name() + "/main", ChainID: big.NewInt(1338), HTTP: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(main.Close)
	side, err := devchain.New(devchain.Options{Seed: t.Name() + "/side", ChainID: big.NewInt(1337)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(side.Close)
	b, err := devchain.NewBridge(main, side, devchain.BridgeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := b.NextCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Main.Transact(b.Main.Deployer, b.Checkpoints, b.SubmitCheckpointCall(cp, b.Validators[:3]...), nil); err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr
	dir := t.TempDir()
	signer := writeKeystore(t, filepath.Join(dir, "v0.json"), b.Validators[0].Key, "validator password")
	idle := writeKeystore(t, filepath.Join(dir, "v3.json"), b.Validators[3].Key, "validator password")
	t.Setenv("STAGEPASS_PASSWORD", "validator password")
	rewards := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(append([]string{"rewards", "--main-rpc", url, "--root-gateway", b.Root.Hex()}, args...), &out, &errOut)
		return out.String(), err
	}
	// 10,000 TestUSD in the pool: the checkpoint paid 10 × 1,000/4,000 = 2.5 to each signer.
	out, err := rewards("--keystore", signer)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("validator %s: stake 1000000000, unclaimed rewards 2500000 base units", b.Validators[0].Address.Hex())
	if !strings.Contains(out, want) || !strings.Contains(out, "reward pool 9992500000 base units") {
		t.Fatalf("rewards:\n%s\nwant %q and the pool 9,992.5", out, want)
	}
	before := b.Main.USDBalance(b.Validators[0].Address)
	claimed := make(chan struct{})
	go func() { // the claim waits for its block
		for {
			select {
			case <-claimed:
				return
			case <-time.After(50 * time.Millisecond):
				b.Main.Commit()
			}
		}
	}()
	out, err = rewards("--keystore", signer, "--claim")
	close(claimed)
	if err != nil || !strings.Contains(out, "claimed 2500000 base units") {
		t.Fatalf("claim: %v\n%s", err, out)
	}
	if got := b.Main.USDBalance(b.Validators[0].Address); got.Sub(got, before).Cmp(big.NewInt(2_500_000)) != 0 {
		t.Fatalf("the claim paid %v, want 2.5 TestUSD", got)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--keystore", signer, "--claim"}, "has no unclaimed rewards"},
		{[]string{"--keystore", idle, "--claim"}, "has no unclaimed rewards"},
		{[]string{"--address", b.Validators[1].Address.Hex(), "--claim"}, "missing --keystore"},
		{[]string{"--keystore", idle, "--address", b.Validators[1].Address.Hex(), "--claim"}, "a validator claims its own rewards"},
		{[]string{"--address", "0x12"}, "--address: not an address"},
	} {
		if _, err := rewards(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	var errOut bytes.Buffer
	if err := run([]string{"rewards", "--main-rpc", url, "--root-gateway", b.Stake.Hex(), "--address", b.Validators[1].Address.Hex()}, &bytes.Buffer{}, &errOut); err == nil || !strings.Contains(err.Error(), "is it RootGateway?") {
		t.Errorf("a StakeManager given as RootGateway: %v", err)
	}
}
