// Package logscan reads a chain's logs over a span of blocks in queries no wider than a
// node's range limit (providers often refuse eth_getLogs over more than 1,000–10,000
// blocks), written once for the bridge's followers (relay/exits) and the payout worker's
// sale lookup (relay/payout).
package logscan

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// DefaultLimit is the most blocks one query spans when Span.Limit is 0.
const DefaultLimit = 1000

// Filterer reads logs (an ethclient.Client, the simulated chain's client).
type Filterer interface {
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

// Span is the blocks From..To (both included) read in queries of at most Limit blocks
// (0: DefaultLimit), oldest first, or newest first when Backward.
type Span struct {
	From, To, Limit uint64
	Backward        bool
}

// Scan reads the logs q matches (its addresses and topics; the blocks are the span's) and
// gives each query's logs, in the chain's order, to fn with the query's blocks; fn returns
// false to stop, or an error, which Scan returns as it is. A failed query's error names its
// blocks. A span whose From is above its To reads nothing.
func Scan(ctx context.Context, c Filterer, q ethereum.FilterQuery, s Span, fn func(logs []types.Log, from, to uint64) (more bool, err error)) error {
	limit := s.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if s.From > s.To {
		return nil
	}
	from, to := s.From, s.To
	for {
		switch {
		case to-from < limit:
		case s.Backward:
			from = to - limit + 1
		default:
			to = from + limit - 1
		}
		logs, err := c.FilterLogs(ctx, ethereum.FilterQuery{
			FromBlock: new(big.Int).SetUint64(from), ToBlock: new(big.Int).SetUint64(to), Addresses: q.Addresses, Topics: q.Topics,
		})
		if err != nil {
			return fmt.Errorf("blocks %d..%d: %w", from, to, err)
		}
		if more, err := fn(logs, from, to); err != nil || !more {
			return err
		}
		switch {
		case s.Backward && from > s.From:
			from, to = s.From, from-1
		case !s.Backward && to < s.To:
			from, to = to+1, s.To
		default:
			return nil
		}
	}
}

// EventID is the topic of event `name` in a contract's ABI (a binding's MetaData); it
// panics on an ABI that does not parse, which the bindings' tests rule out.
func EventID(meta *bind.MetaData, name string) common.Hash {
	parsed, err := meta.ParseABI()
	if err != nil {
		panic(err)
	}
	ev, ok := parsed.Events[name]
	if !ok {
		panic("logscan: no event " + name)
	}
	return ev.ID
}
