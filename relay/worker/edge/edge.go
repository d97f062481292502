// Package edge is the relay's forwarding API as the Cloudflare Workers build runs it: the
// same JSON-RPC methods (served by relay/rpcserver) and the same request rules
// (relay/forward/rules) as the native relay, but with no memory of its own between
// requests. The outbox and the hot wallet's nonce live behind Store (a Durable Object in
// the worker), status pushes go out through Publisher (the websocket fan-out Durable
// Object), and the sender runs in bounded passes (Pump, Step) when the outbox's alarm or a
// cron trigger calls for it, instead of in a long-lived goroutine.
//
// It has no syscall/js: relay/worker's js/wasm main wires it to the Workers bindings.
package edge

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/relay/forward/rules"
	"github.com/stagepass/stagepass/relay/internal/txfees"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Chain is what the edge relay needs from a node; go-ethereum's *ethclient.Client has it.
type Chain interface {
	rules.Caller
	ChainID(ctx context.Context) (*big.Int, error)
	BlockNumber(ctx context.Context) (uint64, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	NonceAt(ctx context.Context, account common.Address, blockNumber *big.Int) (uint64, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
}

// The states of a request, as in package forward.
const (
	Accepted = "accepted"
	Sent     = "sent"
	Mined    = "mined"
	Failed   = "failed"
)

// Record is one request in the outbox. Times are unix milliseconds.
type Record struct {
	ID         common.Hash    `json:"id"`
	From       common.Address `json:"from"`
	To         common.Address `json:"to"`
	Gas        uint64         `json:"gas"`
	Nonce      uint64         `json:"nonce"`
	Deadline   uint64         `json:"deadline"`
	Data       hexutil.Bytes  `json:"data"`
	Signature  hexutil.Bytes  `json:"signature"`
	State      string         `json:"state"`
	Reason     string         `json:"reason,omitempty"`
	AcceptedAt int64          `json:"acceptedAt"`
	UpdatedAt  int64          `json:"updatedAt"`
	// TxNonce is the hot-wallet nonce reserved for the request; Attempts the transactions
	// signed with it, newest last (a stuck one is replaced with higher fees), each stored
	// before it is broadcast. TxHash is the newest attempt's while the request is sent, the
	// mined one's once it is settled.
	TxNonce  *uint64   `json:"txNonce,omitempty"`
	Attempts []Attempt `json:"attempts,omitempty"`
	TxHash   string    `json:"txHash,omitempty"`
	Block    uint64    `json:"block,omitempty"`
}

// Attempt is a signed transaction carrying a request, and when it was stored (unix ms).
type Attempt struct {
	Hash common.Hash   `json:"hash"`
	Raw  hexutil.Bytes `json:"raw"`
	At   int64         `json:"at"`
}

// last is the newest attempt, or nil before the first.
func (r *Record) last() *Attempt {
	if len(r.Attempts) == 0 {
		return nil
	}
	return &r.Attempts[len(r.Attempts)-1]
}

// Final reports whether the record's state will not change again.
func (r *Record) Final() bool { return r.State == Mined || r.State == Failed }

// Status renders the record as the protocol's RequestStatus.
func (r *Record) Status() protocol.RequestStatus {
	return protocol.RequestStatus{
		ID: r.ID.Hex(), State: r.State, From: strings.ToLower(r.From.Hex()), Nonce: r.Nonce,
		TxHash: r.TxHash, Block: r.Block, Reason: r.Reason, Time: r.UpdatedAt,
	}
}

func (r *Record) execution() rules.Execution {
	return rules.Execution{ID: r.ID, From: r.From, To: r.To, Gas: r.Gas, Deadline: r.Deadline, Data: r.Data, Signature: r.Signature}
}

// Store is the durable outbox. Every method is atomic; the worker's is a Durable Object,
// which runs one call at a time.
type Store interface {
	// Accept stores a new request unless one with its ID exists (then it returns that one
	// and false). It refuses, with *rules.NonceError or rules.ErrTooManyPending, a request
	// whose nonce is not max(chainNonce, the signer's highest pending nonce + 1) or whose
	// signer already has maxPending requests waiting.
	Accept(ctx context.Context, rec *Record, chainNonce uint64, maxPending int) (*Record, bool, error)
	// Get returns a request, or rules.ErrUnknownRequest.
	Get(ctx context.Context, id common.Hash) (*Record, error)
	// Pending lists the forwarder nonces of a signer's unfinished requests.
	Pending(ctx context.Context, from common.Address) ([]uint64, error)
	// Queue lists the unfinished requests in acceptance order.
	Queue(ctx context.Context) ([]*Record, error)
	// Reserve gives the request a hot-wallet nonce (once; later calls return the same),
	// at least chainNonce and above every nonce reserved before.
	Reserve(ctx context.Context, id common.Hash, chainNonce uint64) (*Record, error)
	// Attach stores the request's signed transaction and makes it sent, unless it has one
	// already (then the stored one is returned and false).
	Attach(ctx context.Context, id common.Hash, a Attempt, at int64) (*Record, bool, error)
	// Replace appends a replacement transaction (the same hot-wallet nonce, higher fees)
	// to a sent request whose newest attempt is still prev; otherwise (settled, or another
	// pass replaced it first) it returns the stored record and false.
	Replace(ctx context.Context, id common.Hash, txNonce uint64, prev common.Hash, a Attempt, at int64) (*Record, bool, error)
	// Settle makes an unfinished request mined or failed.
	Settle(ctx context.Context, id common.Hash, state, txHash string, block uint64, reason string, at int64) (*Record, bool, error)
}

// Publisher pushes a message to every websocket subscribed to key, and keeps it as the
// key's latest for subscribers still to come.
type Publisher interface {
	Publish(ctx context.Context, key string, data any) error
}

// Config configures a Relay.
type Config struct {
	Chain     Chain
	ChainID   *big.Int
	Forwarder common.Address
	Factory   common.Address
	Gateway   common.Address    // the sidechain's ChildGateway (zero: none), as forward.Config
	Key       *ecdsa.PrivateKey // the hot wallet that pays the gas
	Store     Store
	Fanout    Publisher
	// The chain index (index.go): its database (nil: the read calls answer ErrNoIndex),
	// the first block to read (the factory's deployment), and the push of new activities.
	DB         DB
	StartBlock uint64
	Activities ActivityPublisher
	// Bridge, with Gateway and DB, is the main chain's side of the bridge: the withdrawal
	// calls and sp_chainInfo's bridge fields (bridge.go); nil: none.
	Bridge *Bridge
	// Limits as in forward.Limits [8 pending, 1 minute, 2,000,000 gas, 16 KiB].
	MaxPending     int
	DeadlineMargin time.Duration
	MaxGas         uint64
	MaxData        int
	// BaseFeeMultiplier sets the fee cap to base fee × this + tip [2].
	BaseFeeMultiplier int64
	// MaxFeeCap is the most the hot wallet pays per gas (nil: no ceiling); StuckAfter how
	// long a sent transaction may go unmined before it is replaced with higher fees
	// [30 s], as forward.Fees (relay/internal/txfees).
	MaxFeeCap  *big.Int
	StuckAfter time.Duration
	Now        func() time.Time
}

// Relay is the edge relay's request handling; build one per Workers request.
type Relay struct {
	cfg    Config
	hot    common.Address
	domain protocol.Domain
	signer types.Signer
	fees   txfees.Policy
}

// New checks cfg and fills in defaults.
func New(cfg Config) (*Relay, error) {
	switch {
	case cfg.Chain == nil || cfg.Store == nil || cfg.Fanout == nil:
		return nil, errors.New("edge: config needs Chain, Store and Fanout")
	case cfg.ChainID == nil || cfg.Key == nil:
		return nil, errors.New("edge: config needs ChainID and the hot wallet Key")
	case cfg.Forwarder == (common.Address{}) || cfg.Factory == (common.Address{}):
		return nil, errors.New("edge: config needs the Forwarder and Factory addresses")
	case cfg.Bridge != nil && (cfg.Gateway == (common.Address{}) || cfg.Bridge.Main == nil || cfg.Bridge.Root == (common.Address{})):
		return nil, errors.New("edge: the bridge needs ChildGateway (Gateway), the main chain and RootGateway")
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 8
	}
	if cfg.DeadlineMargin <= 0 {
		cfg.DeadlineMargin = time.Minute
	}
	if cfg.MaxGas == 0 {
		cfg.MaxGas = 2_000_000
	}
	if cfg.MaxData <= 0 {
		cfg.MaxData = 16 << 10
	}
	if cfg.BaseFeeMultiplier <= 0 {
		cfg.BaseFeeMultiplier = 2
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	fp := txfees.Policy{BaseFeeMultiplier: cfg.BaseFeeMultiplier, MaxFeeCap: cfg.MaxFeeCap, StuckAfter: cfg.StuckAfter}
	fp.Defaults()
	return &Relay{
		cfg:    cfg,
		fees:   fp,
		hot:    crypto.PubkeyToAddress(cfg.Key.PublicKey),
		domain: protocol.ForwarderDomain(cfg.ChainID.Uint64(), ethcrypto.Address(cfg.Forwarder)),
		signer: types.LatestSignerForChainID(cfg.ChainID),
	}, nil
}

// Address is the hot wallet's address.
func (r *Relay) Address() common.Address { return r.hot }

// RequestKey is the fan-out key of a request's status pushes (the native relay's too).
func RequestKey(id common.Hash) string { return "request:" + strings.ToLower(id.Hex()) }

// Health is /healthz's answer.
type Health struct {
	ChainID   uint64 `json:"chainId"`
	Block     uint64 `json:"block"`
	Forwarder string `json:"forwarder"`
	Factory   string `json:"factory"`
	Relayer   string `json:"relayer"`
	Queued    int    `json:"queued"`
}

// checkChain refuses a node on another chain than the configured one: the hot wallet's
// transactions would be signed for the wrong chain.
func (r *Relay) checkChain(ctx context.Context) error {
	id, err := r.cfg.Chain.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("edge: read chain id: %w", err)
	}
	if id.Cmp(r.cfg.ChainID) != 0 {
		return fmt.Errorf("edge: the node is on chain %s, CHAIN_ID is %s", id, r.cfg.ChainID)
	}
	return nil
}

// Health checks the node's chain and reads the head block and the outbox's length.
func (r *Relay) Health(ctx context.Context) (Health, error) {
	if err := r.checkChain(ctx); err != nil {
		return Health{}, err
	}
	head, err := r.cfg.Chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return Health{}, fmt.Errorf("read head: %w", err)
	}
	q, err := r.cfg.Store.Queue(ctx)
	if err != nil {
		return Health{}, fmt.Errorf("read outbox: %w", err)
	}
	return Health{
		ChainID: r.cfg.ChainID.Uint64(), Block: head.Number.Uint64(),
		Forwarder: strings.ToLower(r.cfg.Forwarder.Hex()), Factory: strings.ToLower(r.cfg.Factory.Hex()),
		Relayer: strings.ToLower(r.hot.Hex()), Queued: len(q),
	}, nil
}

// Register adds the edge relay's methods to s: sp_chainInfo, sp_forwarderNonce,
// sp_sendForward and sp_requestStatus, the index's read calls (index.go) and the bridge's
// (bridge.go).
// Subscriptions are the fan-out Durable Object's.
func (r *Relay) Register(s *rpcserver.Server) {
	r.registerIndex(s)
	r.registerBridge(s)
	s.Register(protocol.MethodChainInfo, func(ctx context.Context, _ *rpcserver.Request) (any, error) {
		head, err := r.cfg.Chain.HeaderByNumber(ctx, nil)
		if err != nil {
			return nil, err
		}
		info := protocol.ChainInfo{
			ChainID: r.cfg.ChainID.Uint64(), Block: head.Number.Uint64(),
			Forwarder: strings.ToLower(r.cfg.Forwarder.Hex()), Factory: strings.ToLower(r.cfg.Factory.Hex()),
		}
		if err := r.bridgeInfo(ctx, &info); err != nil {
			return nil, err
		}
		return info, nil
	})
	s.Register(protocol.MethodForwarderNonce, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var account common.Address
		if err := rpcserver.Positional(req, rpcserver.AddressParam(&account, "account")); err != nil {
			return nil, err
		}
		n, err := r.NextNonce(ctx, account)
		if err != nil {
			return nil, err
		}
		return strconv.FormatUint(n, 10), nil
	})
	s.Register(protocol.MethodSendForward, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var sub protocol.ForwardSubmission
		if err := rpcserver.Positional(req, &sub); err != nil {
			return nil, err
		}
		fr, err := sub.Request.Parse()
		if err != nil {
			return nil, rpcserver.InvalidParams("%v", err)
		}
		sig, err := hexutil.Decode(sub.Signature)
		if err != nil || len(sig) != 65 {
			return nil, rpcserver.InvalidParams("signature must be 65 bytes of 0x hex")
		}
		rec, err := r.Submit(ctx, fr, sig)
		if err != nil {
			return nil, rules.RPCError(err)
		}
		return rec.Status(), nil
	})
	s.Register(protocol.MethodRequestStatus, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var id common.Hash
		if err := rpcserver.Positional(req, &id); err != nil {
			return nil, err
		}
		rec, err := r.cfg.Store.Get(ctx, id)
		if err != nil {
			return nil, rules.RPCError(err)
		}
		if rec.State == Sent {
			// A look at a sent request also settles it if its receipt is there: the worker
			// has no sender of its own between passes.
			if done, err := r.track(ctx, rec, nil); err == nil && done {
				if now, err := r.cfg.Store.Get(ctx, id); err == nil {
					rec = now
				}
			}
		}
		return rec.Status(), nil
	})
}

// NextNonce is the forwarder nonce from's next request must carry.
func (r *Relay) NextNonce(ctx context.Context, from common.Address) (uint64, error) {
	pending, err := r.cfg.Store.Pending(ctx, from)
	if err != nil {
		return 0, err
	}
	want, err := rules.ForwarderNonce(ctx, r.cfg.Chain, r.cfg.Forwarder, from, nil)
	if err != nil {
		return 0, err
	}
	return nextNonce(want, pending), nil
}

func nextNonce(chain uint64, pending []uint64) uint64 {
	for _, n := range pending {
		if n+1 > chain {
			chain = n + 1
		}
	}
	return chain
}

func (r *Relay) targets() rules.Targets {
	return rules.Targets{Factory: r.cfg.Factory, Gateway: r.cfg.Gateway}
}

// Submit checks a signed request as the native relay does (rules.Check, deadline, target,
// nonce, a dry run when the signer has nothing pending) and stores it in the outbox. The
// same signed request again returns the stored record: it is never sent twice.
func (r *Relay) Submit(ctx context.Context, req *protocol.ForwardRequest, sig []byte) (*Record, error) {
	id, sig, err := rules.Check(req, sig, r.domain, r.targets(), r.cfg.MaxData, r.cfg.MaxGas)
	if err != nil {
		return nil, err
	}
	if rec, err := r.cfg.Store.Get(ctx, id); err == nil {
		return rec, nil
	} else if !errors.Is(err, rules.ErrUnknownRequest) {
		return nil, err
	}
	now := r.cfg.Now()
	if err := rules.CheckDeadline(req.Deadline, now, r.cfg.DeadlineMargin); err != nil {
		return nil, err
	}
	to, from := common.Address(req.To), common.Address(req.From)
	if !r.targets().Fixed(to) {
		ok, err := rules.IsEvent(ctx, r.cfg.Chain, r.cfg.Factory, to)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s is neither the factory, the gateway nor one of the factory's events", rules.ErrTarget, to)
		}
	}
	pending, err := r.cfg.Store.Pending(ctx, from)
	if err != nil {
		return nil, err
	}
	if len(pending) >= r.cfg.MaxPending {
		return nil, fmt.Errorf("%w: %d waiting", rules.ErrTooManyPending, len(pending))
	}
	chainNonce, err := rules.ForwarderNonce(ctx, r.cfg.Chain, r.cfg.Forwarder, from, nil)
	if err != nil {
		return nil, err
	}
	if want := nextNonce(chainNonce, pending); !req.Nonce.IsUint64() || req.Nonce.Uint64() != want {
		return nil, &rules.NonceError{Got: req.Nonce, Want: new(big.Int).SetUint64(want)}
	}
	rec := &Record{
		ID: id, From: from, To: to, Gas: req.Gas.Uint64(), Nonce: req.Nonce.Uint64(), Deadline: req.Deadline,
		Data: req.Data, Signature: sig, State: Accepted, AcceptedAt: now.UnixMilli(), UpdatedAt: now.UnixMilli(),
	}
	if len(pending) == 0 {
		if err := rules.Simulate(ctx, r.cfg.Chain, r.cfg.Forwarder, r.hot, rec.execution(), nil); err != nil {
			return nil, err
		}
	}
	stored, fresh, err := r.cfg.Store.Accept(ctx, rec, chainNonce, r.cfg.MaxPending)
	if err != nil {
		return nil, err
	}
	if fresh {
		r.publish(ctx, stored)
	}
	return stored, nil
}

func (r *Relay) publish(ctx context.Context, rec *Record) {
	// A push that does not go out is not lost: sp_requestStatus and the next subscriber
	// read the outbox.
	_ = r.cfg.Fanout.Publish(ctx, RequestKey(rec.ID), rec.Status())
}

// Queued is the number of unfinished requests in the outbox.
func (r *Relay) Queued(ctx context.Context) (int, error) {
	q, err := r.cfg.Store.Queue(ctx)
	return len(q), err
}

// Pump runs sender passes, every `every`, until the outbox is empty or until would pass.
// With an index database, each pass is followed by a pass of the index's follower (Follow),
// so what the sender got mined is indexed and pushed; a follower's error is returned once
// the sender is done.
func (r *Relay) Pump(ctx context.Context, until time.Time, every time.Duration) error {
	if err := r.checkChain(ctx); err != nil {
		return err
	}
	var followErr error
	for {
		if err := r.Step(ctx); err != nil {
			return err
		}
		if r.cfg.DB != nil {
			_, followErr = r.Follow(ctx)
		}
		q, err := r.cfg.Store.Queue(ctx)
		if err != nil {
			return err
		}
		if len(q) == 0 || r.cfg.Now().Add(every).After(until) {
			return followErr
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// MaxPerPass bounds the requests one sender pass handles (the oldest first), and so the
// subrequests it makes (a Workers invocation may make 1,000 to 10,000, by plan).
const MaxPerPass = 64

// rebroadcastAfter is how long a sent transaction without a receipt waits before it is
// broadcast again (the same bytes: for a node that lost it).
const rebroadcastAfter = 10 * time.Second

// Step is one sender pass over the outbox, in acceptance order: a request without a
// transaction gets a hot-wallet nonce and a signed transaction, stored before it is
// broadcast; a sent one is settled from the receipt of whichever of its transactions the
// chain mined, or, while none is, broadcast again (the same bytes) once its newest was sent
// more than rebroadcastAfter ago, and replaced with higher fees under the same nonce once
// that was more than StuckAfter ago (replaceStuck, after the rest of the pass).
func (r *Relay) Step(ctx context.Context) error {
	q, err := r.cfg.Store.Queue(ctx)
	if err != nil {
		return err
	}
	if len(q) > MaxPerPass {
		q = q[:MaxPerPass]
	}
	var fe *fees
	var mined *uint64 // the hot wallet's nonce at the head: read once, if a request is sent
	var stuck []*Record
	ahead := map[common.Address]bool{} // signers with an earlier unfinished request
	for _, rec := range q {
		first := !ahead[rec.From]
		ahead[rec.From] = true
		if len(rec.Attempts) == 0 {
			// Before any gas is spent: a request that can no longer run fails here. Only a
			// signer's first request is run again: a later one may depend on it.
			if reason, err := r.unsendable(ctx, rec, first); err != nil {
				return err
			} else if reason != "" {
				if _, err := r.settle(ctx, rec, Failed, "", 0, reason); err != nil {
					return err
				}
				continue
			}
			if fe == nil {
				f, err := r.currentFees(ctx)
				if err != nil {
					return err
				}
				fe = &f
			}
			if rec, err = r.sign(ctx, rec, *fe); err != nil {
				return err
			}
		} else {
			if mined == nil {
				n, err := r.cfg.Chain.NonceAt(ctx, r.hot, nil)
				if err != nil {
					return fmt.Errorf("edge: read hot wallet nonce: %w", err)
				}
				mined = &n
			}
			if done, err := r.track(ctx, rec, mined); err != nil || done {
				if err != nil {
					return err
				}
				continue
			}
			since := r.cfg.Now().Sub(time.UnixMilli(rec.last().At))
			if since >= r.fees.StuckAfter {
				stuck = append(stuck, rec)
				continue
			}
			if since < rebroadcastAfter {
				continue // just sent: the node has it
			}
		}
		if err := r.broadcast(ctx, rec, rec.last()); err != nil {
			return err
		}
	}
	return r.replaceStuck(ctx, stuck, fe)
}

// broadcast sends one of a request's stored transactions. A node that refuses the only
// one for good fails the request; a refused replacement fails nothing (an earlier
// transaction may still be mined, and the next pass re-prices again).
func (r *Relay) broadcast(ctx context.Context, rec *Record, a *Attempt) error {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(a.Raw); err != nil {
		return fmt.Errorf("edge: decode stored transaction of %s: %w", rec.ID, err)
	}
	err := r.cfg.Chain.SendTransaction(ctx, tx)
	switch rules.Classify(err) {
	case rules.Delivered, rules.NonceUsed, rules.Underpriced:
		// In the pool or mined (by this or another attempt); receipts tell.
	case rules.Rejected:
		if len(rec.Attempts) > 1 {
			return nil
		}
		if _, err := r.settle(ctx, rec, Failed, "", 0, "the node refused the transaction: "+err.Error()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("edge: broadcast %s: %w", rec.ID, err)
	}
	return nil
}

// replaceStuck re-prices sent requests whose newest transaction has gone unmined for
// StuckAfter, lowest hot-wallet nonce first (a later nonce cannot be mined before it), as
// the native sender (relay/forward) does: the same nonce, both prices bumped by the shared
// policy (txfees.Policy.Bump: at least 10 %, never below a fresh transaction's), the new
// transaction stored (Replace) before it is broadcast. Above MaxFeeCap the newest is
// broadcast again as it is. fe, when not nil, is this pass's current fees.
func (r *Relay) replaceStuck(ctx context.Context, stuck []*Record, fe *fees) error {
	if len(stuck) == 0 {
		return nil
	}
	slices.SortFunc(stuck, func(a, b *Record) int { return cmp.Compare(*a.TxNonce, *b.TxNonce) })
	if fe == nil {
		f, err := r.currentFees(ctx)
		if err != nil {
			return err
		}
		fe = &f
	}
	for _, rec := range stuck {
		last := rec.last()
		old := new(types.Transaction)
		if err := old.UnmarshalBinary(last.Raw); err != nil {
			return fmt.Errorf("edge: decode stored transaction of %s: %w", rec.ID, err)
		}
		if bumped, ok := r.fees.Bump(fees{Tip: old.GasTipCap(), FeeCap: old.GasFeeCap()}, *fe); ok {
			a, err := r.signTx(rec, bumped)
			if err != nil {
				return err
			}
			stored, fresh, err := r.cfg.Store.Replace(ctx, rec.ID, *rec.TxNonce, last.Hash, a, a.At)
			if err != nil {
				return err
			}
			if !fresh {
				continue // settled, or re-priced by another pass meanwhile
			}
			rec, last = stored, stored.last()
		}
		if err := r.broadcast(ctx, rec, last); err != nil {
			return err
		}
	}
	return nil
}

// sendMargin is the least time a request's deadline must leave when it is sent.
const sendMargin = 15 * time.Second

// unsendable says why a request not yet sent should not be: its deadline is too near, or
// (dryRun) it would revert now.
func (r *Relay) unsendable(ctx context.Context, rec *Record, dryRun bool) (string, error) {
	if err := rules.CheckDeadline(rec.Deadline, r.cfg.Now(), sendMargin); err != nil {
		return "deadline passed before it could be sent", nil
	}
	if !dryRun {
		return "", nil
	}
	err := rules.Simulate(ctx, r.cfg.Chain, r.cfg.Forwarder, r.hot, rec.execution(), nil)
	var re *rules.RevertError
	switch {
	case err == nil:
		return "", nil
	case errors.As(err, &re):
		return re.Reason(), nil
	default:
		return "", err
	}
}

type fees = txfees.Fees

// currentFees prices a fresh transaction as the native relay's wallets do
// (relay/internal/txfees).
func (r *Relay) currentFees(ctx context.Context) (fees, error) {
	f, err := r.fees.Current(ctx, r.cfg.Chain)
	if err != nil {
		return fees{}, fmt.Errorf("edge: %w", err)
	}
	return f, nil
}

// sign reserves the request's hot-wallet nonce, signs its transaction and stores it; if
// another pass stored one first, that one is the request's transaction.
func (r *Relay) sign(ctx context.Context, rec *Record, fe fees) (*Record, error) {
	chainNonce, err := r.cfg.Chain.PendingNonceAt(ctx, r.hot)
	if err != nil {
		return nil, fmt.Errorf("edge: read hot wallet nonce: %w", err)
	}
	if rec, err = r.cfg.Store.Reserve(ctx, rec.ID, chainNonce); err != nil {
		return nil, err
	}
	if len(rec.Attempts) > 0 {
		return rec, nil
	}
	a, err := r.signTx(rec, fe)
	if err != nil {
		return nil, err
	}
	stored, fresh, err := r.cfg.Store.Attach(ctx, rec.ID, a, a.At)
	if err != nil {
		return nil, err
	}
	if fresh {
		r.publish(ctx, stored)
	}
	return stored, nil
}

// signTx signs the request's execution under its reserved hot-wallet nonce at fees fe.
func (r *Relay) signTx(rec *Record, fe fees) (Attempt, error) {
	data := rec.execution().Calldata()
	tx, err := types.SignNewTx(r.cfg.Key, r.signer, &types.DynamicFeeTx{
		ChainID: r.cfg.ChainID, Nonce: *rec.TxNonce, GasTipCap: fe.Tip, GasFeeCap: fe.FeeCap,
		Gas: rules.ExecuteGas(rec.Gas, len(data)), To: &r.cfg.Forwarder, Data: data,
	})
	if err != nil {
		return Attempt{}, fmt.Errorf("edge: sign transaction for %s: %w", rec.ID, err)
	}
	raw, err := tx.MarshalBinary()
	if err != nil {
		return Attempt{}, fmt.Errorf("edge: encode transaction: %w", err)
	}
	return Attempt{Hash: tx.Hash(), Raw: raw, At: r.cfg.Now().UnixMilli()}, nil
}

// track settles a sent request from the receipt of whichever of its transactions the chain
// mined; false while there is none. With mined (the hot wallet's nonce at the head), a
// request whose nonce is not below it has nothing mined and costs no receipt lookups.
func (r *Relay) track(ctx context.Context, rec *Record, mined *uint64) (bool, error) {
	if mined != nil && rec.TxNonce != nil && *rec.TxNonce >= *mined {
		return false, nil
	}
	var rcpt *types.Receipt
	for i := len(rec.Attempts) - 1; i >= 0 && rcpt == nil; i-- { // the newest is the likeliest
		// ethereum.NotFound, or the node cannot say now: broadcast again and look later.
		rcpt, _ = r.cfg.Chain.TransactionReceipt(ctx, rec.Attempts[i].Hash)
	}
	if rcpt == nil {
		return false, nil
	}
	block := rcpt.BlockNumber.Uint64()
	if rcpt.Status == types.ReceiptStatusSuccessful {
		_, err := r.settle(ctx, rec, Mined, rcpt.TxHash.Hex(), block, "")
		return true, err
	}
	reason := "reverted on chain"
	var re *rules.RevertError
	if err := rules.Simulate(ctx, r.cfg.Chain, r.cfg.Forwarder, r.hot, rec.execution(), rcpt.BlockNumber); errors.As(err, &re) {
		reason = re.Reason()
	}
	_, err := r.settle(ctx, rec, Failed, rcpt.TxHash.Hex(), block, reason)
	return true, err
}

func (r *Relay) settle(ctx context.Context, rec *Record, state, txHash string, block uint64, reason string) (*Record, error) {
	stored, changed, err := r.cfg.Store.Settle(ctx, rec.ID, state, txHash, block, reason, r.cfg.Now().UnixMilli())
	if err != nil {
		return nil, err
	}
	if changed {
		r.publish(ctx, stored)
	}
	return stored, nil
}
