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

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/devchain/gethtest"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/keys"
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
		return writeKeystore(t, filepath.Join(dir, name+".json"), a.Key, "relay password")
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

// TestCheckpointDevSeparateValidators: `stagepass dev` with both chains served over
// JSON-RPC and one of its four validators in-process; two more run as `stagepass
// validator` processes against its chains (3/4 of the stake: all three are needed). A
// development account deposits TestUSD on the main chain; it is credited on the sidechain;
// the fan withdraws part of it there; once a checkpoint covers the withdrawal the relay pays
// it on the main chain, once (the fan's own exit with a proof is then refused).
func TestCheckpointDevSeparateValidators(t *testing.T) {
	sideAddr, mainAddr := freeAddr(t), freeAddr(t)
	keyDir := t.TempDir()
	p := start(t, nil, "dev", "--block-time", "200ms", "--data", t.TempDir(), "--chain-rpc", sideAddr, "--main-chain-rpc", mainAddr,
		"--local-validators", "1", "--validator-keys", keyDir, "--checkpoint-every", "3", "--confirmations", "2")
	h, err := p.health()
	if err != nil {
		t.Fatal(err)
	}
	br, _ := h["bridge"].(map[string]any)
	if br == nil || br["mainChainId"].(float64) != 1338 {
		t.Fatalf("healthz bridge: %v", h)
	}
	root, child := common.HexToAddress(br["rootGateway"].(string)), common.HexToAddress(br["childGateway"].(string))
	cps := common.HexToAddress(br["checkpointManager"].(string))
	ctx := context.Background()
	mainC, err := ethclient.Dial("http://" + mainAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer mainC.Close()
	sideC, err := ethclient.Dial("http://" + sideAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer sideC.Close()

	startValidatorProcs(t, p, "http://"+mainAddr, "http://"+sideAddr, root, child, keyDir, 1, 2) // validator 0 runs in stagepass dev

	master, err := keys.FromMnemonic(devnet.DevMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	k, err := master.Account(3)
	if err != nil {
		t.Fatal(err)
	}
	fanKey, err := crypto.ToECDSA(k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	fan := crypto.PubkeyToAddress(fanKey.PublicKey)
	send := func(c *ethclient.Client, chainID int64, to common.Address, data []byte) *types.Receipt {
		t.Helper()
		w := &oracle.Wallet{Client: c, ChainID: big.NewInt(chainID), Key: fanKey}
		tx, err := w.Send(ctx, to, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r, err := bind.WaitMined(wctx, c, tx.Hash())
		if err != nil || r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("transaction %s: %v %+v", tx.Hash(), err, r)
		}
		return r
	}
	read := func(c *ethclient.Client, to common.Address, data []byte) []byte {
		t.Helper()
		out, err := c.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	childToken, _ := devchain.ChildGW.UnpackTOKEN(read(sideC, child, devchain.ChildGW.PackTOKEN()))
	usd, _ := devchain.RootGW.UnpackTOKEN(read(mainC, root, devchain.RootGW.PackTOKEN()))
	token := childtoken.NewChildToken()

	send(mainC, 1338, root, devchain.RootGW.PackDeposit(fan, devchain.USDC(20)))
	deadline := time.Now().Add(60 * time.Second)
	for {
		bal, _ := token.UnpackBalanceOf(read(sideC, childToken, token.PackBalanceOf(fan)))
		if bal.Cmp(devchain.USDC(20)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deposit was not credited: %v\n%s", bal, p.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	before, _ := devchain.USD.UnpackBalanceOf(read(mainC, usd, devchain.USD.PackBalanceOf(fan)))
	r := send(sideC, 1337, child, devchain.ChildGW.PackWithdraw(fan, devchain.USDC(5)))
	w, err := devchain.QueuedWithdrawal(r.Logs)
	if err != nil {
		t.Fatal(err)
	}
	tree := merkle.New(merkle.WithdrawalDepth)
	if w.Index != 0 { // the first withdrawal of a new stagepass dev
		t.Fatalf("withdrawal index %d", w.Index)
	}
	tree.Push(w.Leaf())
	var number uint64
	for found := false; !found; {
		n, _ := devchain.Checkpoints.UnpackCount(read(mainC, cps, devchain.Checkpoints.PackCount()))
		for i := uint64(0); i < n.Uint64(); i++ {
			cp, _ := devchain.Checkpoints.UnpackCheckpoint(read(mainC, cps, devchain.Checkpoints.PackCheckpoint(new(big.Int).SetUint64(i))))
			if cp.EndBlock >= r.BlockNumber.Uint64() {
				number, found = i, true
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covers sidechain block %d (%d checkpoints)\n%s", r.BlockNumber, n, p.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The relay exits it (RootGateway.exit from its submitter's wallet), once: the fan's own
	// exit with a proof against the covering checkpoint is then refused.
	for {
		after, _ := devchain.USD.UnpackBalanceOf(read(mainC, usd, devchain.USD.PackBalanceOf(fan)))
		got := new(big.Int).Sub(after, before)
		if got.Cmp(devchain.USDC(5)) == 0 {
			break
		}
		if got.Sign() != 0 || time.Now().After(deadline) {
			t.Fatalf("the exit paid %v\n%s", got, p.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	exit, err := devchain.ExitCall(number, w, tree)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mainC.EstimateGas(ctx, ethereum.CallMsg{From: fan, To: &root, Data: exit}); err == nil {
		t.Fatal("a second exit of a paid withdrawal would go through")
	}
	p.stop(t)
}
