package main

import (
	"strings"
	"testing"
)

// TestCardPurchaseBench runs the bench small: a few purchases one at a time and a burst of
// 40 fans, each of which must mint exactly once (run checks it on chain and fails if not).
func TestCardPurchaseBench(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the platform")
	}
	var out strings.Builder
	if err := run([]string{"-fans", "40", "-latency", "2", "-block-time", "250ms"}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	t.Log(out.String())
	for _, want := range []string{"latency, request to minted, 2 purchases", "onsale burst: 40 fans, 40 tickets, each payment minted exactly once", "gas per ticket"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
