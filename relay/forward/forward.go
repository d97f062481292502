// Package forward is the relay's intake and sender of ERC-2771 forward requests. Fans hold
// no native coin: they sign a request for one of the platform's own functions, and the relay
// pays the gas to execute it through the Stagepass forwarder from its hot wallet.
//
// Submit checks a request before any gas is spent (target, selector, value, deadline,
// signature, gas, nonce, rate, and that the call would succeed), then writes it to a durable
// outbox (bbolt, fsynced) before it answers. A sender goroutine executes the outbox in order
// and records every signed transaction before broadcasting it, so a crash loses nothing and a
// restart re-sends the same transactions rather than new ones.
package forward

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"go.etcd.io/bbolt"
	"golang.org/x/time/rate"

	"github.com/stagepass/stagepass/relay/forward/rules"
	"github.com/stagepass/stagepass/relay/internal/txfees"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Client is what the forwarder needs from a chain node. go-ethereum's *ethclient.Client and
// ethclient/simulated's Client both satisfy it.
type Client interface {
	ChainID(ctx context.Context) (*big.Int, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
	NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

// Limits bound what one signer can make the relay do. Zero fields take the defaults.
type Limits struct {
	// Rate is the sustained number of requests a signer may submit per second (default 1),
	// with bursts of up to Burst (default 10). Resubmitting an accepted request is free.
	Rate  float64
	Burst int
	// MaxPending is how many of a signer's requests may wait in the outbox (default 8).
	MaxPending int
	// DeadlineMargin is how far in the future a request's deadline must be when it arrives
	// (default 1 minute), so it cannot expire while it waits for a block.
	DeadlineMargin time.Duration
	// MaxGas caps the gas a request may ask for (default 2,000,000): the relay pays for it.
	MaxGas uint64
	// MaxData caps the request's calldata in bytes (default 16 KiB).
	MaxData int
	// MaxInFlight is how many hot-wallet transactions may be unmined at once (default 64).
	MaxInFlight int
}

// Fees set how the hot wallet prices its EIP-1559 transactions (relay/internal/txfees,
// shared with the report aggregators' wallet). Zero fields take defaults.
type Fees = txfees.Policy

// Config configures a Forwarder. Client, ChainID, Forwarder, Factory, Key and one of Path
// or DB are required.
type Config struct {
	Client    Client
	ChainID   *big.Int
	Forwarder common.Address // the StagepassForwarder every event trusts
	Factory   common.Address // the EventFactory; its events are the other allowed targets
	// Gateway is the sidechain's ChildGateway, whose withdraw and exitTicket the relay pays
	// for too; zero when the chain has no main-chain bridge.
	Gateway common.Address
	// Key is the hot wallet that pays the gas.
	Key *ecdsa.PrivateKey
	// Path is the outbox's bbolt file, opened (and closed by Close) here; or DB, an open
	// database the caller owns and closes.
	Path string
	DB   *bbolt.DB
	// Clock tells the time (default time.Now); tests move it to expire deadlines and make
	// transactions stuck.
	Clock  func() time.Time
	Limits Limits
	Fees   Fees
	// PollInterval is how often the sender checks receipts, stuck transactions and nonce
	// gaps (default 1 s).
	PollInterval time.Duration
	// DrainTimeout is how long Close lets the sender finish what is in flight (default 10 s).
	DrainTimeout time.Duration
	// Confirmations is how many blocks must hold a transaction before its request counts
	// as mined (default 1: the head block). More guards the status against reorgs on
	// chains without fast finality; until then it stays sent.
	Confirmations uint64
	// Retention is how long finished requests stay in the outbox for Status and idempotent
	// resubmission (default 7 days). Dropping them is safe: the forwarder's nonce has moved
	// on, so a late resubmission is refused rather than executed again.
	Retention time.Duration
	Logger    *slog.Logger
	// OnStatus, if set, is called after every status change has been written to the outbox
	// (accepted, sent, mined, failed). It runs on the intake or sender goroutine and must
	// not block: hand the status to a hub.
	OnStatus func(Status)

	hooks testHooks
}

// testHooks let tests stop the sender at the points a crash matters.
type testHooks struct {
	holdSender      bool                             // accept, but never send
	beforeBroadcast func(tx *types.Transaction) bool // false: stop as if the process died
}

// State is where a request is in its life.
type State string

// The states of a request. Accepted, then sent, then mined or failed; a transaction whose
// nonce was taken by someone else's goes back to accepted and is sent again.
const (
	Accepted State = "accepted" // in the outbox, not yet in a transaction
	Sent     State = "sent"     // in a signed, broadcast transaction not yet mined
	Mined    State = "mined"    // executed on chain
	Failed   State = "failed"   // will not execute; Reason says why
)

// Final reports whether the state will not change again.
func (s State) Final() bool { return s == Mined || s == Failed }

// Receipt is Submit's answer.
type Receipt struct {
	ID     common.Hash // the request's EIP-712 digest
	Status State
}

// Status is a request's state as the outbox records it.
type Status struct {
	ID     common.Hash
	State  State
	From   common.Address
	Nonce  uint64      // the forwarder nonce the request uses
	TxHash common.Hash // the transaction carrying it (latest attempt until mined)
	Block  uint64      // the block it was mined in
	Reason string      // why it failed
	Time   time.Time   // when the state was recorded
}

// Sentinel errors the relay turns into JSON-RPC errors (defined in package rules, which the
// Workers build shares).
var (
	ErrClosed         = errors.New("forward: relay is shutting down")
	ErrInvalidRequest = rules.ErrInvalidRequest
	ErrTarget         = rules.ErrTarget
	ErrSelector       = rules.ErrSelector
	ErrValue          = rules.ErrValue
	ErrDeadline       = rules.ErrDeadline
	ErrSignature      = rules.ErrSignature
	ErrGasLimit       = rules.ErrGasLimit
	ErrNonce          = rules.ErrNonce
	ErrRateLimited    = rules.ErrRateLimited
	ErrTooManyPending = rules.ErrTooManyPending
	ErrWouldRevert    = rules.ErrWouldRevert
	ErrUnknownRequest = rules.ErrUnknownRequest
)

// NonceError is a request signed with a nonce other than the one it would execute with.
type NonceError = rules.NonceError

// Forwarder accepts forward requests and executes them from the hot wallet.
type Forwarder struct {
	cfg    Config
	client Client
	db     *bbolt.DB
	ownDB  bool
	hot    common.Address
	signer types.Signer
	domain protocol.Domain
	log    *slog.Logger
	now    func() time.Time
	events eventCache

	// stripes serialise one signer's nonce check and acceptance, so two concurrent
	// requests cannot both claim the same nonce; unrelated signers rarely share a stripe.
	stripes [256]sync.Mutex

	mu       sync.Mutex
	closed   bool
	limiters map[common.Address]*rate.Limiter
	pending  map[common.Address][]uint64 // forwarder nonces of each signer's unfinished entries
	queue    []*entry                    // unfinished entries in acceptance order

	// announcing holds, per request being accepted, a channel closed once its "accepted"
	// status has been announced, so the sender never announces "sent" before it.
	announcing map[common.Hash]chan struct{}

	intake sync.WaitGroup // Submits in progress
	writes chan *write    // to the group committer
	wake   chan struct{}  // new work for the sender

	stopCommit chan struct{}
	commitDone chan struct{}
	drain      chan struct{}
	sendCancel context.CancelFunc
	sendDone   chan struct{}
	closeOnce  sync.Once
	closeErr   error

	// Owned by the sender goroutine.
	nextNonce uint64
	fillers   map[uint64]*types.Transaction // no-op transactions plugging nonce holes
}

// New opens the outbox, picks up whatever a previous run left unfinished, and starts the
// sender. ctx bounds the start-up only.
func New(ctx context.Context, cfg Config) (*Forwarder, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	id, err := cfg.Client.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("forward: read chain id: %w", err)
	}
	if id.Cmp(cfg.ChainID) != 0 {
		return nil, fmt.Errorf("forward: node is on chain %s, configured for %s", id, cfg.ChainID)
	}
	f := &Forwarder{
		cfg:        cfg,
		client:     cfg.Client,
		db:         cfg.DB,
		hot:        crypto.PubkeyToAddress(cfg.Key.PublicKey),
		signer:     types.LatestSignerForChainID(cfg.ChainID),
		domain:     protocol.ForwarderDomain(cfg.ChainID.Uint64(), ethcrypto.Address(cfg.Forwarder)),
		log:        cfg.Logger,
		now:        cfg.Clock,
		limiters:   make(map[common.Address]*rate.Limiter),
		pending:    make(map[common.Address][]uint64),
		writes:     make(chan *write, 1024),
		wake:       make(chan struct{}, 1),
		stopCommit: make(chan struct{}),
		commitDone: make(chan struct{}),
		drain:      make(chan struct{}),
		sendDone:   make(chan struct{}),
		fillers:    make(map[uint64]*types.Transaction),
	}
	f.events.init()
	if f.db == nil {
		f.db, err = bbolt.Open(cfg.Path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("forward: open outbox %s: %w", cfg.Path, err)
		}
		f.ownDB = true
	}
	if err := f.load(ctx); err != nil {
		if f.ownDB {
			f.db.Close()
		}
		return nil, err
	}
	sendCtx, cancel := context.WithCancel(context.Background())
	f.sendCancel = cancel
	go f.commitLoop()
	go f.sendLoop(sendCtx)
	return f, nil
}

func (c *Config) defaults() error {
	switch {
	case c.Client == nil:
		return errors.New("forward: config needs a Client")
	case c.ChainID == nil:
		return errors.New("forward: config needs a ChainID")
	case c.Key == nil:
		return errors.New("forward: config needs the hot wallet Key")
	case c.Forwarder == (common.Address{}) || c.Factory == (common.Address{}):
		return errors.New("forward: config needs the Forwarder and Factory addresses")
	case c.Path == "" && c.DB == nil:
		return errors.New("forward: config needs an outbox Path or DB")
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	l := &c.Limits
	if l.Rate <= 0 {
		l.Rate = 1
	}
	if l.Burst <= 0 {
		l.Burst = 10
	}
	if l.MaxPending <= 0 {
		l.MaxPending = 8
	}
	if l.DeadlineMargin <= 0 {
		l.DeadlineMargin = time.Minute
	}
	if l.MaxGas == 0 {
		l.MaxGas = 2_000_000
	}
	if l.MaxData <= 0 {
		l.MaxData = 16 << 10
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 64
	}
	c.Fees.Defaults()
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
	if c.Confirmations == 0 {
		c.Confirmations = 1
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	return nil
}

// Address is the hot wallet's address.
func (f *Forwarder) Address() common.Address { return f.hot }

// Close stops intake, lets the sender finish what it can within the drain timeout, and
// closes the outbox. Whatever is still unfinished stays in the outbox and is completed by
// the next New on the same file.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		f.closed = true
		f.mu.Unlock()
		f.intake.Wait()
		close(f.stopCommit)
		<-f.commitDone
		// The sender keeps going until the queue is empty or the drain timeout cancels it
		// mid-step; a cancelled broadcast is safe, its transaction is already stored.
		close(f.drain)
		stop := time.AfterFunc(f.cfg.DrainTimeout, f.sendCancel)
		<-f.sendDone
		stop.Stop()
		f.sendCancel()
		if n := len(f.snapshot()); n > 0 {
			f.log.Info("forwarder closed with requests unfinished; the next start finishes them", "unfinished", n)
		}
		if f.ownDB {
			f.closeErr = f.db.Close()
		}
	})
	return f.closeErr
}

// enter admits one Submit unless the forwarder is closing.
func (f *Forwarder) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.intake.Add(1)
	return true
}

func (f *Forwarder) notify(st Status) {
	if f.cfg.OnStatus == nil {
		return
	}
	if st.State != Accepted {
		f.mu.Lock()
		ch := f.announcing[st.ID]
		f.mu.Unlock()
		if ch != nil {
			<-ch
		}
	}
	f.cfg.OnStatus(st)
}

// announce marks request id as being accepted; the returned func ends that, after the
// intake has announced (or decided not to announce) its "accepted" status.
func (f *Forwarder) announce(id common.Hash) func() {
	ch := make(chan struct{})
	f.mu.Lock()
	if f.announcing == nil {
		f.announcing = map[common.Hash]chan struct{}{}
	}
	prev := f.announcing[id]
	f.announcing[id] = ch
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		if f.announcing[id] == ch {
			if prev != nil {
				f.announcing[id] = prev
			} else {
				delete(f.announcing, id)
			}
		}
		f.mu.Unlock()
		close(ch)
	}
}

func (f *Forwarder) wakeSender() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}
