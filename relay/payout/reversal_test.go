package payout

import (
	"math/big"
	"testing"
)

// TestPayoutReversalShares: the per-ticket reversals of a payout, taken in any order, never
// add up to more than was paid, never go negative, and add up to exactly what was paid once
// every ticket of the fulfilment is reversed — also when the fulfilment sold several
// purchases at different prices and the shares do not divide into whole cents.
func TestPayoutReversalShares(t *testing.T) {
	// One fulfilment: 3 tickets at 45.00 (one purchase) and 2 at 120.00 (another), in base units.
	values := []int64{45_000_000, 45_000_000, 45_000_000, 120_000_000, 120_000_000}
	total := big.NewInt(0)
	for _, v := range values {
		total.Add(total, big.NewInt(v))
	}
	orders := [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {3, 0, 4, 1, 2}}
	for _, paid := range []int64{1, 2, 3, 7, 1001, 3750, 37_499, 37_500} {
		for _, order := range orders {
			v, sum := new(big.Int), int64(0)
			for k, i := range order {
				before := new(big.Int).Set(v)
				v.Add(v, big.NewInt(values[i]))
				step := share(paid, v, total) - share(paid, before, total)
				if step < 0 {
					t.Fatalf("paid %d, order %v: a negative reversal %d", paid, order, step)
				}
				sum += step
				if sum > paid {
					t.Fatalf("paid %d, order %v: %d reversed after %d tickets", paid, order, sum, k+1)
				}
			}
			if sum != paid {
				t.Fatalf("paid %d, order %v: %d reversed in all", paid, order, sum)
			}
		}
	}
	// The first purchase alone (3 of 5 tickets, 135 of 375): floor(3750·135/375) = 1350.
	if got := share(3750, big.NewInt(135_000_000), total); got != 1350 {
		t.Fatalf("the first purchase's share of 3750 is %d", got)
	}
	if got := share(3750, big.NewInt(1), big.NewInt(0)); got != 3750 {
		t.Fatalf("no revenue recorded: %d", got)
	}
}
