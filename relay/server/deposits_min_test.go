package server

import (
	"math/big"
	"testing"
)

// TestGatewayMinGaslessDepositUnits: the minimum in whole tokens becomes base units of the
// token's decimals, rounded up; unset is one whole token, zero is none.
func TestGatewayMinGaslessDepositUnits(t *testing.T) {
	for _, tc := range []struct {
		min      *big.Rat
		decimals uint8
		want     string
	}{
		{nil, 6, "1000000"},
		{nil, 18, "1000000000000000000"},
		{big.NewRat(0, 1), 6, "0"},
		{big.NewRat(5, 2), 6, "2500000"},
		{big.NewRat(1, 3), 6, "333334"},
		{big.NewRat(1, 3), 0, "1"},
	} {
		r := &Relay{cfg: Config{Validators: &ValidatorConfig{MinGaslessDeposit: tc.min}}}
		if got := r.minGaslessDeposit(tc.decimals).String(); got != tc.want {
			t.Errorf("minimum %v at %d decimals = %s base units, want %s", tc.min, tc.decimals, got, tc.want)
		}
	}
}
