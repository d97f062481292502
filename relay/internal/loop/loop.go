// Package loop is the relay's polling loop, written once for the services that follow the
// chains (oracle nodes and aggregator, validators and their aggregator, the payout worker).
package loop

import (
	"context"
	"log/slog"
	"time"
)

// Task is one service's work for a loop.
type Task struct {
	// Every is how often Step runs; Wake, if set, runs it early.
	Every time.Duration
	Wake  <-chan struct{}
	// Steps run in order, each on every round; one's failure does not stop the next.
	Steps []Step
	// Logger (default slog.Default) gets each failure as a warning.
	Logger *slog.Logger
}

// Step is one piece of a round and what its failure is called in the log.
type Step struct {
	Run    func(context.Context) error
	Failed string // e.g. "payout step failed; retrying"
}

// Run runs the steps now and then every t.Every (or on t.Wake) until ctx ends, and returns
// ctx's error. A failure is logged and tried again the next round, never returned: the
// services retry from what they have stored.
func Run(ctx context.Context, t Task) error {
	log := t.Logger
	if log == nil {
		log = slog.Default()
	}
	tick := time.NewTicker(t.Every)
	defer tick.Stop()
	for {
		for _, s := range t.Steps {
			if err := s.Run(ctx); err != nil && ctx.Err() == nil {
				log.Warn(s.Failed, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Wake:
		case <-tick.C:
		}
	}
}
