// Package loop is the relay's polling loop, written once for the services that follow the
// chains (oracle nodes and aggregator, validators and their aggregator, the payout worker,
// the chain watcher and the withdrawal tracker).
package loop

import (
	"context"
	"log/slog"
	"time"
)

// Task is one service's work for a loop.
type Task struct {
	// Every is how long the loop waits after a round; Wake, if set, starts the next early.
	Every time.Duration
	Wake  <-chan struct{}
	// Backoff, if set, doubles the wait after a round with a failure, up to Backoff (a node
	// that went away is not asked again every Every); a round without one resets it.
	Backoff time.Duration
	// Steps run in order, each on every round; one's failure does not stop the next.
	Steps []Step
	// Logger (default slog.Default) gets each failure as a warning.
	Logger *slog.Logger
}

// Step is one piece of a round and what its failure is called in the log.
type Step struct {
	Run    func(context.Context) error
	Failed string // e.g. "payout step failed; retrying"
	// Stop, if set, says which of its errors end the loop (Run returns them) instead of
	// being logged and retried.
	Stop func(error) bool
}

// Run runs the steps now and then after each wait until ctx ends, and returns ctx's error
// (or a step's error Stop picks). A failure is logged and tried again the next round: the
// services retry from what they have stored.
func Run(ctx context.Context, t Task) error {
	log := t.Logger
	if log == nil {
		log = slog.Default()
	}
	wait := t.Every
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		failed := false
		for _, s := range t.Steps {
			err := s.Run(ctx)
			if err == nil || ctx.Err() != nil {
				continue
			}
			if s.Stop != nil && s.Stop(err) {
				return err
			}
			failed = true
			if t.Backoff > 0 {
				log.Warn(s.Failed, "err", err, "in", min(wait*2, t.Backoff))
			} else {
				log.Warn(s.Failed, "err", err)
			}
		}
		switch {
		case failed && t.Backoff > 0:
			wait = min(wait*2, t.Backoff)
		default:
			wait = t.Every
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Wake:
		case <-timer.C:
		}
	}
}
