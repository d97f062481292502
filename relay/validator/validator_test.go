package validator

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var childToken = childtoken.NewChildToken()

// env is the main chain and the sidechain with the bridge deployed (devchain.NewBridge:
// validators staked on the main chain, ChildGateway knowing them), the relay's Aggregator
// and one Node per validator, reporting to the aggregator in-process.
type env struct {
	t          *testing.T
	main, side *devchain.Chain
	b          *devchain.Bridge
	agg        *Aggregator
	nodes      []*Node
}

func newEnv(t *testing.T, opts devchain.BridgeOptions, node NodeConfig) *env {
	t.Helper()
	b := devchain.NewTestBridge(t, t.Name(), 1337, 31337, opts)
	main, side := b.Main, b.Side
	// The aggregator's hot wallet: gas on both chains.
	submitter := devchain.NewAccount(t.Name()+"/submitter", 0)
	for _, c := range []*devchain.Chain{main, side} {
		c.MustTransact(c.Deployer, submitter.Address, nil, new(big.Int).Mul(big.NewInt(10), big.NewInt(1e18)))
	}
	ctx := context.Background()
	agg, err := NewAggregator(ctx, AggregatorConfig{
		Main: main.Client, Side: side.Client, MainChainID: main.ChainID, SideChainID: side.ChainID,
		Root: b.Root, Child: b.Child, Key: submitter.Key, Poll: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, main: main, side: side, b: b, agg: agg}
	for _, v := range b.Validators {
		cfg := node
		cfg.Key, cfg.Main, cfg.Side, cfg.Root, cfg.Child, cfg.Relay = v.Key, main.Client, side.Client, b.Root, b.Child, agg
		if cfg.Poll == 0 {
			cfg.Poll = 20 * time.Millisecond
		}
		n, err := NewNode(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		e.nodes = append(e.nodes, n)
	}
	return e
}

// run runs the aggregator and nodes `which`, and seals a block on both chains every 20 ms
// (the development chains' timers), until the test ends.
func (e *env) run(which ...int) {
	e.runAgg(e.agg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	e.start(ctx, &wg, which...)
}

func (e *env) start(ctx context.Context, wg *sync.WaitGroup, which ...int) {
	for _, i := range which {
		wg.Add(1)
		go func() { defer wg.Done(); _ = e.nodes[i].Run(ctx) }()
	}
}

// count is how many checkpoints CheckpointManager holds.
func (e *env) count() uint64 {
	e.t.Helper()
	out, err := e.main.Call(e.b.Checkpoints, devchain.Checkpoints.PackCount())
	if err != nil {
		e.t.Fatal(err)
	}
	n, err := devchain.Checkpoints.UnpackCount(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return n.Uint64()
}

func (e *env) checkpoint(i uint64) mainchain.CheckpointManagerStored {
	e.t.Helper()
	out, err := e.main.Call(e.b.Checkpoints, devchain.Checkpoints.PackCheckpoint(new(big.Int).SetUint64(i)))
	if err != nil {
		e.t.Fatal(err)
	}
	cp, err := devchain.Checkpoints.UnpackCheckpoint(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return cp
}

// waitFor polls cond until it holds or the deadline passes.
func (e *env) waitFor(what string, d time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) childBalance(a common.Address) *big.Int {
	e.t.Helper()
	out, err := e.side.Call(e.b.ChildToken, childToken.PackBalanceOf(a))
	if err != nil {
		e.t.Fatal(err)
	}
	n, err := childToken.UnpackBalanceOf(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// deposit locks `amount` TestUSD from `from` in RootGateway for `to` and returns the block
// it is in.
func (e *env) deposit(from *devchain.Account, to common.Address, amount *big.Int) uint64 {
	e.t.Helper()
	e.main.FundUSD(e.b.Root, amount, from)
	r, err := e.main.Transact(from, e.b.Root, devchain.RootGW.PackDeposit(to, amount), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.BlockNumber.Uint64()
}

func (e *env) head(c *devchain.Chain) uint64 {
	e.t.Helper()
	n, err := c.Client.BlockNumber(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestCheckpointValidatorsInProcess: four validators, each following the sidechain with its
// own client, checkpoint it every 4 blocks through the relay's aggregator: the checkpoints
// are contiguous from CheckpointManager's first block, each 4 blocks, and carry the block
// root over the sidechain's own block hashes and ChildGateway's withdrawal root at the end.
func TestCheckpointValidatorsInProcess(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Every: 4})
	e.run(0, 1, 2, 3)
	e.waitFor("3 checkpoints", 60*time.Second, func() bool { return e.count() >= 3 && e.agg.Submitted() >= 3 })
	next := e.b.FirstBlock
	for i := range e.count() {
		cp := e.checkpoint(i)
		if cp.StartBlock != next || cp.EndBlock != cp.StartBlock+3 {
			t.Fatalf("checkpoint %d covers %d..%d, want %d..%d", i, cp.StartBlock, cp.EndBlock, next, next+3)
		}
		root, err := e.b.BlockRoot(cp.StartBlock, cp.EndBlock)
		if err != nil {
			t.Fatal(err)
		}
		if root != cp.BlockRoot {
			t.Fatalf("checkpoint %d block root %x, the sidechain's %x", i, cp.BlockRoot, root)
		}
		out, err := e.side.Client.CallContract(context.Background(), callMsg(e.b.Child, devchain.ChildGW.PackWithdrawalRoot()), new(big.Int).SetUint64(cp.EndBlock))
		if err != nil {
			t.Fatal(err)
		}
		if w, _ := devchain.ChildGW.UnpackWithdrawalRoot(out); w != cp.WithdrawalRoot {
			t.Fatalf("checkpoint %d withdrawal root %x, ChildGateway's %x", i, cp.WithdrawalRoot, w)
		}
		next = cp.EndBlock + 1
	}
	if e.agg.Submitted() < 3 {
		t.Fatalf("the aggregator counts %d checkpoints", e.agg.Submitted())
	}
}

// TestCheckpointBelowTwoThirdsSubmitsNothing: with two of four equal stakes signing (1/2 of
// the stake) no checkpoint is submitted however long the sidechain grows; a third validator
// makes the quorum. A non-validator's signature and a checkpoint the chain has moved past
// are refused.
func TestCheckpointBelowTwoThirdsSubmitsNothing(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Every: 2})
	e.run(0, 1)
	start := e.head(e.side)
	e.waitFor("the sidechain to grow", 30*time.Second, func() bool { return e.head(e.side) > start+20 })
	if n := e.count(); n != 0 {
		t.Fatalf("%d checkpoints with half the stake", n)
	}
	if n := e.nodes[0].Signed(); n == 0 {
		t.Fatal("validator 0 signed nothing")
	}

	ctx := context.Background()
	cp, ok, err := e.nodes[2].NextCheckpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("next checkpoint: %v %v", ok, err)
	}
	stranger, _ := crypto.GenerateKey()
	rc, err := e.agg.Submit(ctx, signCheckpoint(t, e, stranger, cp))
	if !errors.Is(err, ErrNotValidator) || !errors.Is(err, oracle.ErrRefused) {
		t.Fatalf("a stranger's signature: %+v %v", rc, err)
	}
	rc, err = e.agg.Submit(ctx, signCheckpoint(t, e, e.b.Validators[0].Key, cp))
	if err != nil || rc.State != protocol.PaymentVerifying || rc.SignedStake != devchain.USDC(2000).String() || rc.TotalStake != devchain.USDC(4000).String() {
		t.Fatalf("half the stake: %+v %v", rc, err)
	}

	var wg sync.WaitGroup
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(func() { cancel(); wg.Wait() })
	e.start(runCtx, &wg, 2)
	e.waitFor("a checkpoint with 3/4 of the stake", 30*time.Second, func() bool { return e.count() >= 1 })
	if _, err := e.agg.Submit(ctx, signCheckpoint(t, e, e.b.Validators[0].Key, cp)); !errors.Is(err, ErrStale) {
		t.Fatalf("a checkpoint of a range already covered: %v", err)
	}
}

func signCheckpoint(t *testing.T, e *env, key *ecdsa.PrivateKey, cp mainchain.Checkpoint) protocol.OracleReport {
	t.Helper()
	d := devchain.CheckpointDigest(e.b.StakeDomain(), cp)
	sig, err := crypto.Sign(d[:], key)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.OracleReport{Kind: protocol.ReportKindCheckpoint, Checkpoint: checkpointJSON(cp), Signature: hexutil.Encode(sig)}
}

// TestGatewayDepositCreditedOnceAfterConfirmations: validators sign a RootGateway deposit
// only once its block has M = 3 confirmations; the aggregator mints it on the sidechain
// once, however often the validators step after.
func TestGatewayDepositCreditedOnceAfterConfirmations(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Confirmations: 3, Every: 1 << 20, Resend: time.Nanosecond})
	ctx := context.Background()
	fan := e.side.Accounts[0]
	step := func() {
		t.Helper()
		for _, n := range e.nodes {
			if err := n.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			if err := e.agg.Step(ctx); err != nil {
				t.Fatal(err)
			}
			e.side.Commit()
		}
	}
	block := e.deposit(e.main.Accounts[0], fan.Address, devchain.USDC(70))
	for e.head(e.main) < block+2 { // 1 and 2 confirmations
		step()
		if n := e.nodes[0].Signed(); n != 0 || e.childBalance(fan.Address).Sign() != 0 {
			t.Fatalf("at %d confirmations: %d signed, balance %v", e.head(e.main)-block+1, n, e.childBalance(fan.Address))
		}
		e.main.Commit()
	}
	step() // 3 confirmations
	if got := e.childBalance(fan.Address); got.Cmp(devchain.USDC(70)) != 0 {
		t.Fatalf("after 3 confirmations the fan holds %v", got)
	}
	for range 5 {
		e.main.Commit()
		step()
	}
	if got := e.childBalance(fan.Address); got.Cmp(devchain.USDC(70)) != 0 {
		t.Fatalf("credited again: %v", got)
	}
	// A replayed attestation is refused before it costs gas.
	rep := protocol.OracleReport{Kind: protocol.ReportKindDeposits, Deposits: []protocol.DepositJSON{{DepositID: "0", Recipient: fan.Address.Hex(), Amount: devchain.USDC(70).String()}}}
	d := devchain.DepositDigest(e.b.ChildDomain(), mustDeposits(t, rep.Deposits))
	sig, _ := crypto.Sign(d[:], e.b.Validators[0].Key)
	rep.Signature = hexutil.Encode(sig)
	if _, err := e.agg.Submit(ctx, rep); !errors.Is(err, ErrStale) {
		t.Fatalf("a minted deposit's attestation: %v", err)
	}
}

// TestGatewayDepositReorgedAwayNotSigned: a deposit whose block is reorganised away before
// M confirmations is never signed from that block. If the pool mines the transaction again
// on the new branch it is a new deposit there, signed only M confirmations after its new
// block, and credited once.
func TestGatewayDepositReorgedAwayNotSigned(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Confirmations: 4, Every: 1 << 20, Resend: time.Nanosecond})
	ctx := context.Background()
	fan := e.side.Accounts[0]
	step := func() {
		t.Helper()
		for _, n := range e.nodes {
			if err := n.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			if err := e.agg.Step(ctx); err != nil {
				t.Fatal(err)
			}
			e.side.Commit()
		}
	}
	block := e.deposit(e.main.Accounts[0], fan.Address, devchain.USDC(30))
	e.main.Commit() // 2 confirmations
	step()
	orig, err := e.main.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(block))
	if err != nil {
		t.Fatal(err)
	}
	parent, err := e.main.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(block-1))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.main.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	// The new branch outgrows the old one: by height the old deposit block soon has M
	// confirmations, but it is not canonical. At every step, nothing is signed unless the
	// deposit is in the canonical chain with M confirmations (the pool may mine the
	// transaction again on the new branch: a deposit there like any other).
	signed := func() int {
		n := 0
		for _, v := range e.nodes {
			n += v.Signed()
		}
		return n
	}
	remined := false
	for range 12 {
		e.main.Commit()
		step()
		logs, err := e.main.Client.FilterLogs(ctx, filter(e.b.Root, 0, e.head(e.main)))
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) > 1 {
			t.Fatalf("%d deposits after the reorganisation", len(logs))
		}
		confirmed := len(logs) == 1 && e.head(e.main)+1 >= logs[0].BlockNumber+4
		if len(logs) == 1 {
			if logs[0].BlockHash == orig.Hash() {
				t.Fatal("the fork did not take over")
			}
			remined = true
		}
		if !confirmed && (signed() != 0 || e.childBalance(fan.Address).Sign() != 0) {
			t.Fatalf("head %d, deposit logs %v: %d signatures, balance %v", e.head(e.main), logs, signed(), e.childBalance(fan.Address))
		}
	}
	want := new(big.Int)
	if remined {
		want = devchain.USDC(30) // the new branch's deposit, once
	}
	if got := e.childBalance(fan.Address); got.Cmp(want) != 0 {
		t.Fatalf("credited %v, want %v (re-mined: %v)", got, want, remined)
	}
}

// TestGatewayFanDepositBuyCheckpointExit: the whole path with validators running: a fan
// deposits TestUSD on the main chain, the validators credit it on the sidechain, the fan
// buys a ticket with it; the purchase's block is covered by a checkpoint on the main chain
// (proven against its block root); the fan withdraws part and exits it on the main chain
// with a proof against a later checkpoint, once.
func TestGatewayFanDepositBuyCheckpointExit(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Every: 5, Confirmations: 2})
	e.run(0, 1, 2, 3)
	mainFan, fan := e.main.Accounts[0], e.side.Accounts[0]
	issuer, artist, venue := e.side.Accounts[1], e.side.Accounts[2], e.side.Accounts[3]
	e.deposit(mainFan, fan.Address, devchain.USDC(100))
	e.waitFor("the deposit on the sidechain", 30*time.Second, func() bool { return e.childBalance(fan.Address).Sign() > 0 })

	cfg := e.side.DefaultConfig(issuer.Address, artist.Address, venue.Address)
	cfg.Currency = e.b.ChildToken
	ev, err := e.side.CreateEvent(issuer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.side.MustTransact(fan, e.b.ChildToken, childToken.PackApprove(ev, devchain.USDC(100)), nil)
	r := e.side.MustTransact(fan, ev, devchain.Ticket.PackBuy(new(big.Int), big.NewInt(1), devchain.USDC(50)), nil)
	bought := r.BlockNumber.Uint64()
	var held *mainchain.CheckpointManagerStored
	e.waitFor("a checkpoint covering the purchase", 60*time.Second, func() bool {
		for i := range e.count() {
			if cp := e.checkpoint(i); cp.StartBlock <= bought && bought <= cp.EndBlock {
				held = &cp
				return true
			}
		}
		return false
	})
	tree := merkle.New(merkle.DepthFor(int(held.EndBlock - held.StartBlock + 1)))
	for n := held.StartBlock; n <= held.EndBlock; n++ {
		h, err := e.side.Client.HeaderByNumber(context.Background(), new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		tree.Push(merkle.BlockLeaf(n, h.Hash()))
	}
	proof, err := tree.Proof(int(bought - held.StartBlock))
	if err != nil {
		t.Fatal(err)
	}
	if !merkle.Verify(proof, held.BlockRoot, merkle.BlockLeaf(bought, r.BlockHash)) {
		t.Fatal("the purchase's block is not in the checkpoint's block root")
	}

	wr := e.side.MustTransact(fan, e.b.Child, devchain.ChildGW.PackWithdraw(mainFan.Address, devchain.USDC(20)), nil)
	w, err := devchain.QueuedWithdrawal(wr.Logs)
	if err != nil {
		t.Fatal(err)
	}
	wtree := merkle.New(merkle.WithdrawalDepth)
	wtree.Push(w.Leaf())
	var number uint64
	e.waitFor("a checkpoint covering the withdrawal", 60*time.Second, func() bool {
		for i := range e.count() {
			if cp := e.checkpoint(i); cp.EndBlock >= wr.BlockNumber.Uint64() {
				number = i
				return true
			}
		}
		return false
	})
	before := e.main.USDBalance(mainFan.Address)
	exit, err := devchain.ExitCall(number, w, wtree)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.main.Transact(e.main.Deployer, e.b.Root, exit, nil); err != nil {
		t.Fatal(err)
	}
	if got := new(big.Int).Sub(e.main.USDBalance(mainFan.Address), before); got.Cmp(devchain.USDC(20)) != 0 {
		t.Fatalf("the exit paid %v", got)
	}
	if _, err := e.main.Transact(e.main.Deployer, e.b.Root, exit, nil); err == nil {
		t.Fatal("the exit was paid twice")
	}
}

func callMsg(to common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{To: &to, Data: data}
}

// filter is RootGateway's Deposited logs in blocks from..to.
func filter(root common.Address, from, to uint64) ethereum.FilterQuery {
	return ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(to),
		Addresses: []common.Address{root}, Topics: [][]common.Hash{{depositID}},
	}
}

func mustDeposits(t *testing.T, js []protocol.DepositJSON) []sidechain.Deposit {
	t.Helper()
	ds, err := parseDeposits(js)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestCheckpointEmptyWithdrawalRoot: the root a checkpoint carries for blocks before
// ChildGateway existed is the one ChildGateway reports with no withdrawals.
func TestCheckpointEmptyWithdrawalRoot(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{})
	root, err := e.b.WithdrawalRoot()
	if err != nil {
		t.Fatal(err)
	}
	if root != emptyWithdrawalRoot {
		t.Fatalf("ChildGateway's empty root %x, Go's %x", root, emptyWithdrawalRoot)
	}
}

// TestGatewayValidatorSetFollowsStake: a fifth validator joins StakeManager on the main
// chain; once the set has been the same for M confirmations the validators sign it for
// ChildGateway, which replaces its copy (epoch 1) through the aggregator; the newcomer's
// signatures then count on the sidechain.
func TestGatewayValidatorSetFollowsStake(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Confirmations: 2, Every: 1 << 20})
	e.run(0, 1, 2, 3)
	newcomer := devchain.NewAccount(t.Name()+"/newcomer", 0)
	if _, err := e.b.Join(newcomer, devchain.USDC(2500)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var set validatorSet
	e.waitFor("ChildGateway's copy of the new set", 30*time.Second, func() bool {
		var err error
		if set, err = childSet(ctx, e.side.Client, e.b.Child); err != nil {
			t.Fatal(err)
		}
		return set.epoch == 1
	})
	want, err := mainSet(ctx, e.main.Client, e.b.Stake, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.validators) != 5 || !set.same(want) {
		t.Fatalf("child set %v %v, main %v %v", set.validators, set.powers, want.validators, want.powers)
	}
	p, err := childPowers(ctx, e.side.Client, e.b.Child)
	if err != nil || p.of[newcomer.Address].Cmp(devchain.USDC(2500)) != 0 || p.total.Cmp(devchain.USDC(6500)) != 0 {
		t.Fatalf("child powers %v %v", p.of, err)
	}
}

// TestCheckpointNeverSignsTwoRoots: a validator that signed a range and then sees other
// roots for it (the sidechain rewritten under it) refuses to sign again: two roots for one
// range is the equivocation StakeManager slashes.
func TestCheckpointNeverSignsTwoRoots(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Every: 2})
	for range 3 {
		e.side.Commit()
	}
	ctx := context.Background()
	n := e.nodes[0]
	cp, ok, err := n.NextCheckpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("next checkpoint: %v %v", ok, err)
	}
	rng := [2]uint64{cp.StartBlock.Uint64(), cp.EndBlock.Uint64()}
	other := cp
	other.BlockRoot[0] ^= 1
	n.roots[rng] = other // as if it had signed another history of these blocks
	if err := n.Step(ctx); err == nil || !strings.Contains(err.Error(), "not signing another root") {
		t.Fatalf("step: %v", err)
	}
	if n.Signed() != 0 {
		t.Fatalf("signed %d", n.Signed())
	}
	delete(n.roots, rng)
	if err := n.Step(ctx); err != nil || n.Signed() != 1 {
		t.Fatalf("step: %v, signed %d", err, n.Signed())
	}
}

// TestCheckpointMaxWaitClosesRange: with MaxWait the range ends before the first block
// stamped MaxWait or more after its first block, the same for every validator; before such
// a block exists the range stays open.
func TestCheckpointMaxWaitClosesRange(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Every: 1000, MaxWait: 3 * time.Second})
	ctx := context.Background()
	header := func(n uint64) uint64 {
		h, err := e.side.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		return h.Time
	}
	if _, ok, err := e.nodes[0].NextCheckpoint(ctx); err != nil || ok {
		t.Fatalf("a range before its time passed: %v %v", ok, err)
	}
	for range 3 {
		if err := e.side.Backend.AdjustTime(2 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var first mainchain.Checkpoint
	for i, n := range e.nodes {
		cp, ok, err := n.NextCheckpoint(ctx)
		if err != nil || !ok {
			t.Fatalf("validator %d: %v %v", i, ok, err)
		}
		if i == 0 {
			first = cp
		} else if cp.EndBlock.Cmp(first.EndBlock) != 0 || cp.BlockRoot != first.BlockRoot {
			t.Fatalf("validators disagree: %d..%d vs %d..%d", cp.StartBlock, cp.EndBlock, first.StartBlock, first.EndBlock)
		}
	}
	s, end := first.StartBlock.Uint64(), first.EndBlock.Uint64()
	t0 := header(s)
	if header(end) >= t0+3 || header(end+1) < t0+3 {
		t.Fatalf("range %d..%d: stamps %d, %d, next %d", s, end, t0, header(end), header(end+1))
	}
}

// TestCheckpointEquivocationSlashed: a validator signs a second checkpoint with another root
// for a range it signed; the aggregator refuses it, submits both signatures to
// StakeManager.slash once, which takes the validator's whole stake, and refuses its later
// reports; the three honest validators, now all the stake, go on checkpointing.
func TestCheckpointEquivocationSlashed(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Every: 2})
	for range 3 {
		e.side.Commit()
	}
	ctx := context.Background()
	cheat := e.b.Validators[3]
	cp, ok, err := e.nodes[3].NextCheckpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("next checkpoint: %v %v", ok, err)
	}
	if rc, err := e.agg.Submit(ctx, signCheckpoint(t, e, cheat.Key, cp)); err != nil || rc.Signatures != 1 {
		t.Fatalf("the first root: %+v %v", rc, err)
	}
	if _, err := e.agg.Submit(ctx, signCheckpoint(t, e, cheat.Key, cp)); err != nil {
		t.Fatalf("the same checkpoint again: %v", err)
	}
	forked := cp
	forked.BlockRoot[0] ^= 1
	if _, err := e.agg.Submit(ctx, signCheckpoint(t, e, cheat.Key, forked)); !errors.Is(err, ErrEquivocation) || !errors.Is(err, oracle.ErrRefused) {
		t.Fatalf("a second root for the range: %v", err)
	}
	third := cp
	third.WithdrawalRoot[0] ^= 1
	if _, err := e.agg.Submit(ctx, signCheckpoint(t, e, cheat.Key, third)); !errors.Is(err, ErrEquivocation) {
		t.Fatalf("a third root before the slash: %v", err)
	}

	stakeOf := func() power {
		p, err := stakes(ctx, e.main.Client, e.b.Stake)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	e.run(0, 1, 2)
	e.waitFor("the slash", 30*time.Second, func() bool { return stakeOf().of[cheat.Address] == nil && e.agg.Slashed() == 1 })
	if p := stakeOf(); p.total.Cmp(devchain.USDC(3000)) != 0 {
		t.Fatalf("total stake after the slash %s", p.total)
	}
	out, err := e.main.Call(e.b.Stake, devchain.Stake.PackSlashedStake())
	if err != nil {
		t.Fatal(err)
	}
	if s, err := devchain.Stake.UnpackSlashedStake(out); err != nil || s.Cmp(devchain.USDC(900)) != 0 {
		t.Fatalf("slashed stake locked %v %v, want 900 (100 of 1,000 paid the relay as reporter)", s, err)
	}
	logs, err := e.main.Client.FilterLogs(ctx, ethereum.FilterQuery{Addresses: []common.Address{e.b.Stake}})
	if err != nil {
		t.Fatal(err)
	}
	slashes := 0
	for _, l := range logs {
		if ev, err := devchain.Stake.UnpackSlashedEvent(&l); err == nil {
			slashes++
			if ev.Validator != cheat.Address || ev.Reporter != e.agg.main.Address() || ev.Reward.Cmp(devchain.USDC(100)) != 0 {
				t.Fatalf("slashed %s by %s, reward %v", ev.Validator.Hex(), ev.Reporter.Hex(), ev.Reward)
			}
		}
	}
	if slashes != 1 {
		t.Fatalf("%d Slashed events", slashes)
	}

	e.waitFor("3 checkpoints from the honest validators", 60*time.Second, func() bool { return e.count() >= 3 })
	first := e.checkpoint(0)
	if first.StartBlock != cp.StartBlock.Uint64() || first.BlockRoot != cp.BlockRoot {
		t.Fatalf("the first checkpoint %d..%d %x, the honest one %d..%d %x", first.StartBlock, first.EndBlock, first.BlockRoot, cp.StartBlock, cp.EndBlock, cp.BlockRoot)
	}
	next, ok, err := e.nodes[0].NextCheckpoint(ctx)
	if err != nil || !ok {
		e.waitFor("a next range", 30*time.Second, func() bool { next, ok, err = e.nodes[0].NextCheckpoint(ctx); return err == nil && ok })
	}
	if _, err := e.agg.Submit(ctx, signCheckpoint(t, e, cheat.Key, next)); !errors.Is(err, ErrNotValidator) && !errors.Is(err, ErrStale) {
		t.Fatalf("the slashed validator's later report: %v", err)
	}
}
