package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/relay/validator"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// bridgeRelay starts a relay with the validator aggregator on `chain`'s two chains (exits
// paid by the relay unless manual) and returns it with an idempotent stop.
func bridgeRelay(t *testing.T, chain *devnet.Devnet, manual bool, dataDir string, logger *slog.Logger) (*env, func()) {
	t.Helper()
	return bridgeRelayWith(t, chain, dataDir, logger, func(v *server.ValidatorConfig) { v.ManualExits = manual })
}

// bridgeRelayWith is bridgeRelay with the validator configuration changed by edit.
func bridgeRelayWith(t *testing.T, chain *devnet.Devnet, dataDir string, logger *slog.Logger, edit func(*server.ValidatorConfig)) (*env, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v := &server.ValidatorConfig{Main: chain.Main.Client, MainChainID: chain.Main.ChainID, Root: chain.Bridge.Root,
		Child: chain.Bridge.Child, Submitter: chain.Submitter, DepositConfirmations: 2, MainReorgMargin: 2}
	edit(v)
	relay, err := server.Start(context.Background(), server.Config{
		Listener: ln, DataDir: dataDir, Client: chain.Client, ChainID: chain.ChainID,
		Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD, Relayer: chain.Relayer, Logger: logger,
		Validators: v,
	})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = relay.Shutdown(ctx)
		})
	}
	t.Cleanup(stop)
	return &env{t: t, chain: chain, relay: relay, base: "http://" + relay.Addr()}, stop
}

// bridgeChain starts the two development chains. A relay (re)started on them rebuilds its
// index from block 0, which the simulated chain can only serve while it holds that state
// (its last 128 blocks): blocks every `block` leave a restart that much time.
func bridgeChain(t *testing.T, block time.Duration) *devnet.Devnet {
	t.Helper()
	chain, err := devnet.Start(devnet.Config{BlockTime: block, MainChain: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	return chain
}

// credit deposits amount of TestUSD from the main chain for fan (development account 3
// pays) and, with the validators running (stopped again when it returns if stop), waits
// until the sidechain credits it.
func (e *env) credit(fan common.Address, amount *big.Int, stop bool) {
	e.t.Helper()
	chain := e.chain
	chain.Main.MustTransact(chain.Main.Accounts[3], chain.Bridge.Root, devchain.RootGW.PackDeposit(fan, amount), nil)
	stopValidators := e.validators()
	token := childtoken.NewChildToken()
	waitFor(e.t, "the deposit credited on the sidechain", func() bool {
		out, err := chain.Call(chain.Bridge.ChildToken, token.PackBalanceOf(fan))
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := token.UnpackBalanceOf(out)
		return err == nil && b.Cmp(amount) >= 0
	})
	if stop {
		stopValidators()
	}
}

// validators runs the bridge's validators, reporting to e's relay, until the returned stop.
func (e *env) validators() (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	if _, err := e.chain.StartValidators(ctx, func(int) validator.Relay { return e.relay.Validators() },
		validator.NodeConfig{Every: 4, Confirmations: 2, Poll: 50 * time.Millisecond}, nil); err != nil {
		e.t.Fatal(err)
	}
	return cancel
}

// forward has `from` sign a forward request calling `to` with `data`, sends it with
// sp_sendForward and waits until it is mined.
func (e *env) forward(from *devchain.Account, to common.Address, data []byte) {
	e.t.Helper()
	req, sig := e.chain.SignForward(from, to, data, 400_000, e.chain.Now()+3600)
	var st protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}}, &st)
	waitFor(e.t, "the forwarded request mined", func() bool {
		e.result(protocol.MethodRequestStatus, []any{st.ID}, &st)
		if st.State == protocol.RequestFailed {
			e.t.Fatalf("forwarded request failed: %s", st.Reason)
		}
		return st.State == protocol.RequestMined
	})
}

// withdrawalsUntil reads sp_withdrawals for `to` until its withdrawal `index` is at `stage`.
func (e *env) withdrawalsUntil(to common.Address, index uint64, stage string) protocol.Withdrawal {
	e.t.Helper()
	var found protocol.Withdrawal
	waitFor(e.t, fmt.Sprintf("withdrawal %d %s", index, stage), func() bool {
		var ws []protocol.Withdrawal
		e.result(protocol.MethodWithdrawals, []string{to.Hex()}, &ws)
		for _, w := range ws {
			if w.Index == index {
				found = w
				return w.Stage == stage
			}
		}
		return false
	})
	return found
}

// exitedLogs counts RootGateway's Exited logs for withdrawal `index`.
func (e *env) exitedLogs(index uint64) int {
	e.t.Helper()
	parsed, err := mainchain.RootGatewayMetaData.ParseABI()
	if err != nil {
		e.t.Fatal(err)
	}
	logs, err := e.chain.Main.Client.FilterLogs(context.Background(), ethereum.FilterQuery{
		FromBlock: new(big.Int), Addresses: []common.Address{e.chain.Bridge.Root},
		Topics: [][]common.Hash{{parsed.Events["Exited"].ID}, {common.BigToHash(new(big.Int).SetUint64(index))}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(logs)
}

// exitGas is the gas of a main-chain exit transaction.
func (e *env) exitGas(tx string) uint64 {
	e.t.Helper()
	r, err := e.chain.Main.Client.TransactionReceipt(context.Background(), common.HexToHash(tx))
	if err != nil {
		e.t.Fatal(err)
	}
	return r.GasUsed
}

// TestGatewayWithdrawalsThroughTheRelay: a fan with no coin on either chain deposits
// TestUSD from the main chain (another account pays), the validators credit spUSD; the fan
// withdraws 20 spUSD with a signed forward request (sp_sendForward) and sees it queued in
// sp_withdrawals while no checkpoint carries it; the relay restarts, rebuilds it from the
// chains, and once the validators checkpoint it exits it on the main chain itself: the
// recipient is paid exactly once. After the event a ticket exits the same way and its
// TicketMirror is the recipient's. A relay restarted after both exits sends no second one.
func TestGatewayWithdrawalsThroughTheRelay(t *testing.T) {
	chain := bridgeChain(t, 200*time.Millisecond)
	dataDir := t.TempDir()
	e, stop := bridgeRelay(t, chain, false, dataDir, nil)
	var info protocol.ChainInfo
	e.result(protocol.MethodChainInfo, []any{}, &info)
	if !strings.EqualFold(info.Gateway, chain.Bridge.Child.Hex()) || !strings.EqualFold(info.BridgedCurrency, chain.Bridge.ChildToken.Hex()) ||
		info.MainChainID != chain.Main.ChainID.Uint64() || info.ExitDelay != 24*3600 {
		t.Fatalf("chain info %+v", info)
	}

	fan := devchain.NewAccount("gateway fan", 0)    // no coin on either chain
	paidTo := devchain.NewAccount("gateway fan", 1) // the fan's main-chain address
	e.credit(fan.Address, devchain.USDC(50), true)

	e.forward(fan, chain.Bridge.Child, devchain.ChildGW.PackWithdraw(paidTo.Address, devchain.USDC(20)))
	w := e.withdrawalsUntil(paidTo.Address, 0, protocol.WithdrawalQueued)
	if w.Kind != "token" || w.Value != "20000000" || w.Checkpoint != nil || w.TxHash == "" || w.Block == 0 {
		t.Fatalf("queued: %+v", w)
	}
	r := e.call(protocol.MethodWithdrawalProof, []any{0})
	if r.Error == nil || r.Error.Code != -32602 || r.Error.Message != "withdrawal 0 is not in a checkpoint yet" {
		t.Fatalf("proof before a checkpoint: %+v", r.Error)
	}

	// The relay restarts mid-way: what it knew comes back from the chains.
	stop()
	e, stop = bridgeRelay(t, chain, false, dataDir, nil)
	e.withdrawalsUntil(paidTo.Address, 0, protocol.WithdrawalQueued)
	e.validators()
	w = e.withdrawalsUntil(paidTo.Address, 0, protocol.WithdrawalExited)
	if w.Checkpoint == nil || w.ExitTx == "" {
		t.Fatalf("exited: %+v", w)
	}
	if b := chain.Main.USDBalance(paidTo.Address); b.Cmp(devchain.USDC(20)) != 0 {
		t.Fatalf("the recipient holds %v on the main chain", b)
	}
	t.Logf("the relay's stablecoin exit: %d gas", e.exitGas(w.ExitTx))

	// A ticket, once its event is over (the demo starts in 30 days; exits a day after).
	holder := chain.Accounts[4]
	e.buy(holder, 1)
	var mine []protocol.TicketInfo
	waitFor(t, "the ticket indexed", func() bool {
		e.result(protocol.MethodTicketsByOwner, []string{holder.Address.Hex()}, &mine)
		return len(mine) == 1
	})
	chain.Warp(32 * 24 * time.Hour)
	id, _ := new(big.Int).SetString(mine[0].TokenID, 10)
	e.forward(holder, chain.Bridge.Child, devchain.ChildGW.PackExitTicket(chain.Demo, id, paidTo.Address))
	tw := e.withdrawalsUntil(paidTo.Address, 1, protocol.WithdrawalExited)
	if tw.Kind != "ticket" || !strings.EqualFold(tw.Event, chain.Demo.Hex()) || tw.Value != mine[0].TokenID || tw.CheckedIn {
		t.Fatalf("ticket exit: %+v", tw)
	}
	out, err := chain.Main.Call(chain.Bridge.Mirror, devchain.Mirror.PackMirrorId(chain.Demo, id))
	if err != nil {
		t.Fatal(err)
	}
	mirrorID, err := devchain.Mirror.UnpackMirrorId(out)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = chain.Main.Call(chain.Bridge.Mirror, devchain.Mirror.PackOwnerOf(mirrorID)); err != nil {
		t.Fatal(err)
	}
	if owner, err := devchain.Mirror.UnpackOwnerOf(out); err != nil || owner != paidTo.Address {
		t.Fatalf("mirror owner %s %v", owner.Hex(), err)
	}
	t.Logf("the relay's ticket exit: %d gas", e.exitGas(tw.ExitTx))

	// Restarted after both exits: taken back from DATADIR/bridge.db as exited, the same
	// answers, nothing sent again.
	var served []protocol.Withdrawal
	var proofs [2]protocol.WithdrawalProof
	e.result(protocol.MethodWithdrawals, []string{paidTo.Address.Hex()}, &served)
	for i := range proofs {
		e.result(protocol.MethodWithdrawalProof, []any{i}, &proofs[i])
	}
	stop()
	var logs syncbuf.Buffer
	e, _ = bridgeRelay(t, chain, false, dataDir, slog.New(slog.NewTextHandler(&logs, nil)))
	again := e.withdrawalsUntil(paidTo.Address, 1, protocol.WithdrawalExited)
	if again.ExitTx != tw.ExitTx {
		t.Fatalf("rebuilt %+v, was %+v", again, tw)
	}
	if !strings.Contains(logs.String(), "taken back from the store") {
		t.Fatalf("the restarted relay did not read bridge.db: %s", logs.String())
	}
	var servedAgain []protocol.Withdrawal
	e.result(protocol.MethodWithdrawals, []string{paidTo.Address.Hex()}, &servedAgain)
	if !reflect.DeepEqual(servedAgain, served) {
		t.Fatalf("sp_withdrawals after the restart %+v, before %+v", servedAgain, served)
	}
	for i := range proofs {
		var p protocol.WithdrawalProof
		if e.result(protocol.MethodWithdrawalProof, []any{i}, &p); !reflect.DeepEqual(p, proofs[i]) {
			t.Fatalf("sp_withdrawalProof %d after the restart %+v, before %+v", i, p, proofs[i])
		}
	}
	time.Sleep(2500 * time.Millisecond) // a few of the tracker's steps
	if strings.Contains(logs.String(), "sent an exit") {
		t.Fatalf("the restarted relay sent an exit: %s", logs.String())
	}
	if n0, n1 := e.exitedLogs(0), e.exitedLogs(1); n0 != 1 || n1 != 1 {
		t.Fatalf("Exited logs: %d and %d", n0, n1)
	}
	if b := chain.Main.USDBalance(paidTo.Address); b.Cmp(devchain.USDC(20)) != 0 {
		t.Fatalf("the recipient holds %v on the main chain", b)
	}

	// Bad input: clear errors.
	for _, tc := range []struct {
		method string
		params any
		want   string
	}{
		{protocol.MethodWithdrawalProof, []any{99}, "no withdrawal 99 (ChildGateway has queued 2)"},
		{protocol.MethodWithdrawalProof, []any{"x"}, "index must be a withdrawal index"},
		{protocol.MethodWithdrawalProof, []any{-1}, "index must be a withdrawal index"},
		{protocol.MethodWithdrawals, []any{"0x12"}, "recipient"},
	} {
		r := e.call(tc.method, tc.params)
		if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, tc.want) {
			t.Errorf("%s %v: %+v", tc.method, tc.params, r.Error)
		}
	}
}

// TestGatewayManualExits: with ManualExits the relay sends no exit; the recipient submits
// RootGateway.exit with sp_withdrawalProof's proof and is paid once; a tampered proof is
// refused; sp_withdrawals then shows the recipient's exit.
func TestGatewayManualExits(t *testing.T) {
	chain := bridgeChain(t, 50*time.Millisecond)
	e, _ := bridgeRelay(t, chain, true, t.TempDir(), nil)
	fan := devchain.NewAccount("gateway manual fan", 0)
	recipient := chain.Main.Accounts[5] // holds main-chain coin for its own exit
	e.credit(fan.Address, devchain.USDC(10), false)
	e.forward(fan, chain.Bridge.Child, devchain.ChildGW.PackWithdraw(recipient.Address, devchain.USDC(4)))
	w := e.withdrawalsUntil(recipient.Address, 0, protocol.WithdrawalCheckpointed)
	var p protocol.WithdrawalProof
	e.result(protocol.MethodWithdrawalProof, []any{"0"}, &p)
	if p.Checkpoint != *w.Checkpoint || p.Index != 0 || p.Kind != merkle.KindToken || p.Value != "4000000" || len(p.Proof) != merkle.WithdrawalDepth ||
		!strings.EqualFold(p.Recipient, recipient.Address.Hex()) {
		t.Fatalf("proof %+v for %+v", p, w)
	}
	time.Sleep(1500 * time.Millisecond) // the relay would have exited by now
	if w := e.withdrawalsUntil(recipient.Address, 0, protocol.WithdrawalCheckpointed); w.ExitTx != "" {
		t.Fatalf("%+v", w)
	}

	exit := func(p protocol.WithdrawalProof) (common.Hash, error) {
		proof := make([][32]byte, len(p.Proof))
		for i, h := range p.Proof {
			proof[i] = common.HexToHash(h)
		}
		value, _ := new(big.Int).SetString(p.Value, 10)
		data, _ := new(big.Int).SetString(p.Data, 10)
		mw := merkle.Withdrawal{Kind: p.Kind, Index: p.Index, Recipient: common.HexToAddress(p.Recipient),
			Asset: common.HexToAddress(p.Asset), Value: value, Data: data}
		r, err := chain.Main.Transact(recipient, chain.Bridge.Root,
			devchain.RootGW.PackExit(new(big.Int).SetUint64(p.Checkpoint), devchain.MainWithdrawal(mw), proof), nil)
		if err != nil {
			return common.Hash{}, err
		}
		return r.TxHash, nil
	}
	tampered := p
	tampered.Proof = append([]string(nil), p.Proof...)
	tampered.Proof[0] = common.Hash{7}.Hex()
	if _, err := exit(tampered); err == nil || !strings.Contains(err.Error(), "revert") {
		t.Fatalf("tampered proof: %v", err)
	}
	before := chain.Main.USDBalance(recipient.Address)
	tx, err := exit(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := new(big.Int).Sub(chain.Main.USDBalance(recipient.Address), before); got.Cmp(devchain.USDC(4)) != 0 {
		t.Fatalf("paid %v", got)
	}
	if _, err := exit(p); err == nil {
		t.Fatal("paid twice")
	}
	if w := e.withdrawalsUntil(recipient.Address, 0, protocol.WithdrawalExited); w.ExitTx != tx.Hex() {
		t.Fatalf("exited %+v, the recipient's tx %s", w, tx.Hex())
	}
}

// TestGatewayWithdrawalsNoBridge: a relay without the main chain says it has no bridge,
// and its chain info carries none.
func TestGatewayWithdrawalsNoBridge(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method string
		params any
	}{{protocol.MethodWithdrawals, []any{e.chain.Accounts[1].Address.Hex()}}, {protocol.MethodWithdrawalProof, []any{0}}} {
		r := e.call(tc.method, tc.params)
		if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, "no bridge") {
			t.Errorf("%s: %+v", tc.method, r.Error)
		}
	}
	var info protocol.ChainInfo
	e.result(protocol.MethodChainInfo, []any{}, &info)
	if info.Gateway != "" || info.BridgedCurrency != "" || info.MainChainID != 0 || info.ExitDelay != 0 {
		t.Fatalf("chain info %+v", info)
	}
}
