package main

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/anchor/anchortest"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestCheckpointServeAnchors: `stagepass serve --main-rpc … --btcd-rpc …` anchors the main
// chain's checkpoints in an existing btcd (simnet, started by the test, mining to a key made
// by `stagepass anchor --print-address`). The chains are `stagepass dev`'s (its own anchor
// off), whose in-process validators checkpoint the sidechain; the serve relay follows both
// chains, and a ticket bought on the sidechain goes to "anchored" in its sp_finality, which
// `stagepass checkpoint verify` confirms against the same btcd. Bad anchor flags are refused
// with clear errors.
func TestCheckpointServeAnchors(t *testing.T) {
	anchortest.RequireBtcd(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "anchor.wif")
	out, err := exec.Command(binary(t), "anchor", "--print-address", "--key-file", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := btcutil.DecodeAddress(strings.TrimSpace(string(out)), &chaincfg.SimNetParams)
	if err != nil {
		t.Fatal(err)
	}
	node := anchortest.StartBtcd(t, addr)
	btc, err := node.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(btc.Shutdown)
	if _, err := btc.Generate(uint32(chaincfg.SimNetParams.CoinbaseMaturity)); err != nil {
		t.Fatal(err)
	}

	sideAddr, mainAddr := freeAddr(t), freeAddr(t)
	mainURL, sideURL := "http://"+mainAddr, "http://"+sideAddr
	dev := start(t, nil, "dev", "--block-time", "200ms", "--data", t.TempDir(), "--chain-rpc", sideAddr, "--main-chain-rpc", mainAddr,
		"--checkpoint-every", "3", "--anchor=false")
	h, err := dev.health()
	if err != nil {
		t.Fatal(err)
	}
	br, _ := h["bridge"].(map[string]any)
	if br == nil {
		t.Fatalf("healthz has no bridge: %v", h)
	}
	root, child := br["rootGateway"].(string), br["childGateway"].(string)
	cps := br["checkpointManager"].(string)

	// The serve relay's wallets: development accounts 5 (forwarding) and 6 (checkpoints and
	// exits), funded on both development chains.
	master, err := keys.FromMnemonic(devnet.DevMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	writeKey := func(i uint32) string {
		k, err := master.Account(i)
		if err != nil {
			t.Fatal(err)
		}
		key, err := crypto.ToECDSA(k.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return writeKeystore(t, filepath.Join(dir, fmt.Sprintf("account%d.json", i)), key, "pw")
	}
	env := []string{"STAGEPASS_PASSWORD=pw"}
	side := []string{"serve", "--rpc", sideURL, "--keystore", writeKey(5), "--forwarder", h["forwarder"].(string), "--factory", h["factory"].(string),
		"--data", filepath.Join(dir, "serve")}
	args := append(side, "--main-rpc", mainURL, "--root-gateway", root, "--child-gateway", child, "--submitter-keystore", writeKey(6))
	btcdFlags := []string{"--btcd-rpc", node.RPC, "--btcd-user", node.User, "--btcd-pass", node.Pass}
	with := func(a ...[]string) []string {
		var out []string
		for _, x := range a {
			out = append(out, x...)
		}
		return out
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{with(side, btcdFlags), "--btcd-rpc anchors the main chain's checkpoints: it needs --main-rpc"},
		{with(args, btcdFlags), "--btcd-rpc needs --anchor-key-file"},
		{with(args, btcdFlags, []string{"--anchor-key-file", filepath.Join(dir, "none")}), "--anchor-key-file: open"},
		{with(args, btcdFlags, []string{"--anchor-key-file", keyFile, "--anchor-network", "testnet3"}), "the key is not for testnet3"},
		{with(args, btcdFlags, []string{"--anchor-key-file", keyFile, "--anchor-network", "testnet3", "--anchor-generate", "1"}),
			"--anchor-generate is for simnet and regtest"},
	} {
		cmd := exec.Command(binary(t), append(tc.args, "--addr", freeAddr(t))...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("stagepass %v: %v, want %q:\n%s", tc.args, err, tc.want, out)
		}
	}

	p := start(t, env, with(args, btcdFlags, []string{"--anchor-key-file", keyFile, "--anchor-generate", "1", "--anchor-poll", "200ms"})...)
	if !strings.Contains(p.output(), "proof-of-work anchor running") {
		t.Fatalf("serve did not start its anchorer:\n%s", p.output())
	}

	// A ticket of the demo event, bought on the sidechain by development account 7.
	var events []protocol.EventInfo
	d := &devChains{t: t, p: p}
	d.mustRPC(protocol.MethodEvents, nil, &events)
	if len(events) == 0 {
		t.Fatal("the serve relay indexed no event")
	}
	demo := common.HexToAddress(events[0].Address)
	k7, err := master.Account(7)
	if err != nil {
		t.Fatal(err)
	}
	buyer, err := crypto.ToECDSA(k7.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var sideID *big.Int
	if d.side, sideID, err = dialChain(context.Background(), "side", sideURL); err != nil {
		t.Fatal(err)
	}
	defer d.side.Close()
	w := &oracle.Wallet{Client: d.side, ChainID: sideID, Key: buyer}
	if _, err := w.Send(context.Background(), demo, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(45)), 0); err != nil {
		t.Fatal(err)
	}
	var ticket protocol.TicketInfo
	d.waitFor("the serve relay indexes the ticket", 20*time.Second, func() bool {
		var ts []protocol.TicketInfo
		d.mustRPC(protocol.MethodTicketsByOwner, []any{crypto.PubkeyToAddress(buyer.PublicKey).Hex()}, &ts)
		if len(ts) > 0 {
			ticket = ts[0]
		}
		return len(ts) > 0
	})
	var f server.Finality
	d.waitFor("the ticket anchored by the serve relay", 60*time.Second, func() bool {
		d.mustRPC(protocol.MethodFinality, []any{demo.Hex(), ticket.TokenID}, &f)
		return f.Stage == server.FinalityAnchored
	})
	if f.Anchor == nil || f.Anchor.Confirmations < 1 || f.Checkpoint == nil {
		t.Fatalf("finality %+v", f)
	}
	var verify bytes.Buffer
	if err := run(append([]string{"checkpoint", "verify", strconv.FormatUint(f.Checkpoint.Number, 10), "--main-rpc", mainURL, "--checkpoints", cps},
		btcdFlags...), &verify, &bytes.Buffer{}); err != nil {
		t.Fatalf("checkpoint verify %d: %v\n%s", f.Checkpoint.Number, err, verify.String())
	}
	if !strings.Contains(verify.String(), "tx                "+f.Anchor.Txid) {
		t.Fatalf("checkpoint verify %d does not show the serve relay's anchor %s:\n%s", f.Checkpoint.Number, f.Anchor.Txid, verify.String())
	}
	p.stop(t)
	dev.stop(t)
}
