// Package exits is the relay's side of the bridge's withdrawals (issue 9, claim 9): it
// follows every leaf of ChildGateway's withdrawal tree on the sidechain (its
// WithdrawalQueued logs, each leaf recomputed in Go and checked against the logged one),
// the main chain's checkpoints (CheckpointManager; each one's withdrawal root checked
// against the Go tree of the leaves in its blocks) and RootGateway's Exited logs; it serves
// each withdrawal's stage and its Merkle proof and, given the relay's main-chain wallet,
// sends RootGateway.exit for each checkpointed withdrawal itself, once. It also follows
// RootGateway's Deposited logs (the deposits the other way, by recipient, for sp_deposits).
// The chains are read from the contracts' deployment blocks (Config.SideStart, MainStart)
// in queries of at most RangeLimit blocks; with Config.Path the Tracker keeps what it read
// there (store.go) and a restarted one reads only the blocks after, the main chain's up
// to Margin blocks below its head (newer ones are read again at every step, and a
// reorganisation below is rolled back: kept.go).
package exits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/exits/bridge"
	"github.com/stagepass/stagepass/relay/internal/logscan"
	"github.com/stagepass/stagepass/relay/internal/loop"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	rootABI = mainchain.NewRootGateway()
	// DepositedTopic is RootGateway's Deposited(depositId, from, recipient, amount) event
	// (all but amount indexed).
	DepositedTopic = bridge.DepositedTopic
)

// Errors Proof answers with (the relay turns the first two into invalid params).
var (
	ErrUnknown         = bridge.ErrUnknown
	ErrNotCheckpointed = bridge.ErrNotCheckpointed
	// ErrNotReady: the Tracker has not read the chains once yet (a node is away).
	ErrNotReady = bridge.ErrNotReady
)

// The bridge's records, shared with the Workers build (relay/exits/bridge).
type (
	Leaf       = bridge.Leaf
	Exit       = bridge.Exit
	Checkpoint = bridge.Checkpoint
	Deposit    = bridge.Deposit
	MainChain  = bridge.MainChain
)

// Side is what the Tracker reads of the sidechain.
type Side interface {
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	BlockNumber(ctx context.Context) (uint64, error)
}

// Wallet sends the relay's exits on the main chain: an *oracle.Wallet (the validator
// aggregator's, validator.Aggregator.MainWallet), which sends one transaction at a time
// and follows each (Receipt: re-priced while stuck, oracle.ErrDropped once it cannot be
// mined).
type Wallet interface {
	Address() common.Address
	Send(ctx context.Context, to common.Address, data []byte, gas uint64) (*types.Transaction, error)
	Receipt(ctx context.Context, h common.Hash) (*types.Receipt, error)
}

// nonces is what the Tracker reads of the wallet's account on the main chain to see that
// nothing it sent before a restart is still unmined (an ethclient.Client and the simulated
// chain's client have both).
type nonces interface {
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error)
}

// Config configures a Tracker.
type Config struct {
	// Main is the main chain (CheckpointManager at Checkpoints, RootGateway at Root); Side
	// the sidechain (ChildGateway at Child).
	Main              MainChain
	Side              Side
	Root, Checkpoints common.Address
	Child             common.Address
	// Wallet, if set, pays the exits; nil only serves proofs (ValidatorConfig.ManualExits).
	Wallet Wallet
	// SideStart and MainStart are the first blocks read on each chain (ChildGateway's and
	// RootGateway's deployment, or 0): a node that keeps no logs below them, or a chain
	// with millions of blocks before them, is not asked for those.
	SideStart, MainStart uint64
	// Poll is how often Run reads the chains (default 1 s); RetryAfter how long an exit
	// that could not be sent or reverted waits before the next try (default 30 s);
	// RangeLimit the most blocks read in one log query (default 1000).
	Poll, RetryAfter time.Duration
	RangeLimit       uint64
	// Path, if set, is the Tracker's store (the relay's DATADIR/bridge.db): what it has
	// read is kept there and a restarted Tracker reads only the blocks after. Margin is how
	// many of the main chain's newest blocks are read again at every step rather than kept
	// (a reorganisation may still replace them; one that replaces a kept block is seen by
	// its hash and read again). With Path or Margin, Main must also read block headers.
	Path   string
	Margin uint64
	Logger *slog.Logger
	// OnStep, if set, is told after each Step what it changed (outside the Tracker's lock:
	// it may call the read methods; the next Step waits for it). The relay pushes it on
	// the "bridge" topic.
	OnStep func(Changes)
}

// Changes is what one Step read: the withdrawals whose stage changed (a new one is
// queued), the deposits read for the first time, and the main-chain block it read up to.
type Changes struct {
	Withdrawals []protocol.Withdrawal
	Deposits    []Deposit
	MainBlock   uint64
}

// Tracker follows the withdrawals. Step and Run must not be called concurrently; the
// read methods may be called at any time.
type Tracker struct {
	cfg Config

	db      *store  // nil: nothing kept on disk
	headers headers // nil: no reorganisation is looked for

	mu       sync.Mutex
	ws       []*entry // by index
	sideNext uint64   // the next sidechain block to read
	// kept and tail are the main chain's exits, deposits (by recipient, oldest first) and
	// checkpoints read so far (kept.go): kept from blocks up to mainNext-1, tail from
	// mainNext to tailNext-1; points are hashes of kept blocks, to see a reorganisation.
	kept, tail         mainState
	mainNext, tailNext uint64
	points             []hashPoint
	// checked are the tail's checkpoints as checked, not to check them again at each step;
	// front is the tree of the first withdrawals, as far as a checkpoint needed them.
	checked map[uint64]Checkpoint
	front   frontier
	synced  bool // one Step went through
	lastErr error
	// settled: the wallet had no unmined transaction once since the Tracker started, so
	// no exit a previous run sent can still be waiting (exit waits for it).
	settled bool
}

// entry is one withdrawal.
type entry struct {
	Leaf
	// The relay's own exit: its transaction while unmined, when to try again, and paid:
	// the chain says it exited (the Exited log may not be read yet).
	sent  common.Hash
	retry time.Time
	paid  bool
}

// New returns a Tracker; its first Step reads both chains from their start, or from where
// the store at cfg.Path says it stopped.
func New(cfg Config) (*Tracker, error) {
	if cfg.Main == nil || cfg.Side == nil || cfg.Root == (common.Address{}) || cfg.Checkpoints == (common.Address{}) ||
		cfg.Child == (common.Address{}) {
		return nil, errors.New("exits: the tracker needs both chains, RootGateway, CheckpointManager and ChildGateway")
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.RetryAfter == 0 {
		cfg.RetryAfter = 30 * time.Second
	}
	if cfg.RangeLimit == 0 {
		cfg.RangeLimit = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Tracker{cfg: cfg, kept: newMainState(), tail: newMainState(), sideNext: cfg.SideStart, mainNext: cfg.MainStart, tailNext: cfg.MainStart}
	t.headers, _ = cfg.Main.(headers)
	if t.headers == nil && (cfg.Path != "" || cfg.Margin > 0) {
		return nil, errors.New("exits: the main chain's connection cannot read block headers (needed to keep its logs safe from reorganisations)")
	}
	if cfg.Path == "" {
		return t, nil
	}
	db, err := openStore(cfg.Path, followsJSON{Root: cfg.Root, Checkpoints: cfg.Checkpoints, Child: cfg.Child})
	if err != nil {
		return nil, err
	}
	t.db = db
	if err := t.restore(); err != nil {
		db.close()
		return nil, err
	}
	if len(t.ws) > 0 || t.mainNext > cfg.MainStart {
		cfg.Logger.Info("withdrawals: the bridge's logs taken back from the store", "file", cfg.Path, "withdrawals", len(t.ws),
			"checkpoints", len(t.kept.cps), "sidechainFrom", t.sideNext, "mainChainFrom", t.mainNext)
	}
	return t, nil
}

// Close closes the Tracker's store, if any; call it once Run has returned.
func (t *Tracker) Close() error {
	if t.db == nil {
		return nil
	}
	return t.db.close()
}

// Run follows the chains until ctx ends. A node that goes away is logged and retried with
// backoff (up to 30 s); what was read stays served meanwhile.
func (t *Tracker) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Task{Every: t.cfg.Poll, Backoff: 30 * time.Second, Logger: t.cfg.Logger,
		Steps: []loop.Step{{Run: t.Step, Failed: "withdrawals: reading the bridge failed; retrying"}}})
}

// Step reads the new withdrawals, checkpoints and exits and, with a wallet, sends the exits
// now due. A failed exit is logged and tried again after RetryAfter; it is not an error.
func (t *Tracker) Step(ctx context.Context) error {
	before := t.stages()
	if t.cfg.OnStep != nil {
		seen := t.depositIDs(nil)
		defer t.report(before, seen)
	}
	err := t.read(ctx)
	t.mu.Lock()
	t.lastErr = err
	first := !t.synced && err == nil
	if err == nil {
		t.synced = true
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if t.cfg.Wallet != nil {
		if err := t.exit(ctx); err != nil {
			return err
		}
	}
	t.logChanges(before, first)
	return nil
}

// report tells OnStep what changed since before and seen (also after a failed step: what
// it read is served, so it is told).
func (t *Tracker) report(before []string, seen map[string]bool) {
	t.mu.Lock()
	ch := Changes{}
	if t.tailNext > 0 {
		ch.MainBlock = t.tailNext - 1
	}
	for i, e := range t.ws {
		if v := t.view(e); i >= len(before) || before[i] != v.Stage {
			ch.Withdrawals = append(ch.Withdrawals, v)
		}
	}
	t.depositIDs(func(d Deposit) {
		if !seen[d.ID.String()] {
			ch.Deposits = append(ch.Deposits, d)
		}
	})
	t.mu.Unlock()
	if len(ch.Withdrawals) > 0 || len(ch.Deposits) > 0 || ch.MainBlock > 0 {
		t.cfg.OnStep(ch)
	}
}

// depositIDs are the ids of the deposits read so far, each also given to each if set
// (t.mu held if each is set).
func (t *Tracker) depositIDs(each func(Deposit)) map[string]bool {
	if each == nil {
		t.mu.Lock()
		defer t.mu.Unlock()
	}
	out := map[string]bool{}
	for _, m := range []*mainState{&t.kept, &t.tail} {
		for _, ds := range m.deposits {
			for _, d := range ds {
				out[d.ID.String()] = true
				if each != nil {
					each(d)
				}
			}
		}
	}
	return out
}

func (t *Tracker) read(ctx context.Context) error {
	if err := t.followSide(ctx); err != nil {
		return err
	}
	return t.followMain(ctx)
}

// followSide reads ChildGateway's WithdrawalQueued logs up to the sidechain's head.
func (t *Tracker) followSide(ctx context.Context) error {
	head, err := t.cfg.Side.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("sidechain head: %w", err)
	}
	t.mu.Lock()
	from, next := t.sideNext, uint64(len(t.ws))
	t.mu.Unlock()
	err = bridge.ScanQueued(ctx, t.cfg.Side, t.cfg.Child, logscan.Span{From: from, To: head, Limit: t.cfg.RangeLimit}, next, func(leaves []Leaf, to uint64) error {
		if t.db != nil {
			if err := t.db.putSide(leaves, to+1); err != nil {
				return fmt.Errorf("the bridge store: %w", err)
			}
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, l := range leaves {
			t.ws = append(t.ws, &entry{Leaf: l})
		}
		t.sideNext = to + 1
		return nil
	})
	if err != nil {
		t.cfg.Logger.Error("withdrawals: reading ChildGateway's withdrawals failed", "err", err)
		return fmt.Errorf("sidechain: ChildGateway's WithdrawalQueued logs: %w", err)
	}
	return nil
}

// leaves are the leaf hashes of the first n withdrawals (t.mu held, or Step's goroutine:
// only Step appends to t.ws, and leaves never change).
func (t *Tracker) leaves(n int) []common.Hash {
	out := make([]common.Hash, n)
	for i, e := range t.ws[:n] {
		out[i] = e.Hash
	}
	return out
}

// Deposits are RootGateway's deposits to `recipient`, oldest first, up to the main chain's
// head, which it returns: those the Tracker has read, and those in the blocks it has not
// read yet (since its last step) from the node, for this recipient only.
func (t *Tracker) Deposits(ctx context.Context, recipient common.Address) ([]Deposit, uint64, error) {
	t.mu.Lock()
	if !t.synced {
		err := t.notReady()
		t.mu.Unlock()
		return nil, 0, err
	}
	out := append(append([]Deposit{}, t.kept.deposits[recipient]...), t.tail.deposits[recipient]...)
	from := t.tailNext
	t.mu.Unlock()
	head, err := t.cfg.Main.BlockNumber(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("main chain head: %w", err)
	}
	q := ethereum.FilterQuery{Addresses: []common.Address{t.cfg.Root},
		Topics: [][]common.Hash{{DepositedTopic}, nil, nil, {common.BytesToHash(recipient.Bytes())}}}
	err = logscan.Scan(ctx, t.cfg.Main, q, logscan.Span{From: from, To: head, Limit: t.cfg.RangeLimit}, func(logs []types.Log, _, _ uint64) (bool, error) {
		for i := range logs {
			if d, ok := bridge.DepositOf(&logs[i]); ok && !logs[i].Removed && d.Recipient == recipient {
				out = append(out, d)
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("main chain: RootGateway's Deposited logs: %w", err)
	}
	return out, head, nil
}

// exit sends RootGateway.exit for each checkpointed withdrawal not yet exited, once, and
// follows the transactions sent. Only a node that cannot be read is an error.
func (t *Tracker) exit(ctx context.Context) error {
	if !t.settled {
		n, ok := t.cfg.Main.(nonces)
		if !ok {
			return errors.New("the main chain's connection cannot read nonces")
		}
		from := t.cfg.Wallet.Address()
		pending, err := n.PendingNonceAt(ctx, from)
		if err != nil {
			return fmt.Errorf("main chain: the exits wallet's pending nonce: %w", err)
		}
		mined, err := n.NonceAt(ctx, from, nil)
		if err != nil {
			return fmt.Errorf("main chain: the exits wallet's nonce: %w", err)
		}
		if pending > mined {
			t.cfg.Logger.Info("withdrawals: waiting for the wallet's unmined transactions before exiting (an exit sent before a restart may be among them)",
				"wallet", from, "unmined", pending-mined)
			return nil
		}
		t.settled = true
	}
	type due struct {
		e      *entry
		cp     uint64
		leaves int // the checkpoint's tree
	}
	var todo []due
	t.mu.Lock()
	for _, e := range t.ws {
		_, done := t.exitOf(e.W.Index)
		cp := t.checkpointOf(e.W.Index)
		if e.sent == (common.Hash{}) && (done || e.paid || cp == nil) {
			continue
		}
		if cp == nil { // its checkpoint was reorganised away: only its transaction is followed
			cp = &Checkpoint{Number: ^uint64(0)}
		}
		todo = append(todo, due{e: e, cp: cp.Number, leaves: cp.Leaves})
	}
	t.mu.Unlock()
	// Proofs are built outside t.mu, only for the exits about to be sent, over one tree per
	// checkpoint (Step alone appends to t.ws, and leaves never change).
	trees := map[uint64]*merkle.Tree{}
	proof := func(d due) ([]merkle.Hash, error) {
		tree := trees[d.cp]
		if tree == nil {
			tree = bridge.Tree(t.leaves(d.leaves))
			trees[d.cp] = tree
		}
		return tree.Proof(int(d.e.W.Index))
	}
	for _, d := range todo {
		if err := t.exitOne(ctx, d.e, d.cp, func() ([]merkle.Hash, error) { return proof(d) }); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tracker) exitOne(ctx context.Context, e *entry, cp uint64, proofOf func() ([]merkle.Hash, error)) error {
	index := e.W.Index
	t.mu.Lock()
	sent, retry := e.sent, e.retry
	t.mu.Unlock()
	if sent != (common.Hash{}) {
		rcpt, err := t.cfg.Wallet.Receipt(ctx, sent)
		if errors.Is(err, oracle.ErrDropped) { // sent again, after exited() is read again
			t.cfg.Logger.Warn("withdrawals: the relay's exit transaction was dropped; sending it again", "index", index, "tx", sent, "err", err)
			t.mu.Lock()
			e.sent = common.Hash{}
			t.mu.Unlock()
			return nil
		}
		if err != nil || rcpt == nil {
			return err
		}
		if rcpt.Status == types.ReceiptStatusSuccessful {
			t.cfg.Logger.Info("withdrawals: the relay's exit paid", "index", index, "checkpoint", cp, "tx", sent, "gasUsed", rcpt.GasUsed)
			t.mu.Lock()
			e.sent, e.paid = common.Hash{}, true
			for _, l := range rcpt.Logs { // until the next step reads its block
				if l.Address == t.cfg.Root && len(l.Topics) > 0 && l.Topics[0] == bridge.ExitedTopic {
					_, _ = t.apply(&t.tail, len(t.kept.cps), l)
				}
			}
			t.mu.Unlock()
			return nil
		}
		exited, err := t.exited(ctx, index)
		if err != nil {
			return err
		}
		t.mu.Lock()
		e.sent, e.paid = common.Hash{}, exited
		if !exited {
			e.retry = time.Now().Add(t.cfg.RetryAfter)
		}
		t.mu.Unlock()
		if exited {
			t.cfg.Logger.Info("withdrawals: exited by someone else first; the relay's exit reverted", "index", index, "tx", sent)
		} else {
			t.cfg.Logger.Warn("withdrawals: the relay's exit reverted; trying again later", "index", index, "tx", sent, "in", t.cfg.RetryAfter)
		}
		return nil
	}
	if time.Now().Before(retry) {
		return nil
	}
	// A self-custody user may have exited it themselves since the logs were read.
	exited, err := t.exited(ctx, index)
	if err != nil {
		return err
	}
	if !exited {
		proof, err := proofOf()
		if err != nil { // cannot be: the checkpoint's tree holds it
			return err
		}
		ps := make([][32]byte, len(proof))
		for i, p := range proof {
			ps[i] = p
		}
		tx, err := t.cfg.Wallet.Send(ctx, t.cfg.Root, rootABI.PackExit(new(big.Int).SetUint64(cp), mainWithdrawal(e.W), ps), 0)
		if err == nil {
			t.cfg.Logger.Info("withdrawals: the relay sent an exit", "index", index, "checkpoint", cp, "tx", tx.Hash())
			t.mu.Lock()
			e.sent = tx.Hash()
			t.mu.Unlock()
			return nil
		}
		// Gas is estimated first, so an exit that would revert is not sent: AlreadyExited
		// from a race with the user's own exit, or anything else.
		if exited, _ = t.exited(ctx, index); !exited {
			t.cfg.Logger.Warn("withdrawals: the relay could not send an exit; trying again later", "index", index, "err", err, "in", t.cfg.RetryAfter)
			t.mu.Lock()
			e.retry = time.Now().Add(t.cfg.RetryAfter)
			t.mu.Unlock()
			return nil
		}
	}
	t.cfg.Logger.Info("withdrawals: already exited on the main chain (by its recipient, or before a restart)", "index", index)
	t.mu.Lock()
	e.paid = true
	t.mu.Unlock()
	return nil
}

// exited reads RootGateway.exited(index).
func (t *Tracker) exited(ctx context.Context, index uint64) (bool, error) {
	out, err := t.cfg.Main.CallContract(ctx, ethereum.CallMsg{To: &t.cfg.Root, Data: rootABI.PackExited(new(big.Int).SetUint64(index))}, nil)
	if err != nil {
		return false, fmt.Errorf("RootGateway.exited(%d): %w", index, err)
	}
	return rootABI.UnpackExited(out)
}

// mainWithdrawal is a withdrawal as RootGateway.exit takes it.
func mainWithdrawal(w merkle.Withdrawal) mainchain.Withdrawal {
	return mainchain.Withdrawal{Kind: w.Kind, Index: new(big.Int).SetUint64(w.Index), Recipient: w.Recipient, Asset: w.Asset, Value: w.Value, Data: w.Data}
}

// stages is each withdrawal's stage now.
func (t *Tracker) stages() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, len(t.ws))
	for i, e := range t.ws {
		out[i] = t.view(e).Stage
	}
	return out
}

// logChanges logs the withdrawals whose stage changed in a step (after the first, which
// rebuilds them all: a summary).
func (t *Tracker) logChanges(before []string, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if first {
		exited := 0
		for _, e := range t.ws {
			if _, ok := t.exitOf(e.W.Index); ok {
				exited++
			}
		}
		t.cfg.Logger.Info("withdrawals read from the chains", "withdrawals", len(t.ws), "checkpoints", len(t.kept.cps)+len(t.tail.cps), "exited", exited,
			"relayExits", t.cfg.Wallet != nil)
		return
	}
	for i, e := range t.ws {
		v := t.view(e)
		if i < len(before) && before[i] == v.Stage {
			continue
		}
		args := []any{"index", v.Index, "kind", v.Kind, "recipient", v.Recipient, "value", v.Value}
		if v.Checkpoint != nil {
			args = append(args, "checkpoint", *v.Checkpoint)
		}
		if v.ExitTx != "" {
			args = append(args, "exitTx", v.ExitTx)
		}
		t.cfg.Logger.Info("withdrawal "+v.Stage, args...)
	}
}

// view is a withdrawal as sp_withdrawals shows it (t.mu held).
func (t *Tracker) view(e *entry) protocol.Withdrawal {
	var x *Exit
	if v, ok := t.exitOf(e.W.Index); ok {
		x = &v
	}
	var cp *uint64
	if c := t.checkpointOf(e.W.Index); c != nil {
		cp = &c.Number
	}
	return bridge.View(e.Leaf, cp, x)
}

// exitOf is withdrawal index's Exited log, if read (t.mu held).
func (t *Tracker) exitOf(index uint64) (Exit, bool) {
	if x, ok := t.kept.exits[index]; ok {
		return x.Exit, true
	}
	x, ok := t.tail.exits[index]
	return x.Exit, ok
}

// checkpointOf is the first verified checkpoint carrying withdrawal index, or nil (t.mu
// held): checkpoints cover ever more withdrawals, so the first whose tree holds it, or
// the next verified one.
func (t *Tracker) checkpointOf(index uint64) *Checkpoint {
	for _, cps := range [][]*checkpointAt{t.kept.cps, t.tail.cps} {
		for i := sort.Search(len(cps), func(i int) bool { return uint64(cps[i].Leaves) > index }); i < len(cps); i++ {
			if cps[i].OK {
				return &cps[i].Checkpoint
			}
		}
	}
	return nil
}

// Withdrawals are the withdrawals to `recipient` on the main chain, oldest first.
func (t *Tracker) Withdrawals(recipient common.Address) ([]protocol.Withdrawal, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.synced {
		return nil, t.notReady()
	}
	out := []protocol.Withdrawal{}
	for _, e := range t.ws {
		if e.W.Recipient == recipient {
			out = append(out, t.view(e))
		}
	}
	return out, nil
}

// Proof is withdrawal `index` with its proof against the first checkpoint carrying it
// whose root the relay verified: what RootGateway.exit takes.
func (t *Tracker) Proof(index uint64) (protocol.WithdrawalProof, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.synced {
		return protocol.WithdrawalProof{}, t.notReady()
	}
	if index >= uint64(len(t.ws)) {
		return protocol.WithdrawalProof{}, bridge.Unknown(index, uint64(len(t.ws)))
	}
	e := t.ws[index]
	cp := t.checkpointOf(index)
	if cp == nil {
		var failed []Checkpoint
		for _, c := range append(append([]*checkpointAt{}, t.kept.cps...), t.tail.cps...) {
			failed = append(failed, c.Checkpoint)
		}
		return protocol.WithdrawalProof{}, bridge.NotCheckpointed(index, failed)
	}
	return bridge.ProofOf(e.Leaf, cp.Number, t.leaves(cp.Leaves))
}

func (t *Tracker) notReady() error {
	if t.lastErr != nil {
		return fmt.Errorf("%w: %v", ErrNotReady, t.lastErr)
	}
	return ErrNotReady
}
