// Package watcher follows a chain block by block and feeds the platform's logs, in order,
// to a sink (the relay's index), retracting blocks that a reorganisation replaced.
//
// It polls rather than subscribes, so it works the same over HTTP, websockets and the
// simulated chain, and a node that goes away only delays it: every step is retried.
package watcher

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

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/relay/internal/loop"
)

// Client is the part of a chain client the watcher uses.
type Client interface {
	BlockNumber(ctx context.Context) (uint64, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

// Sink receives the logs. Apply gets each block's logs in log order; Revert retracts every
// block from `from` on.
type Sink interface {
	Addresses() []common.Address
	Apply(ctx context.Context, logs []types.Log) ([]common.Address, error)
	Revert(from uint64)
}

// ErrReorgTooDeep means the chain replaced more blocks than the watcher remembers; the
// caller must rebuild from the start block.
var ErrReorgTooDeep = errors.New("watcher: reorganisation deeper than the remembered window")

// Config configures a Watcher.
type Config struct {
	Client  Client
	Sink    Sink
	Factory common.Address
	// Start is the first block to read (the factory's deployment block).
	Start uint64
	// Poll is how often Run looks for new blocks (default 500 ms).
	Poll time.Duration
	// Window is how many recent block hashes are kept to detect reorganisations (default 256).
	Window uint64
	// RangeLimit is the most blocks read in one log query while catching up (default 1000).
	RangeLimit uint64
	Logger     *slog.Logger
	// OnBlock, if set, is called after each block (or caught-up range) is applied.
	OnBlock func(number uint64)
}

// Watcher follows the chain. Step and Run must not be called concurrently.
type Watcher struct {
	cfg     Config
	factory *events.EventFactory

	mu     sync.Mutex
	next   uint64                 // the next block to read
	hashes map[uint64]common.Hash // canonical hashes of recently applied blocks
}

// New returns a watcher that starts reading at cfg.Start.
func New(cfg Config) *Watcher {
	if cfg.Poll == 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Window == 0 {
		cfg.Window = 256
	}
	if cfg.RangeLimit == 0 {
		cfg.RangeLimit = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Watcher{cfg: cfg, factory: events.NewEventFactory(), next: cfg.Start, hashes: map[uint64]common.Hash{}}
}

// Head is the last block applied, or 0 before the first.
func (w *Watcher) Head() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next == 0 {
		return 0
	}
	return w.next - 1
}

// Resume makes the watcher go on from block next, with the hashes of the blocks before it
// that it remembered (Position's): a follower that keeps no memory of its own between runs
// (the Workers build) stores both and resumes from them.
func (w *Watcher) Resume(next uint64, hashes map[uint64]common.Hash) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next = max(next, w.cfg.Start)
	w.hashes = map[uint64]common.Hash{}
	for n, h := range hashes {
		if n < w.next {
			w.hashes[n] = h
		}
	}
}

// Position is the next block to read and the remembered hashes of the blocks before it.
func (w *Watcher) Position() (uint64, map[uint64]common.Hash) {
	w.mu.Lock()
	defer w.mu.Unlock()
	hashes := make(map[uint64]common.Hash, len(w.hashes))
	for n, h := range w.hashes {
		hashes[n] = h
	}
	return w.next, hashes
}

// Run follows the chain until ctx ends. Errors (a node that went away, a timeout) are
// logged and retried with backoff; only a reorganisation deeper than the window stops it.
func (w *Watcher) Run(ctx context.Context) error {
	return loop.Run(ctx, loop.Task{Every: w.cfg.Poll, Backoff: 30 * time.Second, Logger: w.cfg.Logger,
		Steps: []loop.Step{{Run: w.Step, Failed: "chain watcher step failed; retrying",
			Stop: func(err error) bool { return errors.Is(err, ErrReorgTooDeep) }}}})
}

// Step reads every block from the last one applied up to the chain's head.
func (w *Watcher) Step(ctx context.Context) error {
	head, err := w.cfg.Client.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("head block: %w", err)
	}
	if err := w.checkReorg(ctx); err != nil {
		return err
	}
	for {
		w.mu.Lock()
		next := w.next
		w.mu.Unlock()
		if next > head {
			return nil
		}
		end := next
		// Far below the head, reorganisations cannot reach: read a range in one query.
		if head-next > w.cfg.Window/2 {
			end = min(next+w.cfg.RangeLimit-1, head-w.cfg.Window/2)
		}
		if err := w.readRange(ctx, next, end); err != nil {
			return err
		}
	}
}

// checkReorg compares the last applied block with the chain's block at that height and,
// if it changed, retracts back to the common ancestor.
func (w *Watcher) checkReorg(ctx context.Context) error {
	w.mu.Lock()
	last, ok := w.next-1, w.next > w.cfg.Start
	known := w.hashes[last]
	w.mu.Unlock()
	if !ok || known == (common.Hash{}) {
		return nil
	}
	h, err := w.cfg.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(last))
	if err != nil {
		if errors.Is(err, ethereum.NotFound) { // the chain is now shorter than we were
			return w.rewind(ctx, last)
		}
		return fmt.Errorf("header %d: %w", last, err)
	}
	if h.Hash() == known {
		return nil
	}
	return w.rewind(ctx, last)
}

// rewind walks back from `from` to the newest block whose hash still matches, and retracts
// everything above it.
func (w *Watcher) rewind(ctx context.Context, from uint64) error {
	n := from
	for {
		w.mu.Lock()
		known, ok := w.hashes[n]
		w.mu.Unlock()
		if !ok || n < w.cfg.Start {
			w.cfg.Logger.Error("reorganisation deeper than the window", "from", from, "window", w.cfg.Window)
			return ErrReorgTooDeep
		}
		h, err := w.cfg.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
		if err == nil && h.Hash() == known {
			break
		}
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			return fmt.Errorf("header %d: %w", n, err)
		}
		if n == w.cfg.Start {
			n = w.cfg.Start - 1 // everything we read is gone
			break
		}
		n--
	}
	w.cfg.Logger.Warn("chain reorganisation: retracting blocks", "from", n+1, "to", from)
	w.cfg.Sink.Revert(n + 1)
	w.mu.Lock()
	for b := n + 1; b <= from; b++ {
		delete(w.hashes, b)
	}
	w.next = n + 1
	w.mu.Unlock()
	return nil
}

// readRange applies the logs of blocks [from, to]. When to == from the block is read by
// hash, so its logs and the hash recorded for reorg detection are of the same block.
func (w *Watcher) readRange(ctx context.Context, from, to uint64) error {
	header, err := w.cfg.Client.HeaderByNumber(ctx, new(big.Int).SetUint64(to))
	if err != nil {
		return fmt.Errorf("header %d: %w", to, err)
	}
	if from == to && from > w.cfg.Start {
		w.mu.Lock()
		parent, ok := w.hashes[from-1]
		w.mu.Unlock()
		if ok && header.ParentHash != parent {
			return w.rewind(ctx, from-1)
		}
	}
	query := func(addrs []common.Address) ([]types.Log, error) {
		q := ethereum.FilterQuery{Addresses: addrs}
		if from == to {
			hash := header.Hash()
			q.BlockHash = &hash
		} else {
			q.FromBlock, q.ToBlock = new(big.Int).SetUint64(from), new(big.Int).SetUint64(to)
		}
		return w.cfg.Client.FilterLogs(ctx, q)
	}
	// Events created in these blocks log from their own address (tier names, gates) before
	// the factory's EventCreated: find them first so one query returns everything in order.
	factoryLogs, err := query([]common.Address{w.cfg.Factory})
	if err != nil {
		return fmt.Errorf("factory logs %d-%d: %w", from, to, err)
	}
	addrs := w.cfg.Sink.Addresses()
	for i := range factoryLogs {
		if ev, err := w.factory.UnpackEventCreatedEvent(&factoryLogs[i]); err == nil {
			addrs = append(addrs, ev.EventAddress)
		}
	}
	logs, err := query(addrs)
	if err != nil {
		return fmt.Errorf("logs %d-%d: %w", from, to, err)
	}
	sort.SliceStable(logs, func(i, j int) bool {
		if logs[i].BlockNumber != logs[j].BlockNumber {
			return logs[i].BlockNumber < logs[j].BlockNumber
		}
		return logs[i].Index < logs[j].Index
	})
	if _, err := w.cfg.Sink.Apply(ctx, logs); err != nil {
		return fmt.Errorf("apply blocks %d-%d: %w", from, to, err)
	}
	w.mu.Lock()
	w.hashes[to] = header.Hash()
	for b := range w.hashes {
		if b+w.cfg.Window < to {
			delete(w.hashes, b)
		}
	}
	w.next = to + 1
	w.mu.Unlock()
	if w.cfg.OnBlock != nil {
		w.cfg.OnBlock(to)
	}
	return nil
}
