package logscan

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/core/types"
)

// blocks is a node whose every block holds one log, refusing ranges over `limit` blocks.
type blocks struct {
	limit   uint64
	queries [][2]uint64
}

func (b *blocks) FilterLogs(_ context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	from, to := q.FromBlock.Uint64(), q.ToBlock.Uint64()
	b.queries = append(b.queries, [2]uint64{from, to})
	if to-from+1 > b.limit {
		return nil, fmt.Errorf("query exceeds max block range %d", b.limit)
	}
	var out []types.Log
	for n := from; ; n++ {
		out = append(out, types.Log{BlockNumber: n})
		if n == to {
			break
		}
	}
	return out, nil
}

func TestScanForwardAndBackward(t *testing.T) {
	for _, tc := range []struct {
		span Span
		want [][2]uint64
	}{
		{Span{From: 5, To: 29, Limit: 10}, [][2]uint64{{5, 14}, {15, 24}, {25, 29}}},
		{Span{From: 5, To: 29, Limit: 10, Backward: true}, [][2]uint64{{20, 29}, {10, 19}, {5, 9}}},
		{Span{From: 0, To: 9, Limit: 10}, [][2]uint64{{0, 9}}},
		{Span{From: 0, To: 0, Limit: 10, Backward: true}, [][2]uint64{{0, 0}}},
		{Span{From: 3, To: 2, Limit: 10}, nil},
		{Span{From: 1<<64 - 5, To: 1<<64 - 1, Limit: 3}, [][2]uint64{{1<<64 - 5, 1<<64 - 3}, {1<<64 - 2, 1<<64 - 1}}},
	} {
		node := &blocks{limit: tc.span.Limit}
		var got []uint64
		err := Scan(context.Background(), node, ethereum.FilterQuery{}, tc.span, func(logs []types.Log, from, to uint64) (bool, error) {
			for _, l := range logs {
				got = append(got, l.BlockNumber)
			}
			return true, nil
		})
		if err != nil || !reflect.DeepEqual(node.queries, tc.want) {
			t.Fatalf("%+v: queries %v (%v), want %v", tc.span, node.queries, err, tc.want)
		}
		if n := tc.span.To - tc.span.From + 1; tc.span.From <= tc.span.To && uint64(len(got)) != n {
			t.Fatalf("%+v: %d logs, want %d", tc.span, len(got), n)
		}
	}
}

func TestScanStopsAndNamesTheBlocks(t *testing.T) {
	node := &blocks{limit: 10}
	err := Scan(context.Background(), node, ethereum.FilterQuery{}, Span{From: 0, To: 100, Limit: 10, Backward: true},
		func(logs []types.Log, from, to uint64) (bool, error) { return from > 80, nil })
	if err != nil || len(node.queries) != 3 {
		t.Fatalf("stopped after %v (%v), want 3 queries", node.queries, err)
	}
	err = Scan(context.Background(), &blocks{limit: 10}, ethereum.FilterQuery{}, Span{From: 0, To: 100, Limit: 20}, func([]types.Log, uint64, uint64) (bool, error) { return true, nil })
	if err == nil || err.Error() != "blocks 0..19: query exceeds max block range 10" {
		t.Fatalf("a refused query: %v", err)
	}
	stop := errors.New("bad log")
	if err := Scan(context.Background(), &blocks{limit: 10}, ethereum.FilterQuery{}, Span{To: 5}, func([]types.Log, uint64, uint64) (bool, error) { return true, stop }); err != stop {
		t.Fatalf("fn's error: %v", err)
	}
}
