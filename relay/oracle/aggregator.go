package oracle

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

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/relay/internal/loop"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Sender is what the aggregator needs to send its transactions. go-ethereum's ethclient and
// the simulated chain's client satisfy it.
type Sender interface {
	Caller
	ChainID(ctx context.Context) (*big.Int, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	// For Wallet.Receipt: the key's mined nonce, and a transaction sent before a restart.
	NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (tx *types.Transaction, isPending bool, err error)
}

// Errors a report is refused with; each wraps ErrRefused.
var (
	ErrRefused        = errors.New("oracle: report refused")
	ErrNotMember      = fmt.Errorf("%w: signer is not a member of the oracle set", ErrRefused)
	ErrUnknownRequest = fmt.Errorf("%w: no such request on chain", ErrRefused)
	ErrBadReport      = fmt.Errorf("%w: malformed report", ErrRefused)
)

// AggregatorConfig configures an Aggregator.
type AggregatorConfig struct {
	Client  Sender
	ChainID *big.Int
	Hub     common.Address
	// Key is the hot wallet that submits k-of-n reports to the hub. It should be used by
	// nothing else (the forwarder's outbox manages its own wallet's nonces).
	Key *ecdsa.PrivateKey
	// Processor, if set, refunds payments whose purchase failed at mint time.
	Processor payments.Processor
	// Poll is how often submissions and receipts are handled (default 200 ms).
	Poll time.Duration
	// BatchMin is how many purchases of one event must be ready at once for the aggregator
	// to propose them to the oracles as one batch report (default 2; 1 turns batching off),
	// BatchMax the most in one batch (default 20), and BatchWait how long a proposal may
	// wait for k signatures before its purchases go out one by one (default 3 s).
	// A purchase that is ready alone waits BatchGather (default 300 ms) for others to batch
	// with before it goes out by itself.
	BatchMin, BatchMax     int
	BatchWait, BatchGather time.Duration
	// OnProgress, if set, is called on every change of a payment's progress. It must not block.
	OnProgress func(protocol.PaymentProgress)
	// Path, if set, is the aggregator's ledger (bbolt): the processor id of every payment
	// the relay created and which are still open, so a restarted relay finishes what was
	// in flight exactly once. Without it that is kept in memory only.
	Path string
	// ReconcileEvery is how often open payments are checked against the chain (default
	// 5 s); Expire is how long a paid intent may wait for its on-chain request before it is
	// refunded (default 1 hour).
	ReconcileEvery, Expire time.Duration
	Logger                 *slog.Logger
}

// Aggregator collects oracle reports and submits each once k distinct members signed it.
type Aggregator struct {
	cfg  AggregatorConfig
	from common.Address

	mu        sync.Mutex
	members   map[common.Address]bool
	threshold int
	readAt    time.Time
	refs      map[[32]byte]string                    // payment id → processor id
	groups    map[[32]byte]*group                    // report digest → signatures
	progress  map[[32]byte]*protocol.PaymentProgress // payment id → progress
	done      map[[32]byte]bool                      // payment ids whose capture (or reversal, by key) was submitted
	wallet    *Wallet
	wake      chan struct{}
	store     *store
	// register: events whose artist OracleHub.registerEvent should record (sent once each);
	// issuerReqs: issuer verifications the nodes are asked for, by issuer/domain.
	register   map[common.Address]common.Hash
	issuerReqs map[string]protocol.IssuerRequest
	issuerAt   map[string]time.Time // when each request was made, by this relay's clock
}

// group is one report (one digest) and its signatures so far.
type group struct {
	kind     uint8
	event    common.Address
	purchase events.CardPurchase // a one-purchase capture
	pid      [32]byte
	// batch: a proposed batch capture (its purchases, when proposed, whether it gave up);
	// heldBy: the live batch proposal a ready single is part of; solo: a single that went
	// out alone after its batch gave up (never proposed again).
	batch      []events.CardPurchase
	proposedAt time.Time
	dead       bool
	heldBy     *group
	solo       bool
	digest     [32]byte
	att        *attestation // kinds ReportCategory and ReportIssuer
	readyAt    time.Time
	sigs       map[common.Address][]byte
	ready      bool // k signatures, waiting for the sender
	tx         common.Hash
	settled    bool
}

// NewAggregator reads the hub's oracle set and returns an aggregator; Run submits.
func NewAggregator(ctx context.Context, cfg AggregatorConfig) (*Aggregator, error) {
	if cfg.Client == nil || cfg.ChainID == nil || cfg.Key == nil || cfg.Hub == (common.Address{}) {
		return nil, errors.New("oracle: aggregator needs a client, chain id, hub and key")
	}
	if cfg.Poll == 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.BatchMin == 0 {
		cfg.BatchMin = 2
	}
	if cfg.BatchMax == 0 {
		cfg.BatchMax = 20
	}
	if cfg.BatchWait == 0 {
		cfg.BatchWait = 3 * time.Second
	}
	if cfg.BatchGather == 0 {
		cfg.BatchGather = 300 * time.Millisecond
	}
	if cfg.ReconcileEvery == 0 {
		cfg.ReconcileEvery = 5 * time.Second
	}
	if cfg.Expire == 0 {
		cfg.Expire = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	a := &Aggregator{
		cfg: cfg, from: crypto.PubkeyToAddress(cfg.Key.PublicKey),
		refs: map[[32]byte]string{}, groups: map[[32]byte]*group{}, progress: map[[32]byte]*protocol.PaymentProgress{},
		done: map[[32]byte]bool{}, wake: make(chan struct{}, 1), wallet: &Wallet{Client: cfg.Client, ChainID: cfg.ChainID, Key: cfg.Key},
		register: map[common.Address]common.Hash{}, issuerReqs: map[string]protocol.IssuerRequest{}, issuerAt: map[string]time.Time{},
	}
	if err := a.refreshMembers(ctx); err != nil {
		return nil, err
	}
	if cfg.Path != "" {
		st, err := openStore(cfg.Path)
		if err != nil {
			return nil, err
		}
		a.store = st
	}
	return a, nil
}

// Close closes the aggregator's ledger.
func (a *Aggregator) Close() error {
	if a.store == nil {
		return nil
	}
	return a.store.db.Close()
}

func (a *Aggregator) refreshMembers(ctx context.Context) error {
	out, err := call(ctx, a.cfg.Client, a.cfg.Hub, hubABI.PackOracles())
	if err != nil {
		return fmt.Errorf("read the oracle set: %w", err)
	}
	set, err := hubABI.UnpackOracles(out)
	if err != nil {
		return fmt.Errorf("read the oracle set: %w", err)
	}
	m := make(map[common.Address]bool, len(set.Members))
	for _, x := range set.Members {
		m[x] = true
	}
	a.mu.Lock()
	a.members, a.threshold, a.readAt = m, int(set.K.Int64()), time.Now()
	a.mu.Unlock()
	return nil
}

// Threshold is k, and Members n.
func (a *Aggregator) Threshold() (k, n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.threshold, len(a.members)
}

// RememberPayment records the processor id a payment id is the hash of (sp_createPayment
// does, when it creates the intent), so nodes can look it up and progress can name it.
func (a *Aggregator) RememberPayment(ref string) ([32]byte, error) {
	pid := protocol.PaymentIDOf(ref)
	if a.store != nil {
		if err := a.store.put(pid, ref); err != nil {
			return pid, fmt.Errorf("record payment %s: %w", ref, err)
		}
	}
	a.mu.Lock()
	a.refs[pid] = ref
	a.mu.Unlock()
	return pid, nil
}

// PaymentRef is the processor id of payment id `pid`, if the relay created it.
func (a *Aggregator) PaymentRef(_ context.Context, pid [32]byte) (string, error) {
	a.mu.Lock()
	ref, ok := a.refs[pid]
	a.mu.Unlock()
	if !ok && a.store != nil {
		rec, found, err := a.store.get(pid)
		if err != nil {
			return "", err
		}
		if ok = found; ok {
			ref = rec.Ref
			a.mu.Lock()
			a.refs[pid] = ref
			a.mu.Unlock()
		}
	}
	if !ok {
		return "", fmt.Errorf("oracle: payment %s was not created through this relay", protocol.Hex32(pid))
	}
	return ref, nil
}

// Progress is a payment's progress as far as the aggregator knows it.
func (a *Aggregator) Progress(pid [32]byte) (protocol.PaymentProgress, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.progress[pid]
	if !ok {
		return protocol.PaymentProgress{}, false
	}
	return *p, true
}

// update changes a payment's progress and publishes it; a.mu is held.
func (a *Aggregator) update(pid [32]byte, f func(p *protocol.PaymentProgress)) {
	p, ok := a.progress[pid]
	if !ok {
		p = &protocol.PaymentProgress{PaymentID: protocol.Hex32(pid), ID: a.refs[pid], State: protocol.PaymentVerifying}
		a.progress[pid] = p
	}
	f(p)
	p.Threshold, p.Members, p.Time = a.threshold, len(a.members), time.Now().UnixMilli()
	if a.cfg.OnProgress != nil {
		a.cfg.OnProgress(*p)
	}
}

// Submit takes one oracle's signed report. It is refused (ErrRefused) unless its signature
// recovers to a member of the hub's current set and it is about a request the chain holds
// as it says; a member's second signature for the same report changes nothing.
func (a *Aggregator) Submit(ctx context.Context, r protocol.OracleReport) (protocol.ReportReceipt, error) {
	sig, err := hexutil.Decode(r.Signature)
	if err != nil || len(sig) != 65 {
		return protocol.ReportReceipt{}, fmt.Errorf("%w: signature must be 65 bytes of 0x hex", ErrBadReport)
	}
	attest := r.Kind == protocol.ReportKindCategory || r.Kind == protocol.ReportKindIssuer
	if !attest && !common.IsHexAddress(r.Event) {
		return protocol.ReportReceipt{}, fmt.Errorf("%w: event must be an address", ErrBadReport)
	}
	event := common.HexToAddress(r.Event)
	g := &group{event: event, sigs: map[common.Address][]byte{}}
	var digest [32]byte
	switch r.Kind {
	case protocol.ReportKindCaptured:
		if len(r.Purchases) > 0 {
			g.kind = protocol.ReportCaptured
			for _, pj := range r.Purchases {
				pp, err := pj.Parse()
				if err != nil {
					return protocol.ReportReceipt{}, fmt.Errorf("%w: %v", ErrBadReport, err)
				}
				g.batch = append(g.batch, fromProtocol(pp))
			}
			items := make([]protocol.CardPurchase, len(g.batch))
			for i, p := range g.batch {
				items[i] = toProtocol(p)
			}
			if digest, err = protocol.CaptureDigest(hubDomain(a.cfg.ChainID, a.cfg.Hub), ethcrypto.Address(event), items); err != nil {
				return protocol.ReportReceipt{}, fmt.Errorf("%w: %v", ErrBadReport, err)
			}
			break
		}
		if r.Purchase == nil {
			return protocol.ReportReceipt{}, fmt.Errorf("%w: a capture report needs its purchase", ErrBadReport)
		}
		pp, err := r.Purchase.Parse()
		if err != nil {
			return protocol.ReportReceipt{}, fmt.Errorf("%w: %v", ErrBadReport, err)
		}
		g.kind, g.purchase, g.pid = protocol.ReportCaptured, fromProtocol(pp), pp.PaymentID
		digest, err = captureDigest(a.cfg.ChainID, a.cfg.Hub, event, g.purchase)
		if err != nil {
			return protocol.ReportReceipt{}, fmt.Errorf("%w: %v", ErrBadReport, err)
		}
	case protocol.ReportKindRefunded, protocol.ReportKindChargedBack:
		pid, err := protocol.ParseHash32("paymentId", r.PaymentID)
		if err != nil {
			return protocol.ReportReceipt{}, fmt.Errorf("%w: %v", ErrBadReport, err)
		}
		g.kind, g.pid = protocol.ReportRefunded, pid
		if r.Kind == protocol.ReportKindChargedBack {
			g.kind = protocol.ReportChargedBack
		}
		if digest, err = reversalDigest(a.cfg.ChainID, a.cfg.Hub, g.kind, pid); err != nil {
			return protocol.ReportReceipt{}, fmt.Errorf("%w: %v", ErrBadReport, err)
		}
	case protocol.ReportKindCategory, protocol.ReportKindIssuer:
		at, d, err := a.parseAttestation(r)
		if err != nil {
			return protocol.ReportReceipt{}, err
		}
		g.kind, g.att, digest = at.kind, at, d
	default:
		return protocol.ReportReceipt{}, fmt.Errorf("%w: unknown kind %q", ErrBadReport, r.Kind)
	}

	// The signature first: an unverifiable report costs no chain reads.
	signer, err := ethcrypto.Recover(digest[:], sig)
	if err != nil {
		return protocol.ReportReceipt{}, fmt.Errorf("%w: %v", ErrBadReport, err)
	}
	who := common.Address(signer)
	a.mu.Lock()
	member := a.members[who]
	a.mu.Unlock()
	if !member {
		// The set may have changed since it was read (at most one re-read per 10 s, so
		// forged reports cannot make the relay hammer its node).
		a.mu.Lock()
		stale := time.Since(a.readAt) > 10*time.Second
		a.mu.Unlock()
		if stale {
			if err := a.refreshMembers(ctx); err != nil {
				return protocol.ReportReceipt{}, err
			}
			a.mu.Lock()
			member = a.members[who]
			a.mu.Unlock()
		}
		if !member {
			return protocol.ReportReceipt{}, fmt.Errorf("%w: %s", ErrNotMember, who.Hex())
		}
	}

	a.mu.Lock()
	known := a.groups[digest]
	deadBatch := known != nil && known.dead
	a.mu.Unlock()
	if g.batch != nil {
		// Only batches the aggregator proposed, while they are open.
		if known == nil || deadBatch {
			return protocol.ReportReceipt{}, fmt.Errorf("%w: no open batch proposal %s", ErrRefused, protocol.Hex32(digest))
		}
	} else if known == nil && g.att == nil {
		if err := a.checkRequest(ctx, g); err != nil {
			return protocol.ReportReceipt{}, err
		}
	}

	// Normalise v to 27/28, as the hub's ECDSA wants.
	sig = append([]byte(nil), sig...)
	if sig[64] < 27 {
		sig[64] += 27
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if known = a.groups[digest]; known == nil {
		known = g
		g.digest = digest
		a.groups[digest] = g
	}
	_, dup := known.sigs[who]
	known.sigs[who] = sig
	n := len(known.sigs)
	key := doneKey(known.kind, known.pid)
	if known.batch != nil || known.att != nil {
		key = digest
	}
	state := protocol.PaymentVerifying
	if known.batch != nil && known.dead {
		return protocol.ReportReceipt{}, fmt.Errorf("%w: batch proposal %s closed", ErrRefused, protocol.Hex32(digest))
	}
	if known.batch != nil {
		if !a.done[key] && n >= a.threshold {
			a.done[key], known.ready = true, true
			select {
			case a.wake <- struct{}{}:
			default:
			}
		}
		if a.done[key] {
			state = protocol.PaymentSubmitted
		}
		return protocol.ReportReceipt{Signer: strings.ToLower(who.Hex()), Signatures: n, Threshold: a.threshold, State: state}, nil
	}
	if !dup && !a.done[key] {
		if n >= a.threshold {
			a.done[key] = true
			known.ready, known.readyAt = true, time.Now()
			state = protocol.PaymentSubmitted
			select {
			case a.wake <- struct{}{}:
			default:
			}
		}
		if known.kind == protocol.ReportCaptured {
			a.update(known.pid, func(p *protocol.PaymentProgress) {
				p.RequestID, p.Event = protocol.Hex32(known.purchase.RequestId), strings.ToLower(event.Hex())
				p.Buyer, p.Signatures = strings.ToLower(known.purchase.Buyer.Hex()), n
				if p.State == protocol.PaymentVerifying {
					p.State = state
				}
			})
		}
	} else if a.done[key] {
		state = protocol.PaymentSubmitted
	}
	return protocol.ReportReceipt{Signer: strings.ToLower(who.Hex()), Signatures: n, Threshold: a.threshold, State: state}, nil
}

func doneKey(kind uint8, pid [32]byte) [32]byte {
	k := pid
	k[0] ^= kind + 1
	return k
}

// checkRequest refuses a report about a request the chain does not hold as the report says.
func (a *Aggregator) checkRequest(ctx context.Context, g *group) error {
	rec, err := hubRecord(ctx, a.cfg.Client, a.cfg.Hub, g.pid)
	if err != nil {
		return err
	}
	if rec.Status == statusNone {
		return fmt.Errorf("%w: payment %s", ErrUnknownRequest, protocol.Hex32(g.pid))
	}
	if rec.TicketEvent != g.event {
		return fmt.Errorf("%w: payment %s belongs to event %s", ErrUnknownRequest, protocol.Hex32(g.pid), rec.TicketEvent.Hex())
	}
	if g.kind != protocol.ReportCaptured {
		if rec.Status >= statusRefunded || rec.Status == statusCapturing {
			return fmt.Errorf("%w: payment %s is already reversed", ErrRefused, protocol.Hex32(g.pid))
		}
		return nil
	}
	p := g.purchase
	if p.Tier == nil || p.Quantity == nil || p.Amount == nil || requestID(g.event, p) != p.RequestId {
		return fmt.Errorf("%w: the purchase does not match its request id", ErrUnknownRequest)
	}
	if rec.Status != statusRequested {
		return fmt.Errorf("%w: payment %s is no longer awaiting the oracles (status %d)", ErrRefused, protocol.Hex32(g.pid), rec.Status)
	}
	if rec.Data.Cmp(low88(p.RequestId)) != 0 {
		return fmt.Errorf("%w: payment %s was requested by another request", ErrUnknownRequest, protocol.Hex32(g.pid))
	}
	return nil
}

// Run submits ready reports and follows their transactions until ctx ends.
func (a *Aggregator) Run(ctx context.Context) error {
	var reconciled time.Time
	reconcile := func(ctx context.Context) error {
		if time.Since(reconciled) < a.cfg.ReconcileEvery {
			return nil
		}
		reconciled = time.Now()
		return a.reconcile(ctx)
	}
	return loop.Run(ctx, loop.Task{Every: a.cfg.Poll, Wake: a.wake, Logger: a.cfg.Logger, Steps: []loop.Step{
		{Run: reconcile, Failed: "reconciling open card payments failed; retrying"},
		{Run: a.step, Failed: "oracle aggregator step failed; retrying"},
		{Run: a.registerEvents, Failed: "registering events with the hub failed; retrying"},
	}})
}

func (a *Aggregator) step(ctx context.Context) error {
	a.mu.Lock()
	now := time.Now()
	// Batch proposals that waited too long give up: their purchases go out one by one.
	for _, g := range a.groups {
		if g.batch != nil && !g.dead && !g.ready && now.Sub(g.proposedAt) > a.cfg.BatchWait {
			g.dead = true
			for _, s := range a.groups {
				if s.heldBy == g {
					s.heldBy, s.solo = nil, true
				}
			}
		}
	}
	// Ready singles of one event, when there are enough, become a batch proposal.
	if a.cfg.BatchMin > 1 {
		byEvent := map[common.Address][]*group{}
		for _, g := range a.groups {
			if g.kind == protocol.ReportCaptured && g.batch == nil && g.ready && g.tx == (common.Hash{}) && g.heldBy == nil && !g.solo {
				byEvent[g.event] = append(byEvent[g.event], g)
			}
		}
		for ev, pool := range byEvent {
			// Under a rush, wait for a full batch, or until the oldest has waited BatchGather.
			oldest := now
			for _, s := range pool {
				if s.readyAt.Before(oldest) {
					oldest = s.readyAt
				}
			}
			if len(pool) < a.cfg.BatchMax && now.Sub(oldest) < a.cfg.BatchGather {
				continue
			}
			for len(pool) >= a.cfg.BatchMin {
				b := a.proposeBatch(ev, pool, now)
				if b == nil {
					break
				}
				rest := pool[:0]
				for _, s := range pool {
					if s.heldBy == nil {
						rest = append(rest, s)
					}
				}
				pool = rest
			}
		}
	}
	var send, track []*group
	for _, g := range a.groups {
		switch {
		case g.ready && g.tx == (common.Hash{}) && g.heldBy == nil:
			if a.cfg.BatchMin > 1 && g.kind == protocol.ReportCaptured && g.batch == nil && !g.solo && now.Sub(g.readyAt) < a.cfg.BatchGather {
				continue // a moment for others to batch with
			}
			send = append(send, g)
		case g.tx != (common.Hash{}) && !g.settled:
			track = append(track, g)
		}
	}
	a.mu.Unlock()
	var errs []error
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

// proposeBatch proposes up to BatchMax of the ready singles `pool` of one event as one
// batch report, or returns nil when no k members signed BatchMin of them alike (a.mu held).
func (a *Aggregator) proposeBatch(ev common.Address, pool []*group, now time.Time) *group {
	// A node signs a batch only of purchases it signed itself: keep the singles that the k
	// members who signed the most of them all signed.
	singles := commonSigners(pool, a.threshold)
	if len(singles) < a.cfg.BatchMin {
		return nil
	}
	sort.Slice(singles, func(i, j int) bool {
		return bytes.Compare(singles[i].purchase.RequestId[:], singles[j].purchase.RequestId[:]) < 0
	})
	singles = singles[:min(len(singles), a.cfg.BatchMax)]
	b := &group{kind: protocol.ReportCaptured, event: ev, sigs: map[common.Address][]byte{}, proposedAt: now}
	items := make([]protocol.CardPurchase, len(singles))
	for i, s := range singles {
		b.batch = append(b.batch, s.purchase)
		items[i] = toProtocol(s.purchase)
	}
	d, err := protocol.CaptureDigest(hubDomain(a.cfg.ChainID, a.cfg.Hub), ethcrypto.Address(ev), items)
	if err != nil || a.groups[d] != nil {
		return nil
	}
	b.digest = d
	a.groups[d] = b
	for _, s := range singles {
		s.heldBy = b
	}
	return b
}

// commonSigners picks the k members who signed the most of `singles` and returns the
// singles all k of them signed (a greedy choice; a.mu is held).
func commonSigners(singles []*group, k int) []*group {
	count := map[common.Address]int{}
	for _, g := range singles {
		for s := range g.sigs {
			count[s]++
		}
	}
	members := make([]common.Address, 0, len(count))
	for m := range count {
		members = append(members, m)
	}
	sort.Slice(members, func(i, j int) bool {
		if count[members[i]] != count[members[j]] {
			return count[members[i]] > count[members[j]]
		}
		return bytes.Compare(members[i][:], members[j][:]) < 0
	})
	if len(members) < k {
		return nil
	}
	var out []*group
	for _, g := range singles {
		all := true
		for _, m := range members[:k] {
			if _, ok := g.sigs[m]; !ok {
				all = false
				break
			}
		}
		if all {
			out = append(out, g)
		}
	}
	return out
}

// signatures are the first k of a group's, in ascending signer order.
func (a *Aggregator) signatures(g *group) [][]byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	signers := make([]common.Address, 0, len(g.sigs))
	for s := range g.sigs {
		signers = append(signers, s)
	}
	sort.Slice(signers, func(i, j int) bool { return bytes.Compare(signers[i][:], signers[j][:]) < 0 })
	signers = signers[:min(len(signers), a.threshold)]
	out := make([][]byte, len(signers))
	for i, s := range signers {
		out[i] = g.sigs[s]
	}
	return out
}

func (a *Aggregator) send(ctx context.Context, g *group) error {
	var data []byte
	gas := uint64(1_000_000)
	sigs := a.signatures(g)
	switch {
	case g.att != nil:
		data = g.att.call(sigs)
		gas = 300_000
	case g.kind == protocol.ReportCaptured:
		data = hubABI.PackFulfil(g.event, g.items(), sigs)
		for _, p := range g.items() {
			gas += 150_000 * min(p.Quantity.Uint64(), 100)
		}
	default:
		data = hubABI.PackReverse(g.kind, [][32]byte{g.pid}, sigs)
	}
	tx, err := a.sendTx(ctx, data, gas)
	if err != nil {
		return fmt.Errorf("send the oracles' report: %w", err)
	}
	a.mu.Lock()
	g.tx = tx.Hash()
	if g.batch != nil {
		// The batch carries its singles: they are never sent on their own.
		for _, s := range a.groups {
			if s.heldBy == g {
				s.tx, s.settled = tx.Hash(), true
			}
		}
	}
	if g.kind == protocol.ReportCaptured {
		for _, it := range g.items() {
			a.update(it.PaymentId, func(p *protocol.PaymentProgress) {
				p.State, p.TxHash = protocol.PaymentSubmitted, tx.Hash().Hex()
				if g.batch != nil {
					p.Signatures = len(sigs)
				}
			})
		}
	}
	a.mu.Unlock()
	a.cfg.Logger.Info("oracle report submitted", "kind", g.kind, "purchases", len(g.items()), "tx", tx.Hash())
	return nil
}

// sendTx signs and sends one transaction to the hub from the aggregator's wallet. Only the
// Run loop sends, so the nonce needs no lock.
func (a *Aggregator) sendTx(ctx context.Context, data []byte, gas uint64) (*types.Transaction, error) {
	return a.wallet.Send(ctx, a.cfg.Hub, data, gas)
}

func (a *Aggregator) settle(ctx context.Context, g *group) error {
	// The wallet re-prices the transaction while it is stuck; dropped, it is sent afresh.
	rcpt, err := a.wallet.Receipt(ctx, g.tx)
	if errors.Is(err, ErrDropped) {
		a.cfg.Logger.Warn("oracle report transaction dropped; sending it again", "tx", g.tx, "err", err)
		a.mu.Lock()
		g.tx = common.Hash{}
		a.mu.Unlock()
		return nil
	}
	if err != nil || rcpt == nil {
		return err
	}
	if g.att != nil {
		a.mu.Lock()
		g.settled = true
		if g.kind == protocol.ReportIssuer {
			delete(a.issuerReqs, issuerKey(g.att.issuer, g.att.domain))
		}
		a.mu.Unlock()
		a.cfg.Logger.Info("attestation recorded", "kind", g.kind, "tx", g.tx, "ok", rcpt.Status == types.ReceiptStatusSuccessful)
		return nil
	}
	if g.kind != protocol.ReportCaptured {
		pay, err := hubPayment(ctx, a.cfg.Client, a.cfg.Hub, g.pid)
		if err != nil {
			return err
		}
		a.mu.Lock()
		g.settled = true
		if pay.Status == statusRefunded || pay.Status == statusChargedBack {
			a.update(g.pid, func(p *protocol.PaymentProgress) { p.State, p.TxHash = protocol.PaymentRefunded, g.tx.Hex() })
		}
		a.mu.Unlock()
		return nil
	}
	var refunds []string
	outcomes := make([]events.PaymentOutput, len(g.items()))
	for i, it := range g.items() {
		if outcomes[i], err = hubPayment(ctx, a.cfg.Client, a.cfg.Hub, it.PaymentId); err != nil {
			return err
		}
	}
	a.mu.Lock()
	g.settled = true
	for i, it := range g.items() {
		pay := outcomes[i]
		switch pay.Status {
		case statusMinted:
			a.update(it.PaymentId, func(p *protocol.PaymentProgress) {
				p.State, p.FirstTokenID, p.Quantity = protocol.PaymentMinted, pay.FirstTokenId.String(), pay.Quantity.Uint64()
			})
		case statusFailed:
			a.update(it.PaymentId, func(p *protocol.PaymentProgress) {
				p.State, p.Reason = protocol.PaymentFailed, "a rule refused the mint; the payment is refunded"
			})
			if ref := a.refs[it.PaymentId]; ref != "" {
				refunds = append(refunds, ref)
			}
		case statusRefunded, statusChargedBack:
		default:
			a.update(it.PaymentId, func(p *protocol.PaymentProgress) {
				p.State, p.Reason = protocol.PaymentFailed, fmt.Sprintf("the report's transaction ended with payment status %d (receipt status %d)", pay.Status, rcpt.Status)
			})
		}
	}
	a.mu.Unlock()
	if a.cfg.Processor == nil {
		return nil
	}
	for _, ref := range refunds {
		if err := a.refund(ctx, ref); err != nil {
			// Settle again next step: the refund is retried until the processor takes it.
			a.mu.Lock()
			g.settled = false
			a.mu.Unlock()
			return err
		}
	}
	return nil
}

// items are the purchases a capture group reports.
func (g *group) items() []events.CardPurchase {
	if g.batch != nil {
		return g.batch
	}
	return []events.CardPurchase{g.purchase}
}

// Proposals are the open batch proposals, for oracle nodes to sign (sp_batchProposals).
func (a *Aggregator) Proposals(context.Context) ([]protocol.BatchProposal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []protocol.BatchProposal{}
	for d, g := range a.groups {
		if g.batch == nil || g.dead || g.ready {
			continue
		}
		bp := protocol.BatchProposal{Event: strings.ToLower(g.event.Hex()), Digest: protocol.Hex32(d)}
		for _, p := range g.batch {
			bp.Purchases = append(bp.Purchases, toProtocol(p).JSON())
		}
		out = append(out, bp)
	}
	return out, nil
}
