package anchor

import (
	"context"
	"log/slog"
	"time"
)

// Anchored reports whether this Anchorer has anchored checkpoint `number` (sent, maybe not
// mined yet).
func (a *Anchorer) Anchored(number uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.st.Anchors[number]
	return ok
}

// LoopConfig configures Run.
type LoopConfig struct {
	// Poll is how often the main chain is read (default 2 s).
	Poll time.Duration
	// Confirmations is how deep in the main chain a checkpoint's submission must be before
	// it is anchored (default 1: mined).
	Confirmations uint64
}

// Run anchors every checkpoint the CheckpointManager accepts, in order, once its submission
// has Confirmations main-chain blocks, until ctx ends. A failed anchor (a node down, too few
// coins) is logged and tried again on the next poll.
func (a *Anchorer) Run(ctx context.Context, cfg LoopConfig) error {
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Confirmations == 0 {
		cfg.Confirmations = 1
	}
	var next uint64
	for {
		n, err := a.Pass(ctx, next, cfg.Confirmations)
		if err != nil && ctx.Err() == nil {
			a.log().Warn("anchor failed; tried again on the next poll", "checkpoint", n, "err", err)
		}
		next = n
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(cfg.Poll):
		}
	}
}

// Pass anchors the checkpoints from `from` on that are deep enough in the main chain and
// returns the first one it did not anchor (not there yet, or failed: the error says why).
func (a *Anchorer) Pass(ctx context.Context, from, confirmations uint64) (uint64, error) {
	count, err := Count(ctx, a.cfg.Main, a.cfg.Manager)
	if err != nil {
		return from, err
	}
	head, err := a.cfg.Main.BlockNumber(ctx)
	if err != nil {
		return from, err
	}
	for n := from; n < count; n++ {
		if a.Anchored(n) {
			continue
		}
		block, err := a.submittedIn(ctx, n)
		if err != nil {
			return n, err
		}
		if block+confirmations > head+1 {
			return n, nil
		}
		cp, err := ReadCheckpoint(ctx, a.cfg.Main, a.cfg.Manager, n)
		if err != nil {
			return n, err
		}
		txid, err := a.Anchor(ctx, cp)
		if err != nil {
			return n, err
		}
		a.log().Info("anchored checkpoint", "checkpoint", n, "tx", txid)
	}
	return count, nil
}

func (a *Anchorer) log() *slog.Logger {
	if a.cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.cfg.Logger
}

// submittedIn is the main-chain block of checkpoint `number`'s CheckpointSubmitted event.
func (a *Anchorer) submittedIn(ctx context.Context, number uint64) (uint64, error) {
	l, err := submittedLog(ctx, a.cfg.Main, a.cfg.Manager, number)
	if err != nil {
		return 0, err
	}
	return l.BlockNumber, nil
}
