package validator

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/internal/loop"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Relay is where a validator sends its signatures: the relay's Aggregator in-process, or
// the relay's JSON-RPC API (oracle.RPCRelay, sp_submitReport).
type Relay interface {
	Submit(ctx context.Context, r protocol.OracleReport) (protocol.ReportReceipt, error)
}

// emptyWithdrawalRoot is the root of ChildGateway's withdrawal tree with no withdrawals.
var emptyWithdrawalRoot = merkle.New(merkle.WithdrawalDepth).Root()

// Default cadence and confirmations.
const (
	DefaultEvery         = 16
	DefaultConfirmations = 6
)

// NodeConfig configures a validator Node.
type NodeConfig struct {
	Key *ecdsa.PrivateKey
	// Main and Side are the node's own connections to the main chain and the sidechain.
	Main, Side oracle.ChainReader
	// Root is RootGateway on the main chain (CheckpointManager and StakeManager are read
	// from it); Child is ChildGateway on the sidechain.
	Root, Child common.Address
	Relay       Relay
	// Every is the cadence: a checkpoint covers Every sidechain blocks (default 16), or,
	// with MaxWait, fewer: the blocks before the first one stamped MaxWait or more after
	// the range's first block.
	Every   uint64
	MaxWait time.Duration
	// Confirmations is M: a deposit is signed once its main-chain block has M
	// confirmations (the block itself counts; default 6).
	Confirmations uint64
	// Start is the first main-chain block read for deposits.
	Start uint64
	// Poll is how often both chains are read (default 250 ms); Resend how long a signature
	// may stay without effect on chain before it is sent again (default 5 s).
	Poll, Resend time.Duration
	Logger       *slog.Logger
}

// Node is one validator. It never signs two roots for one block range (the equivocation
// StakeManager slashes) and never signs a deposit before it has M confirmations.
type Node struct {
	cfg  NodeConfig
	addr common.Address
	c    Contracts

	mu sync.Mutex
	// roots: the checkpoint this node signed for each range; sentCP when it last sent it.
	roots  map[[2]uint64]mainchain.Checkpoint
	sentCP map[[2]uint64]time.Time
	// next: the next main-chain block to read deposits from; pending: confirmed deposits
	// not yet minted on the sidechain, with when each was last sent.
	next    uint64
	pending map[string]*pendingDeposit
	signed  int // reports signed (checkpoints, deposits, set updates)
	// setSent: when each set update (by digest) was last sent.
	setSent map[[32]byte]time.Time
}

type pendingDeposit struct {
	d      sidechain.Deposit
	sentAt time.Time
}

// NewNode returns a node; Run starts it.
func NewNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Key == nil || cfg.Main == nil || cfg.Side == nil || cfg.Relay == nil || cfg.Root == (common.Address{}) || cfg.Child == (common.Address{}) {
		return nil, errors.New("validator: a node needs a key, both chains, RootGateway, ChildGateway and a relay")
	}
	if cfg.Every == 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Confirmations == 0 {
		cfg.Confirmations = DefaultConfirmations
	}
	if cfg.Poll == 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Resend == 0 {
		cfg.Resend = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c, err := ReadContracts(ctx, cfg.Main, cfg.Root, cfg.Child)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, addr: crypto.PubkeyToAddress(cfg.Key.PublicKey), c: c, next: cfg.Start,
		roots: map[[2]uint64]mainchain.Checkpoint{}, sentCP: map[[2]uint64]time.Time{}, pending: map[string]*pendingDeposit{},
		setSent: map[[32]byte]time.Time{},
	}
	n.cfg.Logger = cfg.Logger.With("validator", n.addr)
	return n, nil
}

// Address is the node's signing address.
func (n *Node) Address() common.Address { return n.addr }

// Contracts are the bridge contracts the node works with.
func (n *Node) Contracts() Contracts { return n.c }

// Signed is how many reports the node signed so far.
func (n *Node) Signed() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.signed
}

// Run follows both chains until ctx ends; failures are logged and retried.
func (n *Node) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Task{Every: n.cfg.Poll, Logger: n.cfg.Logger,
		Steps: []loop.Step{{Run: n.Step, Failed: "validator step failed; retrying"}}})
}

// Step signs the next checkpoint, if its range is complete, and the deposits that reached
// M confirmations and are not minted yet, and sends what the chain has not acted on.
func (n *Node) Step(ctx context.Context) error {
	return errors.Join(n.checkpoint(ctx), n.deposits(ctx), n.validatorSet(ctx))
}

// validatorSet signs StakeManager's set, once it has been the same for M confirmations, for
// ChildGateway's copy when the two differ (a validator joined, was unbonded or slashed).
func (n *Node) validatorSet(ctx context.Context) error {
	head, err := n.cfg.Main.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("main chain head: %w", err)
	}
	if head+1 < n.cfg.Confirmations {
		return nil
	}
	want, err := mainSet(ctx, n.cfg.Main, n.c.Stake, new(big.Int).SetUint64(head+1-n.cfg.Confirmations))
	if err != nil || len(want.validators) == 0 {
		return err
	}
	now, err := mainSet(ctx, n.cfg.Main, n.c.Stake, nil)
	if err != nil || !now.same(want) {
		return err // still changing: wait until the set has been the same for M blocks
	}
	have, err := childSet(ctx, n.cfg.Side, n.c.Child)
	if err != nil || have.same(want) {
		return err
	}
	want.epoch = have.epoch
	digest, err := setDigest(ctx, n.cfg.Side, n.c.Child, want)
	if err != nil {
		return err
	}
	n.mu.Lock()
	sentAt, had := n.setSent[digest]
	n.mu.Unlock()
	if had && time.Since(sentAt) < n.cfg.Resend {
		return nil
	}
	sig, err := crypto.Sign(digest[:], n.cfg.Key)
	if err != nil {
		return err
	}
	if _, err := n.cfg.Relay.Submit(ctx, protocol.OracleReport{Kind: protocol.ReportKindValidatorSet, ValidatorSet: setJSON(want), Signature: hexutil.Encode(sig)}); err != nil && !stale(err) {
		return fmt.Errorf("send validator set for epoch %d: %w", want.epoch, err)
	}
	n.mu.Lock()
	if !had {
		n.signed++
	}
	n.setSent[digest] = time.Now()
	n.mu.Unlock()
	n.cfg.Logger.Info("validator set signed for the sidechain", "epoch", want.epoch, "validators", len(want.validators))
	return nil
}

// NextCheckpoint builds the checkpoint of the next range per the cadence, or reports false
// when the sidechain has not produced its blocks yet.
func (n *Node) NextCheckpoint(ctx context.Context) (mainchain.Checkpoint, bool, error) {
	start, err := nextStart(ctx, n.cfg.Main, n.c.Checkpoints)
	if err != nil {
		return mainchain.Checkpoint{}, false, err
	}
	head, err := n.cfg.Side.BlockNumber(ctx)
	if err != nil {
		return mainchain.Checkpoint{}, false, fmt.Errorf("sidechain head: %w", err)
	}
	if head < start || (n.cfg.MaxWait == 0 && head < start+n.cfg.Every-1) {
		return mainchain.Checkpoint{}, false, nil
	}
	last := min(head, start+n.cfg.Every-1)
	hashes := make([]merkle.Hash, 0, last-start+1)
	end := uint64(0)
	var t0 uint64
	for b := start; b <= last; b++ {
		h, err := n.cfg.Side.HeaderByNumber(ctx, new(big.Int).SetUint64(b))
		if err != nil {
			return mainchain.Checkpoint{}, false, fmt.Errorf("sidechain block %d: %w", b, err)
		}
		if b == start {
			t0 = h.Time
		} else if n.cfg.MaxWait > 0 && h.Time >= t0+uint64(n.cfg.MaxWait/time.Second) {
			end = b - 1 // the range closed before this block: it is complete
			break
		}
		hashes = append(hashes, h.Hash())
	}
	if end == 0 {
		if last < start+n.cfg.Every-1 {
			return mainchain.Checkpoint{}, false, nil // not yet Every blocks, nor MaxWait
		}
		end = last
	}
	hashes = hashes[:end-start+1]
	out, err := call(ctx, n.cfg.Side, n.c.Child, childABI.PackWithdrawalRoot(), new(big.Int).SetUint64(end))
	if err != nil {
		return mainchain.Checkpoint{}, false, fmt.Errorf("withdrawal root at sidechain block %d: %w", end, err)
	}
	wroot := emptyWithdrawalRoot // ChildGateway not deployed yet at `end`
	if len(out) > 0 {
		if wroot, err = childABI.UnpackWithdrawalRoot(out); err != nil {
			return mainchain.Checkpoint{}, false, err
		}
	}
	return mainchain.Checkpoint{
		StartBlock: new(big.Int).SetUint64(start), EndBlock: new(big.Int).SetUint64(end),
		BlockRoot: merkle.BlockRoot(start, hashes), WithdrawalRoot: wroot,
	}, true, nil
}

func (n *Node) checkpoint(ctx context.Context) error {
	cp, ok, err := n.NextCheckpoint(ctx)
	if err != nil || !ok {
		return err
	}
	rng := [2]uint64{cp.StartBlock.Uint64(), cp.EndBlock.Uint64()}
	n.mu.Lock()
	prev, had := n.roots[rng]
	sentAt := n.sentCP[rng]
	n.mu.Unlock()
	if had && (prev.BlockRoot != cp.BlockRoot || prev.WithdrawalRoot != cp.WithdrawalRoot) {
		// The sidechain changed under a range already signed: signing again would be
		// equivocation, which StakeManager slashes.
		return fmt.Errorf("sidechain blocks %d..%d changed since this validator signed them; not signing another root", rng[0], rng[1])
	}
	if had && time.Since(sentAt) < n.cfg.Resend {
		return nil
	}
	digest, err := checkpointDigest(ctx, n.cfg.Main, n.c.Stake, cp)
	if err != nil {
		return err
	}
	sig, err := crypto.Sign(digest[:], n.cfg.Key)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.roots[rng] = cp
	if !had {
		n.signed++
	}
	n.mu.Unlock()
	rc, err := n.cfg.Relay.Submit(ctx, protocol.OracleReport{Kind: protocol.ReportKindCheckpoint, Checkpoint: checkpointJSON(cp), Signature: hexutil.Encode(sig)})
	if stale(err) {
		return nil // the chain moved on while this node signed
	}
	if err != nil {
		return fmt.Errorf("send checkpoint %d..%d: %w", rng[0], rng[1], err)
	}
	n.mu.Lock()
	n.sentCP[rng] = time.Now()
	for r := range n.roots { // ranges the chain has moved past
		if r[1] < rng[0] {
			delete(n.roots, r)
			delete(n.sentCP, r)
		}
	}
	n.mu.Unlock()
	n.cfg.Logger.Debug("checkpoint signed", "start", rng[0], "end", rng[1], "signedStake", rc.SignedStake, "state", rc.State)
	return nil
}

// deposits reads RootGateway's deposits up to the last block with M confirmations, and
// signs and sends each not yet minted on the sidechain (one deposit per batch, so every
// validator signs the same thing).
func (n *Node) deposits(ctx context.Context) error {
	head, err := n.cfg.Main.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("main chain head: %w", err)
	}
	if head+1 >= n.cfg.Confirmations {
		safe := head + 1 - n.cfg.Confirmations // block safe has M confirmations (head counts as 1)
		n.mu.Lock()
		from := n.next
		n.mu.Unlock()
		if from <= safe {
			logs, err := n.cfg.Main.FilterLogs(ctx, ethereum.FilterQuery{
				FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(safe),
				Addresses: []common.Address{n.c.Root}, Topics: [][]common.Hash{{depositID}},
			})
			if err != nil {
				return fmt.Errorf("read deposits in main-chain blocks %d..%d: %w", from, safe, err)
			}
			n.mu.Lock()
			for i := range logs {
				if logs[i].Removed {
					continue
				}
				ev, err := rootABI.UnpackDepositedEvent(&logs[i])
				if err != nil {
					continue
				}
				n.pending[ev.DepositId.String()] = &pendingDeposit{d: sidechain.Deposit{DepositId: ev.DepositId, Recipient: ev.Recipient, Amount: ev.Amount}}
			}
			n.next = safe + 1
			n.mu.Unlock()
		}
	}
	n.mu.Lock()
	var todo []*pendingDeposit
	for _, p := range n.pending {
		if time.Since(p.sentAt) >= n.cfg.Resend {
			todo = append(todo, p)
		}
	}
	n.mu.Unlock()
	sort.Slice(todo, func(i, j int) bool { return todo[i].d.DepositId.Cmp(todo[j].d.DepositId) < 0 })
	var errs []error
	for _, p := range todo {
		minted, err := depositMinted(ctx, n.cfg.Side, n.c.Child, p.d.DepositId)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if minted {
			n.mu.Lock()
			delete(n.pending, p.d.DepositId.String())
			n.mu.Unlock()
			continue
		}
		batch := []sidechain.Deposit{p.d}
		digest, err := depositDigest(ctx, n.cfg.Side, n.c.Child, batch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sig, err := crypto.Sign(digest[:], n.cfg.Key)
		if err != nil {
			return err
		}
		if _, err := n.cfg.Relay.Submit(ctx, protocol.OracleReport{Kind: protocol.ReportKindDeposits, Deposits: depositsJSON(batch), Signature: hexutil.Encode(sig)}); err != nil && !stale(err) {
			errs = append(errs, fmt.Errorf("send deposit %s: %w", p.d.DepositId, err))
			continue
		}
		n.mu.Lock()
		if p.sentAt.IsZero() {
			n.signed++
		}
		p.sentAt = time.Now()
		n.mu.Unlock()
		n.cfg.Logger.Debug("deposit signed", "depositId", p.d.DepositId, "recipient", p.d.Recipient, "amount", p.d.Amount)
	}
	return errors.Join(errs...)
}

// stale says whether the relay refused a report because the chain already did it (in-process
// ErrStale, or its message over JSON-RPC).
func stale(err error) bool {
	return err != nil && (errors.Is(err, ErrStale) || strings.Contains(err.Error(), "already done on chain"))
}
