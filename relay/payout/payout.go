// Package payout is the payout worker: it follows the RevenueSplit events that card sales
// emit (EventTicket.fulfilCard — each party's share of what fans paid by card, which the
// chain records but cannot move) and executes each one on the payment processor's ledger
// as a transfer to the party's connected account, once, however often it restarts.
//
// Idempotency: a payout's key is the log's transaction hash and index, which the processor
// (the sandbox's ledger, Stripe's Idempotency-Key) makes at most once; the worker's cursor
// (the next block to read) is saved only after every payout of the blocks before it was
// made, so a crash repeats at most a few transfers, which the keys absorb. Reorgs: only
// blocks `Confirmations` deep are read.
//
// Clawback: when a card payment is refunded or charged back, the OracleHub emits
// PaymentReversed(paymentId, event) and the event CardReversed(tokenId, burned) per ticket of
// that purchase. For each CardReversed log the worker finds the fulfilment that sold the
// ticket (the event's CardPurchased log for that payment id), and takes back from each party
// paid out in that fulfilment its part of the ticket's revenue, as a transfer reversal keyed
// by the CardReversed log and the payout's key (reversal.go).
package payout

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"go.etcd.io/bbolt"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/relay/internal/logscan"
	"github.com/stagepass/stagepass/relay/internal/loop"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Chain is the worker's read access to the chain.
type Chain interface {
	BlockNumber(ctx context.Context) (uint64, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
}

// Config configures a Worker.
type Config struct {
	Chain   Chain
	Factory common.Address // only genuine events (EventFactory.isEvent) are paid for
	Payer   payments.Payer
	// Path is the worker's cursor file (bbolt).
	Path string
	// Start is the first block to read on a fresh cursor; Confirmations how deep a block
	// must be before its payouts are made (default 0: the dev chain does not reorg).
	Start, Confirmations uint64
	// Poll is how often new blocks are read (default 1 s); RangeLimit the most blocks read
	// in one log query (default 1000; providers often refuse more).
	Poll       time.Duration
	RangeLimit uint64
	Logger     *slog.Logger
}

var (
	ticketABI  = events.NewEventTicket()
	factoryABI = events.NewEventFactory()
	// RevenueSplit(address indexed party, uint256 amount, bytes32 currency)
	topicRevenueSplit = crypto.Keccak256Hash([]byte("RevenueSplit(address,uint256,bytes32)"))
	cardCurrency      = [32]byte{'c', 'a', 'r', 'd'}
	// CardReversed(uint256 indexed tokenId, bool burned)
	topicCardReversed = crypto.Keccak256Hash([]byte("CardReversed(uint256,bool)"))

	bucketMeta = []byte("meta")
	keyCursor  = []byte("next-block")
)

// Worker executes card revenue splits as payouts.
type Worker struct {
	cfg     Config
	db      *bbolt.DB
	mu      sync.Mutex
	genuine map[common.Address]bool
	hub     common.Address // the factory's OracleHub, once asked
	paid    uint64         // payouts made (or found made) since start
	clawed  uint64         // reversals made (or found made) since start
}

// New opens the worker's cursor; Run starts it.
func New(cfg Config) (*Worker, error) {
	if cfg.Chain == nil || cfg.Payer == nil || cfg.Path == "" || cfg.Factory == (common.Address{}) {
		return nil, errors.New("payout: a worker needs a chain, a factory, a payer and a path")
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.RangeLimit == 0 {
		cfg.RangeLimit = logscan.DefaultLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	db, err := bbolt.Open(cfg.Path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("payout: open %s: %w", cfg.Path, err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucketMeta); return err }); err != nil {
		db.Close()
		return nil, err
	}
	return &Worker{cfg: cfg, db: db, genuine: map[common.Address]bool{}}, nil
}

// Close closes the cursor file.
func (w *Worker) Close() error { return w.db.Close() }

// Paid is how many payouts the worker made (or found already made) since it started.
func (w *Worker) Paid() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.paid
}

// Reversed is how many transfer reversals the worker made (or found already made) since it
// started.
func (w *Worker) Reversed() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clawed
}

// Run pays out until ctx ends; failures are logged and retried from the same block.
func (w *Worker) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Task{Every: w.cfg.Poll, Logger: w.cfg.Logger,
		Steps: []loop.Step{{Run: w.Step, Failed: "payout step failed; retrying"}}})
}

func (w *Worker) cursor() (uint64, error) {
	next := w.cfg.Start
	err := w.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyCursor); len(v) == 8 {
			next = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return next, err
}

func (w *Worker) setCursor(next uint64) error {
	return w.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyCursor, binary.BigEndian.AppendUint64(nil, next))
	})
}

// Step reads the confirmed blocks not read yet (up to RangeLimit) and makes their payouts and
// reversals, in the chain's order.
func (w *Worker) Step(ctx context.Context) error {
	next, err := w.cursor()
	if err != nil {
		return err
	}
	head, err := w.cfg.Chain.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("chain head: %w", err)
	}
	if head < w.cfg.Confirmations || head-w.cfg.Confirmations < next {
		return nil
	}
	to := min(head-w.cfg.Confirmations, next+w.cfg.RangeLimit-1)
	logs, err := w.cfg.Chain.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(next), ToBlock: new(big.Int).SetUint64(to),
		Topics: [][]common.Hash{{topicRevenueSplit, topicCardReversed}},
	})
	if err != nil {
		return fmt.Errorf("read logs %d-%d: %w", next, to, err)
	}
	for i := range logs {
		do := w.pay
		if logs[i].Topics[0] == topicCardReversed {
			do = w.reverse
		}
		if err := do(ctx, &logs[i]); err != nil {
			return err // the cursor stays: this block is read again, and the keys absorb repeats
		}
	}
	return w.setCursor(to + 1)
}

func (w *Worker) pay(ctx context.Context, l *types.Log) error {
	p, ok, err := w.payoutOf(ctx, l)
	if err != nil || !ok {
		return err
	}
	p, err = w.cfg.Payer.Pay(ctx, p)
	if err != nil {
		return fmt.Errorf("pay %s its share of tx %s: %w", p.Party, l.TxHash.Hex(), err)
	}
	w.mu.Lock()
	w.paid++
	w.mu.Unlock()
	w.cfg.Logger.Info("card revenue paid out", "party", p.Party, "cents", p.Amount, "transfer", p.ID, "event", l.Address)
	return nil
}

// payoutOf is the payout a RevenueSplit log asks for, if it asks for one: card revenue of a
// genuine event, at least a cent.
func (w *Worker) payoutOf(ctx context.Context, l *types.Log) (payments.Payout, bool, error) {
	if l.Removed || len(l.Topics) != 2 || l.Topics[0] != topicRevenueSplit || len(l.Data) != 64 || !bytes.Equal(l.Data[32:], cardCurrency[:]) {
		return payments.Payout{}, false, nil // token splits move on chain; only card revenue is paid out here
	}
	ok, err := w.isEvent(ctx, l.Address)
	if err != nil || !ok {
		return payments.Payout{}, false, err // a look-alike contract's log pays nobody
	}
	ev, err := ticketABI.UnpackRevenueSplitEvent(l)
	if err != nil {
		return payments.Payout{}, false, nil
	}
	// The chain counts in the event currency's base units (6 decimals); the processor in
	// cents. A share that is not a whole number of cents is rounded down (at most 1 cent
	// per party per sale stays with the platform).
	cents := new(big.Int).Quo(ev.Amount, big.NewInt(protocol.CardUnitDivisor))
	if cents.Sign() == 0 {
		return payments.Payout{}, false, nil
	}
	if !cents.IsInt64() {
		return payments.Payout{}, false, fmt.Errorf("payout of %s units in tx %s is out of range", ev.Amount, l.TxHash.Hex())
	}
	return payments.Payout{
		Key:   logKey(l),
		Party: strings.ToLower(ev.Party.Hex()), Amount: cents.Int64(), Currency: protocol.CardCurrency,
		Group: strings.ToLower(l.TxHash.Hex()),
	}, true, nil
}

// logKey names a log on the chain: its transaction hash and index.
func logKey(l *types.Log) string {
	return fmt.Sprintf("%s/%d", strings.ToLower(l.TxHash.Hex()), l.Index)
}

func (w *Worker) isEvent(ctx context.Context, addr common.Address) (bool, error) {
	w.mu.Lock()
	ok, known := w.genuine[addr]
	w.mu.Unlock()
	if known {
		return ok, nil
	}
	out, err := w.cfg.Chain.CallContract(ctx, ethereum.CallMsg{To: &w.cfg.Factory, Data: factoryABI.PackIsEvent(addr)}, nil)
	if err != nil {
		return false, fmt.Errorf("ask the factory about %s: %w", addr.Hex(), err)
	}
	ok, err = factoryABI.UnpackIsEvent(out)
	if err != nil {
		return false, err
	}
	w.mu.Lock()
	w.genuine[addr] = ok
	w.mu.Unlock()
	return ok, nil
}
