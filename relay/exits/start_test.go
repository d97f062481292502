package exits

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/anchor"
)

// picky is a node as providers run them: it keeps no logs below `floor` and refuses a log
// query over more than `limit` blocks.
type picky struct {
	anchor.MainChain
	floor, limit uint64
	queries      int
}

func (p *picky) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	p.queries++
	if q.BlockHash != nil {
		return p.MainChain.FilterLogs(ctx, q)
	}
	if q.FromBlock == nil || q.ToBlock == nil {
		return nil, errors.New("this node needs fromBlock and toBlock")
	}
	from, to := q.FromBlock.Uint64(), q.ToBlock.Uint64()
	if from < p.floor {
		return nil, fmt.Errorf("block %d is pruned: this node keeps logs from block %d", from, p.floor)
	}
	if to-from+1 > p.limit {
		return nil, fmt.Errorf("query exceeds max block range %d", p.limit)
	}
	return p.MainChain.FilterLogs(ctx, q)
}

// TestGatewayTrackerStartAndRange: a Tracker on nodes that keep no logs below the bridge's
// deployment and refuse log queries over 3 blocks fails clearly when told to start at block 0
// or to read 1,000 blocks at once, and with MainStart and RangeLimit set reads every
// withdrawal and deposit: a deposit made before it started and one made after, each to its
// recipient only (the latter before and after the next step).
func TestGatewayTrackerStartAndRange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice, bob := e.main.Accounts[1].Address, e.main.Accounts[2].Address
	// The nodes keep logs from newEnv's deposit on: that is where the Tracker must start.
	first, err := e.main.Client.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: new(big.Int), Addresses: []common.Address{e.b.Root}})
	if err != nil || len(first) == 0 {
		t.Fatalf("newEnv's deposit: %v %v", first, err)
	}
	start := first[0].BlockNumber
	e.main.MustTransact(e.main.Accounts[0], e.main.USD, devchain.USD.PackMint(e.main.Accounts[0].Address, devchain.USDC(20)), nil)
	r := e.main.MustTransact(e.main.Accounts[0], e.b.Root, devchain.RootGW.PackDeposit(alice, devchain.USDC(7)), nil)
	e.withdraw(bob, 2)
	for range 8 {
		e.main.Commit()
		e.side.Commit()
	}
	main := &picky{MainChain: e.main.Client, floor: start, limit: 3}
	side := &picky{MainChain: e.side.Client, limit: 3}
	cfg := Config{Main: main, Side: side, Root: e.b.Root, Checkpoints: e.b.Checkpoints, Child: e.b.Child}

	for _, tc := range []struct {
		name      string
		mainStart uint64
		limit     uint64
		want      []string
	}{
		{"from block 0", 0, 3, []string{"main chain: RootGateway's and CheckpointManager's logs: blocks 0..2: block 0 is pruned"}},
		{"over the range limit", start, 0, []string{"sidechain: ChildGateway's WithdrawalQueued logs: blocks 0..", ": query exceeds max block range 3"}},
	} {
		c := cfg
		c.MainStart, c.RangeLimit = tc.mainStart, tc.limit
		tr, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		err = tr.Step(ctx)
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("%s: %v, want %q", tc.name, err, want)
			}
		}
		if _, _, err := tr.Deposits(ctx, alice); !errors.Is(err, ErrNotReady) {
			t.Fatalf("%s: deposits %v", tc.name, err)
		}
	}

	cfg.MainStart, cfg.RangeLimit = start, 3
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.step(tr)
	if main.queries < 4 || side.queries < 4 {
		t.Fatalf("%d main-chain and %d sidechain queries: the blocks were not read 3 at a time", main.queries, side.queries)
	}
	if w := one(t, tr, bob); w.Value != "2000000" {
		t.Fatalf("withdrawal %+v", w)
	}
	deposits := func(who common.Address, want ...int64) []Deposit {
		t.Helper()
		ds, head, err := tr.Deposits(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := e.main.Client.BlockNumber(ctx); head != n {
			t.Fatalf("deposits as of block %d, head %d", head, n)
		}
		if len(ds) != len(want) {
			t.Fatalf("deposits to %s: %+v, want %v", who.Hex(), ds, want)
		}
		for i, d := range ds {
			if d.Amount.Cmp(devchain.USDC(want[i])) != 0 || d.Recipient != who || d.From != e.main.Accounts[0].Address {
				t.Fatalf("deposit %d to %s: %+v, want %d", i, who.Hex(), d, want[i])
			}
		}
		return ds
	}
	if ds := deposits(alice, 7); ds[0].ID.Int64() != 1 || ds[0].Tx != r.TxHash || ds[0].Block != r.BlockNumber.Uint64() {
		t.Fatalf("alice's deposit %+v", ds[0])
	}
	deposits(e.fan.Address, 100)
	deposits(bob)

	// A deposit after the step: read from the node at once, then from memory.
	r2 := e.main.MustTransact(e.main.Accounts[0], e.b.Root, devchain.RootGW.PackDeposit(alice, devchain.USDC(4)), nil)
	for range 5 {
		e.main.Commit()
	}
	if ds := deposits(alice, 7, 4); ds[1].Tx != r2.TxHash {
		t.Fatalf("the later deposit %+v", ds[1])
	}
	e.step(tr)
	before := main.queries
	deposits(alice, 7, 4)
	if n := main.queries - before; n != 0 {
		t.Fatalf("deposits read from memory asked the node %d times for logs", n)
	}
	e.main.Commit()
	deposits(alice, 7, 4)
	if n := main.queries - before; n != 1 {
		t.Fatalf("deposits asked the node %d times for logs, want 1 (the block since the step)", n)
	}
	deposits(bob)
}
