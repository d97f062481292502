// Package txfees prices the EIP-1559 transactions of the relay's hot wallets: what a fresh
// transaction pays now, and what a replacement of a stuck one pays. The forwarder's
// sender (relay/forward) and the report aggregators' wallet (relay/oracle.Wallet) both
// price with it.
package txfees

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
)

// Policy sets how a hot wallet prices its transactions. Zero fields take the defaults
// (Defaults).
type Policy struct {
	// Tip is the priority fee per gas; nil asks the node (eth_maxPriorityFeePerGas).
	Tip *big.Int
	// BaseFeeMultiplier sets the fee cap to base fee × this + tip (default 2), so a
	// transaction survives a few blocks of rising base fee.
	BaseFeeMultiplier int64
	// MaxFeeCap is the most the wallet ever pays per gas; nil means no ceiling.
	MaxFeeCap *big.Int
	// BumpPercent is the fee increase of a replacement transaction (default and minimum
	// 10: nodes refuse a replacement that pays less than 10% more).
	BumpPercent int64
	// StuckAfter is how long a transaction may stay unmined before it is replaced with
	// higher fees under the same nonce (default 30 s).
	StuckAfter time.Duration
}

// Defaults fills the zero fields.
func (p *Policy) Defaults() {
	if p.BaseFeeMultiplier <= 0 {
		p.BaseFeeMultiplier = 2
	}
	if p.BumpPercent < 10 {
		p.BumpPercent = 10
	}
	if p.StuckAfter <= 0 {
		p.StuckAfter = 30 * time.Second
	}
}

// Fees are one transaction's EIP-1559 prices per gas.
type Fees struct{ Tip, FeeCap *big.Int }

// Node is what pricing reads from the chain.
type Node interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
}

// Current is what a fresh transaction pays now: the tip, and a fee cap of the head's base
// fee × BaseFeeMultiplier plus the tip, both within MaxFeeCap. p must have its defaults.
func (p *Policy) Current(ctx context.Context, node Node) (Fees, error) {
	head, err := node.HeaderByNumber(ctx, nil)
	if err != nil {
		return Fees{}, fmt.Errorf("read head for fees: %w", err)
	}
	tip := p.Tip
	if tip == nil {
		if tip, err = node.SuggestGasTipCap(ctx); err != nil {
			return Fees{}, fmt.Errorf("suggest tip: %w", err)
		}
	}
	tip = new(big.Int).Set(tip)
	feeCap := new(big.Int)
	if head.BaseFee != nil {
		feeCap.Mul(head.BaseFee, big.NewInt(p.BaseFeeMultiplier))
	}
	feeCap.Add(feeCap, tip)
	if c := p.MaxFeeCap; c != nil && feeCap.Cmp(c) > 0 {
		feeCap.Set(c)
	}
	if tip.Cmp(feeCap) > 0 {
		tip.Set(feeCap)
	}
	return Fees{Tip: tip, FeeCap: feeCap}, nil
}

// Bump prices a replacement of a transaction that paid old: at least BumpPercent more on
// both prices, rounded up (nodes compare against old × (100+10)/100), and never below what
// a fresh transaction pays now. It reports false when that would exceed MaxFeeCap.
func (p *Policy) Bump(old, now Fees) (Fees, bool) {
	up := func(x *big.Int) *big.Int {
		y := new(big.Int).Mul(x, big.NewInt(100+p.BumpPercent))
		y.Add(y, big.NewInt(99))
		return y.Div(y, big.NewInt(100))
	}
	tip, feeCap := up(old.Tip), up(old.FeeCap)
	if now.Tip.Cmp(tip) > 0 {
		tip = new(big.Int).Set(now.Tip)
	}
	if now.FeeCap.Cmp(feeCap) > 0 {
		feeCap = new(big.Int).Set(now.FeeCap)
	}
	if feeCap.Cmp(tip) < 0 {
		feeCap = new(big.Int).Set(tip)
	}
	if c := p.MaxFeeCap; c != nil && feeCap.Cmp(c) > 0 {
		return Fees{}, false
	}
	return Fees{Tip: tip, FeeCap: feeCap}, true
}
