package validator

import (
	"bytes"
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
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/relay/internal/loop"
	"github.com/stagepass/stagepass/relay/internal/txfees"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Errors a validator report is refused with; each wraps oracle.ErrRefused, as the oracles'
// refusals do (the relay answers them as invalid params).
var (
	ErrNotValidator = fmt.Errorf("%w: signer is not a validator", oracle.ErrRefused)
	ErrStale        = fmt.Errorf("%w: already done on chain", oracle.ErrRefused)
	ErrBadReport    = fmt.Errorf("%w: malformed validator report", oracle.ErrRefused)
	// ErrEquivocation refuses a validator that signed two roots for one range, and all its
	// reports until StakeManager has slashed it.
	ErrEquivocation = fmt.Errorf("%w: the signer signed two roots for one range", oracle.ErrRefused)
)

// IsKind says whether an sp_submitReport kind is a validator report.
func IsKind(kind string) bool {
	return kind == protocol.ReportKindCheckpoint || kind == protocol.ReportKindDeposits || kind == protocol.ReportKindValidatorSet
}

// AggregatorConfig configures an Aggregator.
type AggregatorConfig struct {
	// Main and Side are the relay's connections to the main chain and the sidechain.
	Main, Side               oracle.Sender
	MainChainID, SideChainID *big.Int
	Root, Child              common.Address
	// Key is the hot wallet that submits checkpoints on the main chain and deposit batches
	// on the sidechain; it should be used by nothing else on either chain.
	Key *ecdsa.PrivateKey
	// Fees prices that wallet's transactions on both chains (zero: txfees' defaults, a
	// stuck transaction re-priced after 30 s).
	Fees txfees.Policy
	// Poll is how often ready reports are sent and receipts followed (default 200 ms).
	Poll time.Duration
	// OnCheckpoint, if set, is called with each checkpoint the aggregator got accepted.
	OnCheckpoint func(number uint64, cp mainchain.Checkpoint)
	// Path, if set, is the file (bbolt) the accepted signatures and equivocation evidence
	// are kept in until done on chain, so a restarted aggregator goes on where it stopped;
	// empty: in memory only.
	Path   string
	Logger *slog.Logger
}

// Aggregator collects validators' signatures per report digest and submits a report once
// its signers hold ≥ 2/3 of the power: StakeManager's stakes for checkpoints, ChildGateway's
// copy of the set for deposits. Signatures go out sorted by signer, each signer once.
type Aggregator struct {
	cfg        AggregatorConfig
	c          Contracts
	main, side *oracle.Wallet
	store      *store // nil: in memory only

	mu     sync.Mutex
	groups map[[32]byte]*group
	wake   chan struct{}
	// submitted: checkpoints this aggregator got accepted.
	submitted int
	// signedRanges: the checkpoint each validator signed per range still to be checkpointed,
	// with its signature: the first half of any equivocation evidence.
	signedRanges map[rangeOf]signedCheckpoint
	// offenders: validators caught signing two roots for one range, until slashed.
	offenders map[common.Address]*offence
	// slashed: validators this aggregator got slashed.
	slashed int
}

// rangeOf is one validator's signature slot: a signer and a block range.
type rangeOf struct {
	signer     common.Address
	start, end uint64
}

type signedCheckpoint struct {
	cp  mainchain.Checkpoint
	sig []byte
}

// offence is the evidence StakeManager.slash takes: one signer's signatures over two
// checkpoints for the same range with different roots, and the slash transaction.
type offence struct {
	a, b signedCheckpoint
	tx   common.Hash
}

type group struct {
	digest   [32]byte
	kind     string
	cp       mainchain.Checkpoint
	deposits []sidechain.Deposit
	set      validatorSet
	power    power // the set the signatures count against
	sigs     map[common.Address][]byte
	ready    bool
	tx       common.Hash
}

// NewAggregator reads the bridge's contracts and returns an aggregator; Run submits.
func NewAggregator(ctx context.Context, cfg AggregatorConfig) (*Aggregator, error) {
	if cfg.Main == nil || cfg.Side == nil || cfg.MainChainID == nil || cfg.SideChainID == nil || cfg.Key == nil ||
		cfg.Root == (common.Address{}) || cfg.Child == (common.Address{}) {
		return nil, errors.New("validator: the aggregator needs both chains and their ids, RootGateway, ChildGateway and a key")
	}
	if cfg.Poll == 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c, err := ReadContracts(ctx, cfg.Main, cfg.Root, cfg.Child)
	if err != nil {
		return nil, err
	}
	a := &Aggregator{
		cfg: cfg, c: c, groups: map[[32]byte]*group{}, wake: make(chan struct{}, 1),
		signedRanges: map[rangeOf]signedCheckpoint{}, offenders: map[common.Address]*offence{},
		main: &oracle.Wallet{Client: cfg.Main, ChainID: cfg.MainChainID, Key: cfg.Key, Fees: cfg.Fees},
		side: &oracle.Wallet{Client: cfg.Side, ChainID: cfg.SideChainID, Key: cfg.Key, Fees: cfg.Fees},
	}
	if cfg.Path != "" {
		if a.store, err = openStore(cfg.Path); err != nil {
			return nil, err
		}
		if err := a.reload(ctx); err != nil {
			a.store.db.Close()
			return nil, fmt.Errorf("reload the validator signatures from %s: %w", cfg.Path, err)
		}
	}
	return a, nil
}

// Close closes the aggregator's store (after Run has returned).
func (a *Aggregator) Close() error {
	if a.store == nil {
		return nil
	}
	return a.store.db.Close()
}

// Contracts are the bridge contracts the aggregator submits to.
func (a *Aggregator) Contracts() Contracts { return a.c }

// MainWallet is the submitter's wallet on the main chain, which the relay's exits share
// (an oracle.Wallet sends one transaction at a time, so the nonces never race).
func (a *Aggregator) MainWallet() *oracle.Wallet { return a.main }

// Submitted is how many checkpoints this aggregator got accepted.
func (a *Aggregator) Submitted() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.submitted
}

// Slashed is how many validators this aggregator got slashed for equivocation.
func (a *Aggregator) Slashed() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.slashed
}

// Submit takes one validator's signed report (kind "checkpoint" or "deposits"). It is
// refused (oracle.ErrRefused) unless its signature recovers to a validator with power and
// it is still to be done on chain: a checkpoint starting where the next one must, deposits
// not minted yet. A checkpoint whose signer signed another root for the same range is
// refused (ErrEquivocation), as is all that signer's reports until Step has slashed it.
func (a *Aggregator) Submit(ctx context.Context, r protocol.OracleReport) (protocol.ReportReceipt, error) {
	g, who, sig, err := a.check(ctx, r, true)
	if err != nil {
		return protocol.ReportReceipt{}, err
	}
	return a.add(ctx, r, g, who, sig, a.store != nil)
}

// check parses a report, checks it is still due on chain (unless !due: a report reloaded
// with its transaction sent) and recovers its signer. It returns the report's group, empty.
func (a *Aggregator) check(ctx context.Context, r protocol.OracleReport, due bool) (*group, common.Address, []byte, error) {
	sig, err := hexutil.Decode(r.Signature)
	if err != nil || len(sig) != 65 {
		return nil, common.Address{}, nil, fmt.Errorf("%w: signature must be 65 bytes of 0x hex", ErrBadReport)
	}
	g := &group{kind: r.Kind, sigs: map[common.Address][]byte{}}
	var digest [32]byte
	switch r.Kind {
	case protocol.ReportKindCheckpoint:
		if g.cp, err = parseCheckpoint(r.Checkpoint); err != nil {
			return nil, common.Address{}, nil, fmt.Errorf("%w: %v", ErrBadReport, err)
		}
		if due {
			next, err := nextStart(ctx, a.cfg.Main, a.c.Checkpoints)
			if err != nil {
				return nil, common.Address{}, nil, err
			}
			if s := g.cp.StartBlock.Uint64(); s != next {
				return nil, common.Address{}, nil, fmt.Errorf("%w: checkpoint starts at sidechain block %d, the next must start at %d", ErrStale, s, next)
			}
		}
		if digest, err = checkpointDigest(ctx, a.cfg.Main, a.c.Stake, g.cp); err != nil {
			return nil, common.Address{}, nil, err
		}
	case protocol.ReportKindDeposits:
		if g.deposits, err = parseDeposits(r.Deposits); err != nil {
			return nil, common.Address{}, nil, fmt.Errorf("%w: %v", ErrBadReport, err)
		}
		for _, d := range g.deposits {
			if !due {
				break
			}
			minted, err := depositMinted(ctx, a.cfg.Side, a.c.Child, d.DepositId)
			if err != nil {
				return nil, common.Address{}, nil, err
			}
			if minted {
				return nil, common.Address{}, nil, fmt.Errorf("%w: deposit %s is minted", ErrStale, d.DepositId)
			}
		}
		if digest, err = depositDigest(ctx, a.cfg.Side, a.c.Child, g.deposits); err != nil {
			return nil, common.Address{}, nil, err
		}
	case protocol.ReportKindValidatorSet:
		if g.set, err = parseSet(r.ValidatorSet); err != nil {
			return nil, common.Address{}, nil, fmt.Errorf("%w: %v", ErrBadReport, err)
		}
		have, err := childSet(ctx, a.cfg.Side, a.c.Child)
		if err != nil {
			return nil, common.Address{}, nil, err
		}
		if due && have.epoch != g.set.epoch {
			return nil, common.Address{}, nil, fmt.Errorf("%w: ChildGateway's set is at epoch %d, not %d", ErrStale, have.epoch, g.set.epoch)
		}
		if digest, err = setDigest(ctx, a.cfg.Side, a.c.Child, g.set); err != nil {
			return nil, common.Address{}, nil, err
		}
	default:
		return nil, common.Address{}, nil, fmt.Errorf("%w: unknown kind %q", ErrBadReport, r.Kind)
	}
	signer, err := ethcrypto.Recover(digest[:], sig)
	if err != nil {
		return nil, common.Address{}, nil, fmt.Errorf("%w: %v", ErrBadReport, err)
	}
	g.digest = digest
	return g, common.Address(signer), sig, nil
}

// add counts `who`'s signature `sig` in its report's group, and records it in the store
// if `persist` (a signature new to the group).
func (a *Aggregator) add(ctx context.Context, r protocol.OracleReport, g *group, who common.Address, sig []byte, persist bool) (protocol.ReportReceipt, error) {
	digest := g.digest
	var err error
	a.mu.Lock()
	known := a.groups[digest]
	a.mu.Unlock()
	if known == nil {
		// A new report: the power it counts against, as the chain holds it now.
		if g.kind == protocol.ReportKindCheckpoint {
			g.power, err = stakes(ctx, a.cfg.Main, a.c.Stake) // (a set update counts against the child's copy)
		} else {
			g.power, err = childPowers(ctx, a.cfg.Side, a.c.Child)
		}
		if err != nil {
			return protocol.ReportReceipt{}, err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if known = a.groups[digest]; known == nil {
		known = g
		a.groups[digest] = g
	}
	if refused := a.offenders[who] != nil; refused || known.power.of[who] == nil {
		if len(known.sigs) == 0 {
			delete(a.groups, digest)
		}
		if refused {
			return protocol.ReportReceipt{}, fmt.Errorf("%w: %s, until slashed", ErrEquivocation, who.Hex())
		}
		return protocol.ReportReceipt{}, fmt.Errorf("%w: %s", ErrNotValidator, who.Hex())
	}
	sig = append([]byte(nil), sig...)
	if sig[64] < 27 { // v as 27/28, as OpenZeppelin's ECDSA wants
		sig[64] += 27
	}
	if known.kind == protocol.ReportKindCheckpoint {
		k := rangeOf{who, known.cp.StartBlock.Uint64(), known.cp.EndBlock.Uint64()}
		prev, ok := a.signedRanges[k]
		if ok && (prev.cp.BlockRoot != known.cp.BlockRoot || prev.cp.WithdrawalRoot != known.cp.WithdrawalRoot) {
			a.equivocated(who, prev, signedCheckpoint{known.cp, sig})
			if len(known.sigs) == 0 {
				delete(a.groups, digest)
			}
			return protocol.ReportReceipt{}, fmt.Errorf("%w: %s signed blocks %d..%d twice", ErrEquivocation, who.Hex(), k.start, k.end)
		}
	}
	if _, have := known.sigs[who]; persist && !have {
		// On disk before it counts: a signature accepted is one a restart keeps.
		if err := a.store.putSignature(digest, who, r); err != nil {
			if len(known.sigs) == 0 {
				delete(a.groups, digest)
			}
			return protocol.ReportReceipt{}, fmt.Errorf("record the signature: %w", err)
		}
	}
	if known.kind == protocol.ReportKindCheckpoint {
		if k := (rangeOf{who, known.cp.StartBlock.Uint64(), known.cp.EndBlock.Uint64()}); a.signedRanges[k].sig == nil {
			a.signedRanges[k] = signedCheckpoint{known.cp, sig}
		}
	}
	known.sigs[who] = sig
	signed := known.signed()
	state := protocol.PaymentVerifying
	if !known.ready && known.power.quorum(signed) {
		known.ready = true
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	if known.ready {
		state = protocol.PaymentSubmitted
	}
	return protocol.ReportReceipt{
		Signer: strings.ToLower(who.Hex()), Signatures: len(known.sigs), State: state,
		SignedStake: signed.String(), TotalStake: known.power.total.String(),
	}, nil
}

// equivocated records `who`'s two signatures over different roots for one range as the
// evidence to slash it with, and takes its signatures out of the reports not yet sent: its
// stake is about to go, and a report counting it would revert (a.mu held).
func (a *Aggregator) equivocated(who common.Address, first, second signedCheckpoint) {
	o := &offence{a: first, b: second}
	a.offenders[who] = o
	a.cfg.Logger.Warn("validator signed two roots for one range; slashing it", "validator", who,
		"start", first.cp.StartBlock, "end", first.cp.EndBlock,
		"blockRoots", []common.Hash{first.cp.BlockRoot, second.cp.BlockRoot},
		"withdrawalRoots", []common.Hash{first.cp.WithdrawalRoot, second.cp.WithdrawalRoot})
	a.keep("record equivocation evidence", func(s *store) error { return s.putOffence(who, o.record()) })
	var drop [][]byte
	for _, g := range a.groups {
		if _, ok := g.sigs[who]; ok && g.tx == (common.Hash{}) {
			delete(g.sigs, who)
			g.ready = g.power.quorum(g.signed())
			drop = append(drop, sigKey(g.digest, who))
		}
	}
	a.keep("forget an equivocating validator's signatures", func(s *store) error { return s.dropSignatures(drop) })
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// keep applies an update to the store, if the aggregator has one. A failure is logged:
// memory goes on, and at worst a restart redoes what the chain then shows still due.
func (a *Aggregator) keep(what string, update func(*store) error) {
	if a.store == nil {
		return
	}
	if err := update(a.store); err != nil {
		a.cfg.Logger.Error("validator signatures store: "+what, "file", a.store.path, "err", err)
	}
}

// record is the offence as the store keeps it.
func (o *offence) record() offenceRecord {
	return offenceRecord{
		A:  signedJSON{Checkpoint: checkpointJSON(o.a.cp), Signature: hexutil.Encode(o.a.sig)},
		B:  signedJSON{Checkpoint: checkpointJSON(o.b.cp), Signature: hexutil.Encode(o.b.sig)},
		Tx: o.tx,
	}
}

// signed is the power of the group's signers (a.mu held).
func (g *group) signed() *big.Int {
	s := new(big.Int)
	for who := range g.sigs {
		s.Add(s, g.power.of[who])
	}
	return s
}

// signatures are the group's signatures in ascending signer order (a.mu held).
func (g *group) signatures() [][]byte {
	signers := make([]common.Address, 0, len(g.sigs))
	for s := range g.sigs {
		signers = append(signers, s)
	}
	sort.Slice(signers, func(i, j int) bool { return bytes.Compare(signers[i][:], signers[j][:]) < 0 })
	out := make([][]byte, len(signers))
	for i, s := range signers {
		out[i] = g.sigs[s]
	}
	return out
}

// Run sends ready reports and follows their transactions until ctx ends.
func (a *Aggregator) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Task{Every: a.cfg.Poll, Wake: a.wake, Logger: a.cfg.Logger,
		Steps: []loop.Step{{Run: a.Step, Failed: "validator aggregator step failed; retrying"}}})
}

// Step sends the reports that reached quorum, follows those sent, and forgets checkpoints
// the chain has moved past.
func (a *Aggregator) Step(ctx context.Context) error {
	next, err := nextStart(ctx, a.cfg.Main, a.c.Checkpoints)
	if err != nil {
		return err
	}
	a.mu.Lock()
	for k := range a.signedRanges {
		if k.start < next {
			delete(a.signedRanges, k) // checkpointed: signatures for it are refused as stale
		}
	}
	var slash []common.Address
	for who := range a.offenders {
		slash = append(slash, who)
	}
	var send, track []*group
	for d, g := range a.groups {
		switch {
		case g.kind == protocol.ReportKindCheckpoint && g.cp.StartBlock.Uint64() < next && g.tx == (common.Hash{}):
			delete(a.groups, d) // another submitter's checkpoint covered it
			a.keep("forget a covered checkpoint", func(s *store) error { return s.dropGroup(d) })
		case g.ready && g.tx == (common.Hash{}):
			send = append(send, g)
		case g.tx != (common.Hash{}):
			track = append(track, g)
		}
	}
	a.mu.Unlock()
	var errs []error
	for _, who := range slash {
		if err := a.slash(ctx, who); err != nil {
			errs = append(errs, err)
		}
	}
	for _, g := range send {
		if err := a.send(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	for _, g := range track {
		if err := a.settle(ctx, g); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Aggregator) send(ctx context.Context, g *group) error {
	a.mu.Lock()
	sigs := g.signatures()
	a.mu.Unlock()
	var tx *types.Transaction
	var err error
	if g.kind == protocol.ReportKindCheckpoint {
		tx, err = a.main.Send(ctx, a.c.Checkpoints, cpABI.PackSubmit(g.cp, sigs), 0)
	} else if g.kind == protocol.ReportKindDeposits {
		tx, err = a.side.Send(ctx, a.c.Child, childABI.PackMintDeposits(g.deposits, sigs), 0)
	} else {
		tx, err = a.side.Send(ctx, a.c.Child, childABI.PackUpdateValidators(g.set.validators, g.set.powers, sigs), 0)
	}
	if err != nil {
		// Estimation runs the call first: one that reverts (another submitter was first,
		// the set changed) is dropped and collected afresh from the validators' resends.
		a.forget(g)
		return fmt.Errorf("send the validators' %s: %w", g.kind, err)
	}
	a.mu.Lock()
	g.tx = tx.Hash()
	a.mu.Unlock()
	a.keep("record a report's transaction", func(s *store) error { return s.putSent(g.digest, tx.Hash()) })
	return nil
}

// forget drops a report, from memory and the store (unless the digest is collecting afresh).
func (a *Aggregator) forget(g *group) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur := a.groups[g.digest]; cur != g && cur != nil {
		return
	}
	delete(a.groups, g.digest)
	a.keep("forget a report", func(s *store) error { return s.dropGroup(g.digest) })
}

func (a *Aggregator) settle(ctx context.Context, g *group) error {
	client, wallet := a.cfg.Main, a.main
	if g.kind != protocol.ReportKindCheckpoint {
		client, wallet = a.cfg.Side, a.side
	}
	// The wallet re-prices the transaction while it is stuck; dropped, it is sent afresh.
	rcpt, err := wallet.Receipt(ctx, g.tx)
	if errors.Is(err, oracle.ErrDropped) {
		a.cfg.Logger.Warn("validator report transaction dropped; sending it again", "tx", g.tx, "err", err)
		a.mu.Lock()
		g.tx = common.Hash{}
		a.mu.Unlock()
		a.keep("forget a dropped transaction", func(s *store) error { return s.putSent(g.digest, common.Hash{}) })
		return nil
	}
	if err != nil || rcpt == nil {
		return err
	}
	// Done either way: a reverted report (another submitter's went first, or the set
	// changed) is collected afresh from the validators' resends if still due.
	a.forget(g)
	if rcpt.Status != types.ReceiptStatusSuccessful {
		// Run it again as a call on the block before, for the reason.
		why := "out of gas"
		if tx, _, err := client.(interface {
			TransactionByHash(context.Context, common.Hash) (*types.Transaction, bool, error)
		}).TransactionByHash(ctx, g.tx); err == nil {
			_, err := client.CallContract(ctx, ethereum.CallMsg{From: wallet.Address(), To: tx.To(), Data: tx.Data(), Gas: tx.Gas()},
				new(big.Int).Sub(rcpt.BlockNumber, big.NewInt(1)))
			if err != nil {
				why = err.Error()
			}
		}
		a.cfg.Logger.Warn("validator report reverted", "kind", g.kind, "tx", g.tx, "reason", why)
		return nil
	}
	if g.kind == protocol.ReportKindValidatorSet {
		a.cfg.Logger.Info("ChildGateway's validator set replaced", "epoch", g.set.epoch+1, "validators", len(g.set.validators), "tx", g.tx)
		return nil
	}
	if g.kind == protocol.ReportKindDeposits {
		a.cfg.Logger.Info("deposits minted on the sidechain", "deposits", len(g.deposits), "first", g.deposits[0].DepositId, "tx", g.tx)
		return nil
	}
	var number uint64
	for _, l := range rcpt.Logs {
		if ev, err := cpABI.UnpackCheckpointSubmittedEvent(l); err == nil {
			number = ev.Number.Uint64()
		}
	}
	a.mu.Lock()
	a.submitted++
	a.mu.Unlock()
	a.cfg.Logger.Info("checkpoint submitted", "number", number, "start", g.cp.StartBlock, "end", g.cp.EndBlock, "signers", len(g.sigs), "tx", g.tx)
	if a.cfg.OnCheckpoint != nil {
		a.cfg.OnCheckpoint(number, g.cp)
	}
	return nil
}

// slash sends StakeManager.slash with `who`'s evidence and follows the transaction. The
// offence is closed once the validator holds no stake: slashed by this transaction or by
// another reporter's, or gone; until then its reports are refused.
func (a *Aggregator) slash(ctx context.Context, who common.Address) error {
	a.mu.Lock()
	o := a.offenders[who]
	tx := o.tx
	a.mu.Unlock()
	if tx != (common.Hash{}) {
		rcpt, err := a.main.Receipt(ctx, tx)
		if errors.Is(err, oracle.ErrDropped) { // sent again, checking the stake first
			a.mu.Lock()
			o.tx = common.Hash{}
			rec := o.record()
			a.mu.Unlock()
			a.keep("forget a dropped slash", func(s *store) error { return s.putOffence(who, rec) })
			return nil
		}
		if err != nil || rcpt == nil {
			return err
		}
		if rcpt.Status == types.ReceiptStatusSuccessful {
			stake, reward := new(big.Int), new(big.Int)
			for _, l := range rcpt.Logs {
				if ev, err := stakeABI.UnpackSlashedEvent(l); err == nil {
					stake, reward = ev.Stake, ev.Reward
				}
			}
			a.cfg.Logger.Warn("validator slashed for signing two roots for one range", "validator", who, "stake", stake, "reporterReward", reward, "tx", tx)
			a.closeOffence(who, true)
			return nil
		}
		a.mu.Lock()
		o.tx = common.Hash{}
		a.mu.Unlock()
	}
	p, err := stakes(ctx, a.cfg.Main, a.c.Stake)
	if err != nil {
		return err
	}
	if p.of[who] == nil {
		a.cfg.Logger.Info("equivocating validator holds no stake (slashed by another reporter, or gone)", "validator", who)
		a.closeOffence(who, false)
		return nil
	}
	sent, err := a.main.Send(ctx, a.c.Stake, stakeABI.PackSlash(o.a.cp, o.a.sig, o.b.cp, o.b.sig), 0)
	if err != nil {
		return fmt.Errorf("send the slashing evidence against %s: %w", who.Hex(), err)
	}
	a.mu.Lock()
	o.tx = sent.Hash()
	rec := o.record()
	a.mu.Unlock()
	a.keep("record a slash transaction", func(s *store) error { return s.putOffence(who, rec) })
	return nil
}

// closeOffence forgets `who`'s offence once it holds no stake, and takes its stake out of the
// checkpoints still collecting, which now count against the smaller total.
func (a *Aggregator) closeOffence(who common.Address, byUs bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.offenders, who)
	a.keep("forget a closed offence", func(s *store) error { return s.dropOffence(who) })
	if byUs {
		a.slashed++
	}
	var drop [][]byte
	defer func() {
		a.keep("forget a slashed validator's signatures", func(s *store) error { return s.dropSignatures(drop) })
	}()
	for _, g := range a.groups {
		if s := g.power.of[who]; g.kind == protocol.ReportKindCheckpoint && s != nil && g.tx == (common.Hash{}) {
			drop = append(drop, sigKey(g.digest, who))
			delete(g.sigs, who)
			delete(g.power.of, who)
			g.power.total = new(big.Int).Sub(g.power.total, s)
			g.ready = g.power.quorum(g.signed())
		}
	}
}
