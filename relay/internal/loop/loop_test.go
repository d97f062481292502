package loop

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// Steps run at once, on every tick and on a wake; a failing step neither stops the loop nor
// the steps after it; the loop ends with its context.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	wake := make(chan struct{}, 1)
	var failing, after atomic.Int32
	done := make(chan error)
	go func() {
		done <- Run(ctx, Task{Every: time.Hour, Wake: wake, Steps: []Step{
			{Run: func(context.Context) error { failing.Add(1); return errors.New("node away") }, Failed: "first failed"},
			{Run: func(context.Context) error { after.Add(1); return nil }, Failed: "second failed"},
		}})
	}()
	waitFor := func(n int32) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for after.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("step ran %d times, want %d", after.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(1) // at once, not after an hour
	wake <- struct{}{}
	waitFor(2)
	if failing.Load() != 2 {
		t.Fatalf("failing step ran %d times", failing.Load())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

// A failing round waits twice as long each time up to Backoff; a stopping error ends Run.
func TestRunBackoffAndStop(t *testing.T) {
	var times []time.Time
	stop := errors.New("reorganisation too deep")
	err := Run(context.Background(), Task{Every: 10 * time.Millisecond, Backoff: 40 * time.Millisecond, Steps: []Step{{
		Run: func(context.Context) error {
			times = append(times, time.Now())
			if len(times) == 5 {
				return stop
			}
			return errors.New("node away")
		},
		Failed: "failed",
		Stop:   func(err error) bool { return errors.Is(err, stop) },
	}}})
	if !errors.Is(err, stop) || len(times) != 5 {
		t.Fatalf("Run returned %v after %d rounds", err, len(times))
	}
	// Waits 20, 40, 40, 40 ms (doubling from Every, capped at Backoff).
	for i, want := range []time.Duration{20, 40, 40, 40} {
		if got := times[i+1].Sub(times[i]); got < want*time.Millisecond {
			t.Errorf("wait %d: %v, want at least %v ms", i, got, want)
		}
	}
}
