package oracle

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
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/relay/internal/loop"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// ChainReader is a node's own connection to the chain.
type ChainReader interface {
	Caller
	BlockNumber(ctx context.Context) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

// Relay is where a node learns a payment id's processor id and sends its signed reports:
// the relay's Aggregator in-process, or the relay's JSON-RPC API (RPCRelay).
type Relay interface {
	PaymentRef(ctx context.Context, pid [32]byte) (string, error)
	Submit(ctx context.Context, r protocol.OracleReport) (protocol.ReportReceipt, error)
	Proposals(ctx context.Context) ([]protocol.BatchProposal, error)
	IssuerRequests(ctx context.Context) ([]protocol.IssuerRequest, error)
}

// NodeConfig configures an oracle Node.
type NodeConfig struct {
	Key       *ecdsa.PrivateKey
	Chain     ChainReader
	ChainID   *big.Int
	Hub       common.Address
	Processor payments.Processor
	Relay     Relay
	// Start is the first block to read.
	Start uint64
	// Poll is how often the node reads new blocks and retries pending work (default 250 ms).
	Poll time.Duration
	// Patience is how long a request whose payment is not captured yet is retried before
	// the node gives up on it (default 15 minutes).
	Patience time.Duration
	// Resend is how long a report the relay accepted may stay without effect on chain before
	// the node sends it again (default 5 s): a relay that restarted has forgotten it.
	Resend time.Duration
	// WatchEvery is how often the payments this node saw minted are checked with the
	// processor for a refund or a chargeback (default 2 s), and WatchFor how long after the
	// mint (default 120 days, the card networks' dispute window).
	WatchEvery, WatchFor time.Duration
	// ProposalsEvery is how often the relay's batch proposals are read while this node has
	// signed purchases not yet settled on chain (default 500 ms).
	ProposalsEvery time.Duration
	// Parallel is how many requests the node verifies at once (default 8): each waits on
	// the chain, the relay and the processor.
	Parallel int
	// Attest, if set, makes the node attest buyer categories and issuers' domains too.
	Attest *AttestConfig
	Logger *slog.Logger
}

// Node is one oracle: it follows PurchaseRequested and CardPurchaseFailed logs on its own
// chain connection, checks each payment with its own processor, and signs only what it
// verified, once per request.
type Node struct {
	cfg  NodeConfig
	addr common.Address

	mu      sync.Mutex
	next    uint64
	tasks   map[[32]byte]*task // by digest-independent key: kind and payment id
	refused map[[32]byte]string
	signed  map[[32]byte]bool
	// captured: the purchases this node verified and signed, by request id, with their
	// event — a batch proposal is signed only if every purchase in it is here.
	captured map[[32]byte]common.Address
	batches  map[[32]byte]bool // batch digests signed
	// watched: minted card payments, checked with the processor until WatchFor passes, so
	// a refund or a chargeback after the mint reverses the tickets.
	watched   map[[32]byte]*watch
	watchedAt time.Time
	seq       uint64
	// proposalsAt: when the relay's batch proposals were last read.
	proposalsAt time.Time
	attester    *attester                  // nil unless NodeConfig.Attest
	attested    map[[2]common.Address]bool // (buyer, artist) pairs this node attested
}

type task struct {
	seq      uint64 // the order the node learnt of it (chain order)
	kind     uint8
	event    common.Address
	purchase events.CardPurchase
	since    time.Time
	report   *protocol.OracleReport // signed
	sentAt   time.Time              // when the relay last accepted the report
}

type watch struct {
	event common.Address
	ref   string // the processor's id, once known
	since time.Time
}

// NewNode returns a node; Run starts it.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Key == nil || cfg.Chain == nil || cfg.ChainID == nil || cfg.Processor == nil || cfg.Relay == nil || cfg.Hub == (common.Address{}) {
		return nil, errors.New("oracle: a node needs a key, chain, chain id, hub, processor and relay")
	}
	if cfg.Poll == 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.Patience == 0 {
		cfg.Patience = 15 * time.Minute
	}
	if cfg.Resend == 0 {
		cfg.Resend = 5 * time.Second
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.ProposalsEvery == 0 {
		cfg.ProposalsEvery = 500 * time.Millisecond
	}
	if cfg.WatchEvery == 0 {
		cfg.WatchEvery = 2 * time.Second
	}
	if cfg.WatchFor == 0 {
		cfg.WatchFor = 120 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{
		cfg: cfg, addr: crypto.PubkeyToAddress(cfg.Key.PublicKey), next: cfg.Start,
		tasks: map[[32]byte]*task{}, refused: map[[32]byte]string{}, signed: map[[32]byte]bool{},
		captured: map[[32]byte]common.Address{}, batches: map[[32]byte]bool{}, watched: map[[32]byte]*watch{},
	}
	n.cfg.Logger = cfg.Logger.With("oracle", n.addr)
	n.attested = map[[2]common.Address]bool{}
	if cfg.Attest != nil {
		n.attester = newAttester(n)
	}
	return n, nil
}

// Address is the node's signing address.
func (n *Node) Address() common.Address { return n.addr }

// Refused says whether the node refused to sign for payment `pid`, and why.
func (n *Node) Refused(pid [32]byte) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r, ok := n.refused[pid]
	return r, ok
}

// Run follows the chain until ctx ends; failures are logged and retried.
func (n *Node) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Task{Every: n.cfg.Poll, Logger: n.cfg.Logger,
		Steps: []loop.Step{{Run: n.Step, Failed: "oracle node step failed; retrying"}}})
}

// Step reads new blocks and works through pending requests once: in chain order,
// `Parallel` at a time, reading the relay's batch proposals between chunks so a rush of
// purchases is signed in the same order by every node and batched while it is fresh.
func (n *Node) Step(ctx context.Context) error {
	if err := n.follow(ctx); err != nil {
		return err
	}
	n.mu.Lock()
	keys := make([][32]byte, 0, len(n.tasks))
	for k := range n.tasks {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return n.tasks[keys[i]].seq < n.tasks[keys[j]].seq })
	n.mu.Unlock()
	var mu sync.Mutex
	var errs []error
	keep := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	chunk := 4 * n.cfg.Parallel
	for start := 0; start < len(keys) && ctx.Err() == nil; start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		var wg sync.WaitGroup
		next := make(chan [32]byte)
		for range min(n.cfg.Parallel, len(part)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range next {
					keep(n.work(ctx, k))
				}
			}()
		}
		for _, k := range part {
			next <- k
		}
		close(next)
		wg.Wait()
		keep(n.signBatches(ctx))
	}
	keep(n.signBatches(ctx))
	keep(n.checkWatched(ctx))
	keep(n.attest(ctx))
	return errors.Join(errs...)
}

// signBatches signs the relay's batch proposals made only of purchases this node verified
// and signed itself, in the order proposed.
func (n *Node) signBatches(ctx context.Context) error {
	n.mu.Lock()
	have := len(n.captured) > 0 && time.Since(n.proposalsAt) >= n.cfg.ProposalsEvery
	if have {
		n.proposalsAt = time.Now()
	}
	n.mu.Unlock()
	if !have {
		return nil
	}
	props, err := n.cfg.Relay.Proposals(ctx)
	if err != nil {
		return fmt.Errorf("read batch proposals: %w", err)
	}
	for _, bp := range props {
		if !common.IsHexAddress(bp.Event) || len(bp.Purchases) == 0 {
			continue
		}
		event := common.HexToAddress(bp.Event)
		items := make([]protocol.CardPurchase, 0, len(bp.Purchases))
		ok := true
		n.mu.Lock()
		for _, pj := range bp.Purchases {
			p, err := pj.Parse()
			// The request id commits to event, payment, buyer, tier, quantity and amount.
			if err != nil || n.captured[p.RequestID] != event || requestID(event, fromProtocol(p)) != p.RequestID {
				ok = false
				break
			}
			items = append(items, p)
		}
		n.mu.Unlock()
		if !ok {
			continue
		}
		digest, err := protocol.CaptureDigest(hubDomain(n.cfg.ChainID, n.cfg.Hub), ethcrypto.Address(event), items)
		if err != nil {
			continue
		}
		n.mu.Lock()
		done := n.batches[digest]
		n.mu.Unlock()
		if done {
			continue
		}
		sig, err := n.sign(digest)
		if err != nil {
			return err
		}
		_, err = n.cfg.Relay.Submit(ctx, protocol.OracleReport{Kind: protocol.ReportKindCaptured, Event: strings.ToLower(event.Hex()), Purchases: bp.Purchases, Signature: sig})
		if err != nil && !errors.Is(err, ErrRefused) {
			return fmt.Errorf("send a batch report: %w", err)
		}
		n.mu.Lock()
		n.batches[digest] = true
		n.mu.Unlock()
	}
	return nil
}

func (n *Node) follow(ctx context.Context) error {
	head, err := n.cfg.Chain.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("chain head: %w", err)
	}
	if head < n.next {
		return nil
	}
	to := min(head, n.next+999)
	logs, err := n.cfg.Chain.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(n.next), ToBlock: new(big.Int).SetUint64(to),
		Topics: [][]common.Hash{{topicPurchaseRequested, topicCardPurchaseFailed}},
	})
	if err != nil {
		return fmt.Errorf("read logs %d-%d: %w", n.next, to, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := range logs {
		l := &logs[i]
		if l.Removed {
			continue
		}
		switch l.Topics[0] {
		case topicPurchaseRequested:
			ev, err := ticketABI.UnpackPurchaseRequestedEvent(l)
			if err != nil {
				continue
			}
			key := doneKey(protocol.ReportCaptured, ev.PaymentId)
			if n.tasks[key] == nil && !n.signed[key] {
				n.seq++
				n.tasks[key] = &task{seq: n.seq, kind: protocol.ReportCaptured, event: l.Address, since: time.Now(), purchase: events.CardPurchase{
					RequestId: ev.RequestId, PaymentId: ev.PaymentId, Buyer: ev.Buyer, Tier: ev.Tier, Quantity: ev.Qty, Amount: ev.Amount,
				}}
			}
		case topicCardPurchaseFailed:
			ev, err := ticketABI.UnpackCardPurchaseFailedEvent(l)
			if err != nil {
				continue
			}
			key := doneKey(protocol.ReportRefunded, ev.PaymentId)
			if n.tasks[key] == nil && !n.signed[key] {
				n.seq++
				n.tasks[key] = &task{seq: n.seq, kind: protocol.ReportRefunded, event: l.Address, since: time.Now(),
					purchase: events.CardPurchase{RequestId: ev.RequestId, PaymentId: ev.PaymentId, Buyer: ev.Buyer}}
			}
		}
	}
	n.next = to + 1
	return nil
}

// errWait means the payment is not ready to be reported yet: try again later; errMinted
// that its request was fulfilled already.
var (
	errWait   = errors.New("not yet")
	errMinted = errors.New("minted already")
)

func (n *Node) work(ctx context.Context, key [32]byte) error {
	n.mu.Lock()
	t := n.tasks[key]
	n.mu.Unlock()
	if t == nil {
		return nil
	}
	pid := t.purchase.PaymentId
	if t.report == nil {
		rep, err := n.verify(ctx, t)
		switch {
		case errors.Is(err, errWait):
			if time.Since(t.since) > n.cfg.Patience {
				n.drop(key, pid, "gave up waiting: "+err.Error())
			}
			return nil
		case errors.Is(err, errMinted):
			// Minted before this node (re)started: nothing to sign, only to watch.
			n.finish(key, t, statusMinted)
			return nil
		case err != nil:
			n.drop(key, pid, err.Error())
			return nil
		}
		t.report = rep
		n.mu.Lock()
		n.signed[key] = true // never sign twice for one request
		if t.kind == protocol.ReportCaptured {
			n.captured[t.purchase.RequestId] = t.event
		}
		n.mu.Unlock()
	}
	if !t.sentAt.IsZero() {
		// The relay has the report. Keep it until the chain shows its effect, and send it
		// again if that takes too long: a relay that restarted has forgotten it.
		if time.Since(t.sentAt) < n.cfg.Resend {
			return nil
		}
		status, err := n.hubStatus(ctx, pid)
		if err != nil {
			return err
		}
		if n.settledBy(t.kind, status) {
			n.finish(key, t, status)
			return nil
		}
	}
	if _, err := n.cfg.Relay.Submit(ctx, *t.report); err != nil {
		if errors.Is(err, ErrRefused) {
			n.cfg.Logger.Info("the relay refused the report", "payment", protocol.Hex32(pid), "err", err)
			status, _ := n.hubStatus(ctx, pid)
			n.finish(key, t, status)
			return nil
		}
		return fmt.Errorf("send the report for %s: %w", protocol.Hex32(pid), err)
	}
	t.sentAt = time.Now()
	return nil
}

func (n *Node) hubStatus(ctx context.Context, pid [32]byte) (uint8, error) {
	rec, err := hubRecord(ctx, n.cfg.Chain, n.cfg.Hub, pid)
	if err != nil {
		return 0, err
	}
	return rec.Status, nil
}

// settledBy says whether a payment's status on the hub is the effect of a report of `kind`.
func (n *Node) settledBy(kind, status uint8) bool {
	if kind == protocol.ReportCaptured {
		return status != statusRequested && status != statusCapturing
	}
	return status >= statusRefunded
}

// finish ends a task; a capture that minted is watched for a refund or chargeback.
func (n *Node) finish(key [32]byte, t *task, status uint8) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.tasks, key)
	if t.kind == protocol.ReportCaptured {
		delete(n.captured, t.purchase.RequestId) // settled: no batch will carry it now
	}
	if t.kind == protocol.ReportCaptured && status == statusMinted && n.watched[t.purchase.PaymentId] == nil {
		n.watched[t.purchase.PaymentId] = &watch{event: t.event, since: time.Now()}
	}
}

// checkWatched asks the processor about each minted payment; a refunded or charged-back one
// gets this node's reversal report (PaymentsReversed), which burns its tickets once k agree.
// It polls each payment: a processor's event feed or webhooks would scale further.
func (n *Node) checkWatched(ctx context.Context) error {
	n.mu.Lock()
	if time.Since(n.watchedAt) < n.cfg.WatchEvery || len(n.watched) == 0 {
		n.mu.Unlock()
		return nil
	}
	n.watchedAt = time.Now()
	pids := make([][32]byte, 0, len(n.watched))
	for pid, w := range n.watched {
		if time.Since(w.since) > n.cfg.WatchFor {
			delete(n.watched, pid)
			continue
		}
		pids = append(pids, pid)
	}
	n.mu.Unlock()
	var errs []error
	for _, pid := range pids {
		if err := n.checkOne(ctx, pid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *Node) checkOne(ctx context.Context, pid [32]byte) error {
	n.mu.Lock()
	w := n.watched[pid]
	n.mu.Unlock()
	if w == nil {
		return nil
	}
	if w.ref == "" {
		ref, err := n.cfg.Relay.PaymentRef(ctx, pid)
		if err != nil {
			return nil // the relay may be restarting: next time
		}
		if protocol.PaymentIDOf(ref) != pid {
			n.unwatch(pid)
			return fmt.Errorf("the relay named %q for payment %s, whose hash differs", ref, protocol.Hex32(pid))
		}
		w.ref = ref
	}
	in, err := n.cfg.Processor.Retrieve(ctx, w.ref)
	if err != nil {
		return fmt.Errorf("check payment %s: %w", w.ref, err)
	}
	kind := uint8(0)
	switch {
	case in.Disputed:
		kind = protocol.ReportChargedBack
	case in.AmountRefunded > 0:
		kind = protocol.ReportRefunded
	default:
		return nil
	}
	n.unwatch(pid)
	status, err := n.hubStatus(ctx, pid)
	if err != nil {
		n.mu.Lock()
		n.watched[pid] = w // look again next time
		n.mu.Unlock()
		return err
	}
	if status != statusMinted {
		return nil // reversed already
	}
	key := doneKey(kind, pid)
	n.mu.Lock()
	already := n.signed[key] || n.tasks[key] != nil
	n.mu.Unlock()
	if already {
		return nil
	}
	digest, err := reversalDigest(n.cfg.ChainID, n.cfg.Hub, kind, pid)
	if err != nil {
		return err
	}
	sig, err := n.sign(digest)
	if err != nil {
		return err
	}
	name := protocol.ReportKindRefunded
	if kind == protocol.ReportChargedBack {
		name = protocol.ReportKindChargedBack
	}
	n.cfg.Logger.Info("oracle reports a reversal after the mint", "payment", w.ref, "kind", name)
	n.mu.Lock()
	n.signed[key] = true
	n.seq++
	n.tasks[key] = &task{seq: n.seq, kind: kind, event: w.event, since: time.Now(), purchase: events.CardPurchase{PaymentId: pid},
		report: &protocol.OracleReport{Kind: name, Event: strings.ToLower(w.event.Hex()), PaymentID: protocol.Hex32(pid), Signature: sig}}
	n.mu.Unlock()
	return nil
}

func (n *Node) unwatch(pid [32]byte) {
	n.mu.Lock()
	delete(n.watched, pid)
	n.mu.Unlock()
}

// Watching says whether the node is watching minted payment `pid` for a reversal.
func (n *Node) Watching(pid [32]byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.watched[pid] != nil
}

func (n *Node) drop(key, pid [32]byte, why string) {
	n.cfg.Logger.Warn("oracle refuses to sign", "payment", protocol.Hex32(pid), "why", why)
	n.mu.Lock()
	delete(n.tasks, key)
	n.refused[pid] = why
	n.mu.Unlock()
}

// verify checks a request against the chain and the processor and, if it holds, signs it.
func (n *Node) verify(ctx context.Context, t *task) (*protocol.OracleReport, error) {
	pid := t.purchase.PaymentId
	// The hub registers requests of genuine events only: the request must be the one the
	// hub holds for this payment id, still awaiting (or, for a refund, failed).
	rec, err := hubRecord(ctx, n.cfg.Chain, n.cfg.Hub, pid)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errWait, err)
	}
	if rec.TicketEvent != t.event {
		return nil, fmt.Errorf("payment %s is not registered to %s", protocol.Hex32(pid), t.event.Hex())
	}
	ref, err := n.cfg.Relay.PaymentRef(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errWait, err)
	}
	if protocol.PaymentIDOf(ref) != pid {
		return nil, fmt.Errorf("the relay named %q for payment %s, whose hash differs", ref, protocol.Hex32(pid))
	}
	in, err := n.cfg.Processor.Retrieve(ctx, ref)
	if err != nil {
		if errors.Is(err, payments.ErrNotFound) {
			return nil, fmt.Errorf("the processor has no payment %s", ref)
		}
		return nil, fmt.Errorf("%w: %v", errWait, err)
	}
	if t.kind == protocol.ReportRefunded {
		if rec.Status != statusFailed {
			return nil, fmt.Errorf("payment %s is not a failed purchase (status %d)", ref, rec.Status)
		}
		if in.AmountRefunded < in.Amount || in.Amount == 0 {
			return nil, fmt.Errorf("%w: payment %s is not refunded yet", errWait, ref)
		}
		digest, err := reversalDigest(n.cfg.ChainID, n.cfg.Hub, protocol.ReportRefunded, pid)
		if err != nil {
			return nil, err
		}
		sig, err := n.sign(digest)
		if err != nil {
			return nil, err
		}
		return &protocol.OracleReport{Kind: protocol.ReportKindRefunded, Event: strings.ToLower(t.event.Hex()), PaymentID: protocol.Hex32(pid), Signature: sig}, nil
	}

	if rec.Status == statusMinted {
		return nil, errMinted
	}
	if rec.Status != statusRequested || rec.Data.Cmp(low88(t.purchase.RequestId)) != 0 {
		return nil, fmt.Errorf("payment %s is not awaiting this request (status %d)", ref, rec.Status)
	}
	p := t.purchase
	if requestID(t.event, p) != p.RequestId {
		return nil, fmt.Errorf("request %s does not match its purchase", protocol.Hex32(p.RequestId))
	}
	if in.Status == payments.StatusRequiresPaymentMethod {
		return nil, fmt.Errorf("%w: payment %s is not paid yet", errWait, ref)
	}
	cents, err := protocol.CardMinorUnits(p.Amount)
	if err != nil {
		return nil, err
	}
	if !p.Tier.IsUint64() || !p.Quantity.IsUint64() {
		return nil, fmt.Errorf("request %s: tier or quantity out of range", protocol.Hex32(p.RequestId))
	}
	b := payments.Binding{
		ChainID: n.cfg.ChainID.Uint64(), Event: t.event.Hex(), Buyer: p.Buyer.Hex(),
		Tier: p.Tier.Uint64(), Quantity: p.Quantity.Uint64(), Amount: cents,
	}
	if err := b.Verify(in); err != nil {
		return nil, err
	}
	if in.Card != nil {
		n.attester.sawCard(p.Buyer, in.Card.Fingerprint, in.Livemode)
	}
	if !strings.EqualFold(in.Currency, protocol.CardCurrency) {
		return nil, fmt.Errorf("payment %s is in %s, not %s", ref, in.Currency, protocol.CardCurrency)
	}
	digest, err := captureDigest(n.cfg.ChainID, n.cfg.Hub, t.event, p)
	if err != nil {
		return nil, err
	}
	sig, err := n.sign(digest)
	if err != nil {
		return nil, err
	}
	pj := toProtocol(p).JSON()
	return &protocol.OracleReport{Kind: protocol.ReportKindCaptured, Event: strings.ToLower(t.event.Hex()), Purchase: &pj, Signature: sig}, nil
}

func (n *Node) sign(digest [32]byte) (string, error) {
	sig, err := crypto.Sign(digest[:], n.cfg.Key)
	if err != nil {
		return "", err
	}
	sig[64] += 27
	return fmt.Sprintf("0x%x", sig), nil
}
