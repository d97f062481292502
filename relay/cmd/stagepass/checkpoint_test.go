package main

// `stagepass anchor` and `stagepass checkpoint verify` (issue 9, claim 10) against a main
// chain with the sidechain contracts (the simulated chain served over HTTP JSON-RPC) and a
// real btcd on simnet.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/eth/filters"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/anchor/anchortest"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
)

// serveChain serves the JSON-RPC methods the anchor and checkpoint commands use (eth_chainId,
// eth_blockNumber, eth_call, eth_getLogs, eth_getTransactionByHash) over HTTP, answered by a
// simulated chain (whose own client is in-process only).
func serveChain(t *testing.T, c *devchain.Chain) string {
	t.Helper()
	srv := rpc.NewServer()
	if err := srv.RegisterName("eth", simEth{c.Client}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Stop()
	})
	return hs.URL
}

type simEth struct{ c simulated.Client }

func (s simEth) ChainId(ctx context.Context) (*hexutil.Big, error) {
	id, err := s.c.ChainID(ctx)
	return (*hexutil.Big)(id), err
}

func (s simEth) BlockNumber(ctx context.Context) (hexutil.Uint64, error) {
	n, err := s.c.BlockNumber(ctx)
	return hexutil.Uint64(n), err
}

type callArgs struct {
	From  *common.Address `json:"from"`
	To    *common.Address `json:"to"`
	Input hexutil.Bytes   `json:"input"`
	Data  hexutil.Bytes   `json:"data"`
}

func (s simEth) Call(ctx context.Context, args callArgs, _ json.RawMessage) (hexutil.Bytes, error) {
	data := args.Input
	if data == nil {
		data = args.Data
	}
	msg := ethereum.CallMsg{To: args.To, Data: data}
	if args.From != nil {
		msg.From = *args.From
	}
	return s.c.CallContract(ctx, msg, nil)
}

func (s simEth) GetLogs(ctx context.Context, crit filters.FilterCriteria) ([]types.Log, error) {
	return s.c.FilterLogs(ctx, ethereum.FilterQuery(crit))
}

func (s simEth) GetTransactionByHash(ctx context.Context, h common.Hash) (*types.Transaction, error) {
	tx, _, err := s.c.TransactionByHash(ctx, h)
	return tx, err
}

func TestCheckpointCommandFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"checkpoint"}, "only subcommand is verify"},
		{[]string{"checkpoint", "show", "1"}, "only subcommand is verify"},
		{[]string{"checkpoint", "verify"}, `checkpoint number ""`},
		{[]string{"checkpoint", "verify", "-1"}, "flag provided but not defined"},
		{[]string{"checkpoint", "verify", "x", "--main-rpc", "http://127.0.0.1:1"}, `checkpoint number "x"`},
		{[]string{"checkpoint", "verify", "3"}, "missing --main-rpc, --checkpoints, --btcd-rpc"},
		{[]string{"checkpoint", "verify", "3", "--main-rpc", "u", "--checkpoints", "0x12", "--btcd-rpc", "h:1"}, `--checkpoints "0x12" is not an address`},
		{[]string{"anchor"}, "missing --key-file"},
		{[]string{"anchor", "--key-file", filepath.Join(t.TempDir(), "none")}, "--print-address creates a key"},
		{[]string{"anchor", "--network", "litecoin"}, `--network "litecoin"`},
	} {
		var out, errOut bytes.Buffer
		err := run(tc.args, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestCheckpointAnchorAndVerifyCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "anchor.wif")

	// The anchor key first: btcd mines to its address.
	var out, errOut bytes.Buffer
	if err := runAnchor(ctx, []string{"--print-address", "--key-file", keyFile}, &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	addr, err := btcutil.DecodeAddress(strings.TrimSpace(out.String()), &chaincfg.SimNetParams)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runAnchor(ctx, []string{"--print-address", "--key-file", keyFile}, &out, &errOut); err != nil || strings.TrimSpace(out.String()) != addr.EncodeAddress() {
		t.Fatalf("the key file's address changed: %q %v", out.String(), err)
	}
	node := anchortest.StartBtcd(t, addr)
	btc, err := node.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(btc.Shutdown)
	if _, err := btc.Generate(100); err != nil {
		t.Fatal(err)
	}

	b := devchain.NewTestBridge(t, t.Name(), 1337, 31337, devchain.BridgeOptions{})
	main, side := b.Main, b.Side
	submit := func() {
		t.Helper()
		side.Commit()
		cp, err := b.NextCheckpoint()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := main.Transact(main.Deployer, b.Checkpoints, b.SubmitCheckpointCall(cp, b.Validators[:3]...), nil); err != nil {
			t.Fatal(err)
		}
	}
	submit()
	submit()
	main.Commit() // checkpoint 1 one block deep
	url := serveChain(t, main)
	flags := []string{"--main-rpc", url, "--checkpoints", b.Checkpoints.Hex(), "--btcd-rpc", node.RPC, "--btcd-user", node.User, "--btcd-pass", node.Pass}
	verify := func(n string) (string, error) {
		var out bytes.Buffer
		err := run(append([]string{"checkpoint", "verify", n}, flags...), &out, &bytes.Buffer{})
		return out.String(), err
	}

	loopDone := make(chan error, 1)
	var loopLog syncbuf.Buffer
	go func() {
		loopDone <- runAnchor(ctx, append([]string{"--key-file", keyFile, "--store", filepath.Join(dir, "anchor.db"),
			"--generate", "1", "--poll", "100ms", "--main-confirmations", "2"}, flags...), &bytes.Buffer{}, &loopLog)
	}()
	waitVerified := func(n string) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			text, err := verify(n)
			if err == nil {
				return text
			}
			if time.Now().After(deadline) {
				t.Fatalf("checkpoint %s not anchored within 30 s: %v\n%s\nanchor log:\n%s", n, err, text, loopLog.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitVerified("1")
	text := waitVerified("0")
	t.Logf("stagepass checkpoint verify 0:\n%s", text)
	for _, want := range []string{
		"checkpoint 0 on main chain 1337",
		"stake signatures  3, signing 3000000000 at submission of 4000000000 staked now (75.0%)",
		b.Validators[0].Address.Hex(), b.Validators[1].Address.Hex(), b.Validators[2].Address.Hex(),
		"height 101", "confirmations     2",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("verify 0 lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, b.Validators[3].Address.Hex()) {
		t.Errorf("verify 0 lists a validator that did not sign:\n%s", text)
	}
	if _, err := btc.Generate(3); err != nil {
		t.Fatal(err)
	}
	if text, _ := verify("0"); !strings.Contains(text, "confirmations     5") {
		t.Errorf("after 3 more blocks:\n%s", text)
	}

	// Not on the main chain: refused.
	if text, err := verify("2"); err == nil || !strings.Contains(err.Error(), "no such checkpoint") {
		t.Fatalf("checkpoint 2 before it exists: %v\n%s", err, text)
	}
	// A new checkpoint is anchored once two main-chain blocks deep, not before.
	submit()
	time.Sleep(500 * time.Millisecond)
	if text, err := verify("2"); err == nil || !strings.Contains(err.Error(), "not anchored") || !strings.Contains(text, "checkpoint 2 on main chain") {
		t.Fatalf("checkpoint 2 one block deep: %v\n%s", err, text)
	}
	main.Commit()
	waitVerified("2")
	cancel()
	select {
	case err := <-loopDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("anchor loop did not stop")
	}
	// Each checkpoint was anchored once: three anchor transactions in all.
	if n := strings.Count(loopLog.String(), "anchored checkpoint"); n != 3 {
		t.Fatalf("%d anchors logged:\n%s", n, loopLog.String())
	}
}
