package main

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/google/uuid"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/devchain/gethtest"
)

func TestValidatorFlags(t *testing.T) {
	out, err := exec.Command(binary(t), "validator", "--main-rpc", "http://127.0.0.1:1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "missing") || !strings.Contains(string(out), "--root-gateway") {
		t.Fatalf("validator without flags: %v\n%s", err, out)
	}
}

// TestCheckpointSeparateValidators: two geth --dev nodes, the main chain (StakeManager,
// CheckpointManager, RootGateway, four validators staked) and the sidechain (the ticket
// platform, ChildGateway); `stagepass serve --main-rpc …` aggregates; three of the four
// validators run as `stagepass validator` processes (3/4 of the stake: every one of them is
// needed), each with its own keystore and its own connections to both chains, two on the
// relay's websocket and one over HTTP. A deposit on the main chain is credited on the
// sidechain, and the sidechain is checkpointed contiguously every 3 blocks.
func TestCheckpointSeparateValidators(t *testing.T) {
	side, sideURL, args := gethPlatform(t)
	mainURL := gethtest.StartGeth(t)
	ctx := context.Background()
	main, err := devchain.Dial(ctx, mainURL, devchain.Options{Accounts: 2, Seed: t.Name() + "/main"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(main.Close)
	b, err := devchain.NewBridge(main, side, devchain.BridgeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	submitter := devchain.NewAccount(t.Name()+"/submitter", 0)
	for _, c := range []*devchain.Chain{main, side} {
		c.MustTransact(c.Deployer, submitter.Address, nil, new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18)))
	}
	dir := t.TempDir()
	writeKey := func(name string, a *devchain.Account) string {
		ks, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: a.Address, PrivateKey: a.Key}, "relay password", keystore.LightScryptN, keystore.LightScryptP)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name+".json")
		if err := os.WriteFile(f, ks, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	env := []string{"STAGEPASS_PASSWORD=relay password"}
	p := start(t, env, append(args, "--main-rpc", mainURL, "--root-gateway", b.Root.Hex(), "--child-gateway", b.Child.Hex(),
		"--submitter-keystore", writeKey("submitter", submitter))...)
	for i, v := range b.Validators[:3] {
		relay := "ws" + strings.TrimPrefix(p.url, "http") + "/ws"
		if i == 2 {
			relay = p.url + "/rpc"
		}
		cmd := exec.Command(binary(t), "validator", "--key", writeKey(fmt.Sprintf("validator%d", i), v),
			"--main-rpc", mainURL, "--side-rpc", sideURL, "--root-gateway", b.Root.Hex(), "--child-gateway", b.Child.Hex(),
			"--relay", relay, "--checkpoint-every", "3", "--confirmations", "2")
		cmd.Env = append(os.Environ(), env...)
		logFile, err := os.Create(filepath.Join(dir, fmt.Sprintf("validator%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}

	fan := side.Accounts[0]
	depositor := main.Accounts[0]
	main.FundUSD(b.Root, devchain.USDC(25), depositor)
	main.MustTransact(depositor, b.Root, devchain.RootGW.PackDeposit(fan.Address, devchain.USDC(25)), nil)

	token := childtoken.NewChildToken()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := side.Call(b.ChildToken, token.PackBalanceOf(fan.Address))
		if err != nil {
			t.Fatal(err)
		}
		bal, _ := token.UnpackBalanceOf(out)
		out, err = main.Call(b.Checkpoints, devchain.Checkpoints.PackCount())
		if err != nil {
			t.Fatal(err)
		}
		n, _ := devchain.Checkpoints.UnpackCount(out)
		if bal.Cmp(devchain.USDC(25)) == 0 && n.Uint64() >= 2 {
			break
		}
		if bal.Sign() != 0 && bal.Cmp(devchain.USDC(25)) != 0 {
			t.Fatalf("credited %v", bal)
		}
		if time.Now().After(deadline) {
			vlog, _ := os.ReadFile(filepath.Join(dir, "validator0.log"))
			t.Fatalf("after 90 s: balance %v, %d checkpoints\n%s\nvalidator 0:\n%s", bal, n, p.logs, vlog)
		}
		time.Sleep(300 * time.Millisecond)
	}
	next := b.FirstBlock
	for i := range int64(2) {
		out, err := main.Call(b.Checkpoints, devchain.Checkpoints.PackCheckpoint(big.NewInt(i)))
		if err != nil {
			t.Fatal(err)
		}
		cp, _ := devchain.Checkpoints.UnpackCheckpoint(out)
		root, err := b.BlockRoot(cp.StartBlock, cp.EndBlock)
		if err != nil {
			t.Fatal(err)
		}
		if cp.StartBlock != next || cp.EndBlock != next+2 || cp.BlockRoot != root {
			t.Fatalf("checkpoint %d: %d..%d root %x; want from %d, root %x", i, cp.StartBlock, cp.EndBlock, cp.BlockRoot, next, root)
		}
		next = cp.EndBlock + 1
	}
	p.stop(t)
}
