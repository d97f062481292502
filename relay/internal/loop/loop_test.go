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
