package exits

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// env is the two simulated chains with the bridge (devchain.NewBridge). Blocks are sealed
// by each transaction the test makes, and by seal(); checkpoints are signed here with the
// validators' keys (the validators' own code is tested in relay/validator).
type env struct {
	t          *testing.T
	main, side *devchain.Chain
	b          *devchain.Bridge
	wallet     *oracle.Wallet // the relay's submitter on the main chain
	fan        *devchain.Account
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := devchain.NewTestBridge(t, t.Name(), 1338, 1337, devchain.BridgeOptions{})
	main, side := b.Main, b.Side
	submitter := devchain.NewAccount(t.Name()+"/submitter", 0)
	main.MustTransact(main.Deployer, submitter.Address, nil, new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18)))
	e := &env{t: t, main: main, side: side, b: b, fan: side.Accounts[0],
		wallet: &oracle.Wallet{Client: main.Client, ChainID: main.ChainID, Key: submitter.Key}}
	// The fan holds 100 spUSD: a deposit on the main chain the validators attested.
	main.FundUSD(b.Root, devchain.USDC(100), main.Accounts[0])
	main.MustTransact(main.Accounts[0], b.Root, devchain.RootGW.PackDeposit(e.fan.Address, devchain.USDC(100)), nil)
	side.MustTransact(side.Deployer, b.Child, b.MintDepositsCall([]sidechain.Deposit{
		{DepositId: new(big.Int), Recipient: e.fan.Address, Amount: devchain.USDC(100)}}, b.Validators...), nil)
	return e
}

// tracker is a Tracker on the env's chains; wallet nil serves proofs only.
func (e *env) tracker(wallet Wallet, logs *bytes.Buffer) *Tracker {
	e.t.Helper()
	var logger *slog.Logger
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	var main anchor.MainChain = e.main.Client
	tr, err := New(Config{Main: main, Side: e.side.Client, Root: e.b.Root, Checkpoints: e.b.Checkpoints, Child: e.b.Child,
		Wallet: wallet, Logger: logger})
	if err != nil {
		e.t.Fatal(err)
	}
	return tr
}

func (e *env) step(tr *Tracker) {
	e.t.Helper()
	if err := tr.Step(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// withdraw queues a withdrawal of `amount` spUSD from the fan to `to` on the main chain.
func (e *env) withdraw(to common.Address, amount int64) *types.Receipt {
	return e.side.MustTransact(e.fan, e.b.Child, devchain.ChildGW.PackWithdraw(to, devchain.USDC(amount)), nil)
}

// checkpoint submits the next checkpoint (to the sidechain's head), signed by all validators,
// with its withdrawal root changed by `tamper` if set; returns its number.
func (e *env) checkpoint(tamper bool) uint64 {
	e.t.Helper()
	cp, err := e.b.NextCheckpoint()
	if err != nil {
		e.t.Fatal(err)
	}
	if tamper {
		cp.WithdrawalRoot[0] ^= 1
	}
	r := e.main.MustTransact(e.main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(cp, e.b.Validators...), nil)
	n, err := devchain.CheckpointNumber(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// until seals main-chain blocks (the relay's exits wait in its pool) until cond holds.
func (e *env) until(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		e.main.Commit()
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) nonce() uint64 {
	e.t.Helper()
	n, err := e.main.Client.NonceAt(context.Background(), e.wallet.Address(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func one(t *testing.T, tr *Tracker, who common.Address) protocol.Withdrawal {
	t.Helper()
	ws, err := tr.Withdrawals(who)
	if err != nil || len(ws) != 1 {
		t.Fatalf("withdrawals to %s: %+v %v", who.Hex(), ws, err)
	}
	return ws[0]
}

// TestGatewayTrackerExitsOnce: withdrawals are queued, then checkpointed by the first
// checkpoint covering their block; the tracker exits each from its wallet once, paying the
// recipient exactly once; a tracker started afresh on the same chains (a restarted relay)
// rebuilds every stage and sends nothing.
func TestGatewayTrackerExitsOnce(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.main.Accounts[1].Address, e.main.Accounts[2].Address
	var logs bytes.Buffer
	tr := e.tracker(e.wallet, &logs)
	if _, err := tr.Withdrawals(alice); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before the first step: %v", err)
	}
	r0 := e.withdraw(alice, 20)
	e.withdraw(bob, 5)
	e.step(tr)
	w := one(t, tr, alice)
	if w.Index != 0 || w.Kind != "token" || w.Value != "20000000" || w.Stage != protocol.WithdrawalQueued || w.Checkpoint != nil ||
		w.TxHash != r0.TxHash.Hex() || w.Block != r0.BlockNumber.Uint64() || !strings.EqualFold(w.Recipient, alice.Hex()) {
		t.Fatalf("queued: %+v", w)
	}
	if _, err := tr.Proof(0); !errors.Is(err, ErrNotCheckpointed) || err.Error() != "withdrawal 0 is not in a checkpoint yet" {
		t.Fatalf("proof before a checkpoint: %v", err)
	}
	if _, err := tr.Proof(99); !errors.Is(err, ErrUnknown) || err.Error() != "no withdrawal 99 (ChildGateway has queued 2)" {
		t.Fatalf("proof of an unknown withdrawal: %v", err)
	}

	nonce := e.nonce()
	number := e.checkpoint(false)
	before := e.main.USDBalance(alice)
	e.step(tr) // checkpointed; both exits sent
	if w := one(t, tr, alice); w.Stage != protocol.WithdrawalCheckpointed || w.Checkpoint == nil || *w.Checkpoint != number {
		t.Fatalf("checkpointed: %+v", w)
	}
	e.until("both exits mined", func() bool {
		e.step(tr) // their receipts
		ws, _ := tr.Withdrawals(bob)
		return one(t, tr, alice).Stage == protocol.WithdrawalExited && ws[0].Stage == protocol.WithdrawalExited
	})
	e.step(tr)
	w = one(t, tr, alice)
	if w.Stage != protocol.WithdrawalExited || w.ExitTx == "" || *w.Checkpoint != number {
		t.Fatalf("exited: %+v", w)
	}
	rcpt, err := e.main.Client.TransactionReceipt(context.Background(), common.HexToHash(w.ExitTx))
	if err != nil {
		t.Fatal(err)
	}
	wb := one(t, tr, bob)
	rb, err := e.main.Client.TransactionReceipt(context.Background(), common.HexToHash(wb.ExitTx))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the relay's stablecoin exits: %d gas (index 0), %d gas (index 1)", rcpt.GasUsed, rb.GasUsed)
	if got := new(big.Int).Sub(e.main.USDBalance(alice), before); got.Cmp(devchain.USDC(20)) != 0 {
		t.Fatalf("alice was paid %v", got)
	}
	if n := e.nonce(); n != nonce+2 {
		t.Fatalf("the relay sent %d transactions for two exits", n-nonce)
	}
	// More steps, and a tracker started afresh: nothing more is sent.
	e.step(tr)
	fresh := e.tracker(e.wallet, nil)
	e.step(fresh)
	e.main.Commit()
	e.step(fresh)
	if n := e.nonce(); n != nonce+2 {
		t.Fatalf("the relay sent %d more transactions after the exits", n-nonce-2)
	}
	if again := one(t, fresh, alice); again.Stage != protocol.WithdrawalExited || again.ExitTx != w.ExitTx {
		t.Fatalf("rebuilt: %+v, was %+v", again, w)
	}
	if got := new(big.Int).Sub(e.main.USDBalance(alice), before); got.Cmp(devchain.USDC(20)) != 0 {
		t.Fatalf("alice was paid %v", got)
	}
	// A third to alice, who now holds TestUSD, in the same word of RootGateway's exited
	// bitmap: the gas report's warm exit.
	e.withdraw(alice, 1)
	e.checkpoint(false)
	e.until("the third exit", func() bool {
		e.step(fresh)
		ws, _ := fresh.Withdrawals(alice)
		return len(ws) == 2 && ws[1].Stage == protocol.WithdrawalExited
	})
	ws, _ := fresh.Withdrawals(alice)
	r2, err := e.main.Client.TransactionReceipt(context.Background(), common.HexToHash(ws[1].ExitTx))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the relay's stablecoin exit to a holder, bitmap word warm: %d gas", r2.GasUsed)
	if !strings.Contains(logs.String(), "the relay's exit paid") {
		t.Fatalf("log: %s", logs.String())
	}
}

// TestGatewayTrackerRestartExitUnmined: the relay restarts while its exit waits unmined in
// the main chain's pool: the new run (a fresh tracker and wallet on the same key) waits for
// the wallet's unmined transactions, then sees the withdrawal exited and sends nothing.
func TestGatewayTrackerRestartExitUnmined(t *testing.T) {
	e := newEnv(t)
	alice := e.main.Accounts[1].Address
	first := e.tracker(e.wallet, nil)
	e.withdraw(alice, 9)
	e.checkpoint(false)
	nonce := e.nonce()
	e.step(first) // the exit is sent, not mined
	var logs bytes.Buffer
	restarted := e.tracker(&oracle.Wallet{Client: e.main.Client, ChainID: e.main.ChainID, Key: e.wallet.Key}, &logs)
	e.step(restarted)
	if w := one(t, restarted, alice); w.Stage != protocol.WithdrawalCheckpointed || !strings.Contains(logs.String(), "waiting for the wallet's unmined") {
		t.Fatalf("%+v\n%s", w, logs.String())
	}
	e.until("the first run's exit mined", func() bool {
		e.step(restarted)
		return one(t, restarted, alice).Stage == protocol.WithdrawalExited
	})
	e.step(restarted)
	e.main.Commit()
	e.step(restarted)
	if n := e.nonce(); n != nonce+1 {
		t.Fatalf("%d exits sent for one withdrawal", n-nonce)
	}
	if strings.Contains(logs.String(), "sent an exit") {
		t.Fatalf("the restarted run sent an exit: %s", logs.String())
	}
}

// TestGatewayTrackerProofs: with no wallet the tracker only serves proofs; its proof is
// accepted by RootGateway.exit sent by the recipient, a tampered one is refused; a
// checkpoint whose withdrawal root is not the tree of the withdrawals in its blocks is
// logged loudly and never proven against: the withdrawal waits for the next good one.
func TestGatewayTrackerProofs(t *testing.T) {
	e := newEnv(t)
	alice := e.main.Accounts[1]
	var logs bytes.Buffer
	tr := e.tracker(nil, &logs)
	e.withdraw(alice.Address, 30)
	bad := e.checkpoint(true)
	e.step(tr)
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "withdrawal root is not the tree") {
		t.Fatalf("the bad checkpoint was not logged loudly: %s", logs.String())
	}
	_, err := tr.Proof(0)
	if !errors.Is(err, ErrNotCheckpointed) || !strings.Contains(err.Error(), "checkpoint 0 carries it, but its withdrawal root") {
		t.Fatalf("proof against a bad checkpoint: %v", err)
	}
	e.withdraw(alice.Address, 1) // the next checkpoint needs a block of its own
	good := e.checkpoint(false)
	e.step(tr)
	p, err := tr.Proof(0)
	if err != nil || p.Checkpoint != good || good == bad || p.Index != 0 || p.Kind != merkle.KindToken || p.Value != "30000000" ||
		p.Data != "0" || len(p.Proof) != merkle.WithdrawalDepth {
		t.Fatalf("proof: %+v %v", p, err)
	}

	exit := func(p protocol.WithdrawalProof) error {
		proof := make([][32]byte, len(p.Proof))
		for i, h := range p.Proof {
			proof[i] = common.HexToHash(h)
		}
		value, _ := new(big.Int).SetString(p.Value, 10)
		data, _ := new(big.Int).SetString(p.Data, 10)
		w := merkle.Withdrawal{Kind: p.Kind, Index: p.Index, Recipient: common.HexToAddress(p.Recipient), Asset: common.HexToAddress(p.Asset), Value: value, Data: data}
		_, err := e.main.Transact(alice, e.b.Root, devchain.RootGW.PackExit(new(big.Int).SetUint64(p.Checkpoint), devchain.MainWithdrawal(w), proof), nil)
		return err
	}
	tampered := p
	tampered.Proof = append([]string(nil), p.Proof...)
	tampered.Proof[3] = common.Hash{1}.Hex()
	if err := exit(tampered); err == nil || !strings.Contains(err.Error(), "revert") {
		t.Fatalf("a tampered proof: %v", err)
	}
	tampered = p
	tampered.Value = "300000000"
	if err := exit(tampered); err == nil {
		t.Fatal("a proof of another value was accepted")
	}
	before := e.main.USDBalance(alice.Address)
	if err := exit(p); err != nil {
		t.Fatal(err)
	}
	if got := new(big.Int).Sub(e.main.USDBalance(alice.Address), before); got.Cmp(devchain.USDC(30)) != 0 {
		t.Fatalf("paid %v", got)
	}
	if err := exit(p); err == nil {
		t.Fatal("the exit was paid twice")
	}
	e.step(tr)
	ws, _ := tr.Withdrawals(alice.Address)
	if len(ws) != 2 || ws[0].Stage != protocol.WithdrawalExited || ws[1].Stage != protocol.WithdrawalCheckpointed {
		t.Fatalf("withdrawals: %+v", ws)
	}
}

// TestGatewayTrackerUserExitsFirst: a withdrawal its recipient exited themselves (with the
// relay's proof) is not exited again by the relay, and that is no error.
func TestGatewayTrackerUserExitsFirst(t *testing.T) {
	e := newEnv(t)
	alice := e.main.Accounts[1]
	tr := e.tracker(e.wallet, nil)
	e.withdraw(alice.Address, 7)
	e.step(tr)
	manual := e.tracker(nil, nil)
	number := e.checkpoint(false)
	e.step(manual)
	p, err := manual.Proof(0)
	if err != nil {
		t.Fatal(err)
	}
	w := merkle.Withdrawal{Kind: p.Kind, Recipient: alice.Address, Value: devchain.USDC(7), Data: new(big.Int)}
	proof := make([][32]byte, len(p.Proof))
	for i, h := range p.Proof {
		proof[i] = common.HexToHash(h)
	}
	r := e.main.MustTransact(alice, e.b.Root, devchain.RootGW.PackExit(new(big.Int).SetUint64(number), devchain.MainWithdrawal(w), proof), nil)
	nonce := e.nonce()
	e.step(tr)
	e.main.Commit()
	e.step(tr)
	if n := e.nonce(); n != nonce {
		t.Fatalf("the relay sent %d exits for a withdrawal already exited", n-nonce)
	}
	if w := one(t, tr, alice.Address); w.Stage != protocol.WithdrawalExited || w.ExitTx != r.TxHash.Hex() {
		t.Fatalf("%+v", w)
	}
}

// flaky is a chain client whose node can go away.
type flaky struct {
	anchor.MainChain
	down atomic.Bool
}

var errAway = errors.New("dial tcp 127.0.0.1:8545: connect: connection refused")

func (f *flaky) BlockNumber(ctx context.Context) (uint64, error) {
	if f.down.Load() {
		return 0, errAway
	}
	return f.MainChain.BlockNumber(ctx)
}

func (f *flaky) CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error) {
	if f.down.Load() {
		return nil, errAway
	}
	return f.MainChain.CallContract(ctx, msg, block)
}

func (f *flaky) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	if f.down.Load() {
		return nil, errAway
	}
	return f.MainChain.FilterLogs(ctx, q)
}

// TestGatewayTrackerNodeAway: with the main chain's node away a step fails with an error
// naming what could not be read, the methods say the relay has not read the bridge yet, and
// Run retries until the node is back; what was read stays served while it is away again.
func TestGatewayTrackerNodeAway(t *testing.T) {
	e := newEnv(t)
	alice := e.main.Accounts[1].Address
	main := &flaky{MainChain: e.main.Client}
	main.down.Store(true)
	var logs syncbuf.Buffer
	tr, err := New(Config{Main: main, Side: e.side.Client, Root: e.b.Root, Checkpoints: e.b.Checkpoints, Child: e.b.Child,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	e.withdraw(alice, 3)
	err = tr.Step(context.Background())
	if err == nil || !strings.Contains(err.Error(), "main chain") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("step with the node away: %v", err)
	}
	if _, err := tr.Withdrawals(alice); !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("withdrawals with the node away: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = tr.Run(ctx) }()
	defer func() { cancel(); <-done }()
	e.until("a retry", func() bool { return strings.Contains(logs.String(), "retrying") })
	e.checkpoint(false)
	main.down.Store(false)
	e.until("the node back", func() bool {
		ws, err := tr.Withdrawals(alice)
		return err == nil && len(ws) == 1 && ws[0].Stage == protocol.WithdrawalCheckpointed
	})
	main.down.Store(true)
	if p, err := tr.Proof(0); err != nil || p.Checkpoint != 0 {
		t.Fatalf("proof with the node away again: %+v %v", p, err)
	}
}
