package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// prunedNode is a main-chain node that keeps no logs below `floor` and refuses log queries
// over `limit` blocks, as providers run them.
type prunedNode struct {
	simulated.Client
	floor, limit uint64
}

func (p *prunedNode) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	if q.BlockHash == nil {
		if q.FromBlock == nil || q.ToBlock == nil {
			return nil, errors.New("this node needs fromBlock and toBlock")
		}
		if from := q.FromBlock.Uint64(); from < p.floor {
			return nil, fmt.Errorf("block %d is pruned: this node keeps logs from block %d", from, p.floor)
		}
		if n := q.ToBlock.Uint64() - q.FromBlock.Uint64() + 1; n > p.limit {
			return nil, fmt.Errorf("query exceeds max block range %d", p.limit)
		}
	}
	return p.Client.FilterLogs(ctx, q)
}

// startBridgeRelay starts a relay with the bridge whose main chain is `main`, reading it
// from `start`.
func startBridgeRelay(t *testing.T, chain *devnet.Devnet, main simulated.Client, start uint64) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relay, err := server.Start(context.Background(), server.Config{
		Listener: ln, DataDir: t.TempDir(), Client: chain.Client, ChainID: chain.ChainID,
		Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD, Relayer: chain.Relayer,
		Validators: &server.ValidatorConfig{Main: main, MainChainID: chain.Main.ChainID, Root: chain.Bridge.Root,
			Child: chain.Bridge.Child, Submitter: chain.Submitter, ManualExits: true, DepositConfirmations: 2, MainStartBlock: start},
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

// TestGatewayDepositsFromTheStartBlock: on a main-chain node that keeps no logs below the
// bridge's deployment (and answers at most 1,000 blocks a query), a relay told to start at
// block 0 says clearly why it has no deposits; one started at the deployment block
// (ValidatorConfig.MainStartBlock, the devnet's MainStart) shows a deposit made before it
// started and one made after (at once, before its next step), pending and then credited
// once the validators mint them.
func TestGatewayDepositsFromTheStartBlock(t *testing.T) {
	chain := bridgeChain(t, 200*time.Millisecond)
	if chain.MainStart == 0 {
		t.Fatal("the devnet does not say where the bridge's deployment began")
	}
	node := &prunedNode{Client: chain.Main.Client, floor: chain.MainStart, limit: 1000}
	fan := devchain.NewAccount("deposits start fan", 0)
	payer := chain.Main.Accounts[3]
	first := chain.Main.MustTransact(payer, chain.Bridge.Root, devchain.RootGW.PackDeposit(fan.Address, devchain.USDC(5)), nil)

	e := startBridgeRelay(t, chain, node, 0)
	r := e.call(protocol.MethodDeposits, []string{fan.Address.Hex()})
	if r.Error == nil || r.Error.Code != -32002 || !strings.Contains(r.Error.Message, "the relay has not read the bridge's withdrawals and deposits yet") ||
		!strings.Contains(r.Error.Message, "blocks 0..") || !strings.Contains(r.Error.Message, "block 0 is pruned") {
		t.Fatalf("deposits read from block 0 on a pruned node: %+v", r.Error)
	}

	e = startBridgeRelay(t, chain, node, chain.MainStart)
	var ds []protocol.Deposit
	e.result(protocol.MethodDeposits, []string{fan.Address.Hex()}, &ds)
	if len(ds) != 1 || ds[0].TxHash != first.TxHash.Hex() || ds[0].Amount != "5000000" || ds[0].Stage != protocol.DepositPending ||
		ds[0].Block != first.BlockNumber.Uint64() || ds[0].Required != 2 || ds[0].Confirmations < 1 {
		t.Fatalf("the deposit made before the relay started: %+v", ds)
	}
	second := chain.Main.MustTransact(payer, chain.Bridge.Root, devchain.RootGW.PackDeposit(fan.Address, devchain.USDC(3)), nil)
	e.result(protocol.MethodDeposits, []string{fan.Address.Hex()}, &ds)
	if len(ds) != 2 || ds[1].TxHash != second.TxHash.Hex() || ds[1].Amount != "3000000" || ds[1].Stage != protocol.DepositPending {
		t.Fatalf("the deposit made after the relay started: %+v", ds)
	}
	var other []protocol.Deposit
	e.result(protocol.MethodDeposits, []string{payer.Address.Hex()}, &other)
	if len(other) != 0 {
		t.Fatalf("the payer's own deposits: %+v", other)
	}

	e.validators()
	waitFor(t, "both deposits credited", func() bool {
		e.result(protocol.MethodDeposits, []string{fan.Address.Hex()}, &ds)
		return len(ds) == 2 && ds[0].Stage == protocol.DepositCredited && ds[1].Stage == protocol.DepositCredited
	})
	if ds[0].Confirmations < 2 || ds[0].ID == ds[1].ID {
		t.Fatalf("credited: %+v", ds)
	}
}
