package exits

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"go.etcd.io/bbolt"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/exits/bridge"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// counting is a chain's real client that counts the log queries made through it.
type counting struct {
	simulated.Client
	queries atomic.Int64
}

func (c *counting) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	c.queries.Add(1)
	return c.Client.FilterLogs(ctx, q)
}

// kept is a Tracker with its store at path, keeping the main chain's blocks `margin` deep,
// reading 3 blocks per query, through counting clients.
func (e *env) kept(path string, margin uint64, logs *syncbuf.Buffer) (*Tracker, *counting, *counting) {
	e.t.Helper()
	main, side := &counting{Client: e.main.Client}, &counting{Client: e.side.Client}
	cfg := Config{Main: main, Side: side, Root: e.b.Root, Checkpoints: e.b.Checkpoints, Child: e.b.Child,
		Path: path, Margin: margin, RangeLimit: 3}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	tr, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return tr, main, side
}

// answers is everything the Tracker serves about the env's accounts.
type answers struct {
	Withdrawals map[common.Address][]protocol.Withdrawal
	Proofs      map[uint64]protocol.WithdrawalProof
	Refusals    map[uint64]string
	Deposits    map[common.Address][]Deposit
}

func (e *env) answers(tr *Tracker, n uint64) answers {
	e.t.Helper()
	a := answers{Withdrawals: map[common.Address][]protocol.Withdrawal{}, Proofs: map[uint64]protocol.WithdrawalProof{},
		Refusals: map[uint64]string{}, Deposits: map[common.Address][]Deposit{}}
	for _, who := range append(e.main.Accounts[:4], e.fan) {
		ws, err := tr.Withdrawals(who.Address)
		if err != nil {
			e.t.Fatal(err)
		}
		a.Withdrawals[who.Address] = ws
		ds, _, err := tr.Deposits(context.Background(), who.Address)
		if err != nil {
			e.t.Fatal(err)
		}
		a.Deposits[who.Address] = ds
	}
	for i := range n + 1 {
		if p, err := tr.Proof(i); err != nil {
			a.Refusals[i] = err.Error()
		} else {
			a.Proofs[i] = p
		}
	}
	return a
}

// history makes withdrawals, deposits, checkpoints (one bad) and an exit by its recipient,
// with empty blocks between, so that reading it takes many 3-block queries.
func (e *env) history() {
	e.t.Helper()
	alice, bob := e.main.Accounts[1], e.main.Accounts[2].Address
	e.main.MustTransact(e.main.Accounts[0], e.main.USD, devchain.USD.PackMint(e.main.Accounts[0].Address, devchain.USDC(50)), nil)
	e.main.MustTransact(e.main.Accounts[0], e.b.Root, devchain.RootGW.PackDeposit(alice.Address, devchain.USDC(7)), nil)
	e.withdraw(alice.Address, 20)
	e.withdraw(bob, 5)
	e.checkpoint(true) // logged loudly, never proven against
	e.withdraw(alice.Address, 1)
	number := e.checkpoint(false)
	for range 10 {
		e.main.Commit()
		e.side.Commit()
	}
	manual := e.tracker(nil, nil)
	e.step(manual)
	e.userExit(alice, manual, 0, number)
	e.main.MustTransact(e.main.Accounts[0], e.b.Root, devchain.RootGW.PackDeposit(bob, devchain.USDC(3)), nil)
	e.withdraw(bob, 2) // queued only
	for range 6 {
		e.main.Commit()
	}
}

// userExit exits withdrawal index with the proof tr serves, sent by its recipient.
func (e *env) userExit(who *devchain.Account, tr *Tracker, index, checkpoint uint64) {
	e.t.Helper()
	p, err := tr.Proof(index)
	if err != nil || p.Checkpoint != checkpoint {
		e.t.Fatalf("proof of %d: %+v %v", index, p, err)
	}
	proof := make([][32]byte, len(p.Proof))
	for i, h := range p.Proof {
		proof[i] = common.HexToHash(h)
	}
	value, _ := new(big.Int).SetString(p.Value, 10)
	data, _ := new(big.Int).SetString(p.Data, 10)
	w := merkle.Withdrawal{Kind: p.Kind, Index: p.Index, Recipient: common.HexToAddress(p.Recipient), Asset: common.HexToAddress(p.Asset), Value: value, Data: data}
	e.main.MustTransact(who, e.b.Root, devchain.RootGW.PackExit(new(big.Int).SetUint64(p.Checkpoint), devchain.MainWithdrawal(w), proof), nil)
}

// TestGatewayTrackerRestart: a Tracker keeping its logs in a store, restarted, reads only
// the blocks after those it kept (the main chain's newest Margin blocks again), and serves
// exactly what it served before, and what a Tracker reading everything from the chains
// serves; then it follows what happens next.
func TestGatewayTrackerRestart(t *testing.T) {
	e := newEnv(t)
	e.history()
	path := filepath.Join(t.TempDir(), "bridge.db")
	first, main, side := e.kept(path, 2, nil)
	e.step(first)
	mainQ, sideQ := main.queries.Load(), side.queries.Load()
	if mainQ < 5 || sideQ < 5 {
		t.Fatalf("the first run made %d main-chain and %d sidechain queries: not the whole history, 3 blocks at a time", mainQ, sideQ)
	}
	before := e.answers(first, 3)
	if len(before.Proofs) != 3 || len(before.Deposits[e.main.Accounts[1].Address]) != 1 || before.Withdrawals[e.main.Accounts[1].Address][0].Stage != protocol.WithdrawalExited ||
		!strings.Contains(before.Refusals[3], "not in a checkpoint yet") {
		t.Fatalf("before the restart: %+v", before)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	var logs syncbuf.Buffer
	again, main, side := e.kept(path, 2, &logs)
	e.step(again)
	if m, s := main.queries.Load(), side.queries.Load(); m != 1 || s != 0 {
		t.Fatalf("the restarted Tracker made %d main-chain and %d sidechain log queries, want 1 (the 2 blocks of the margin) and 0", m, s)
	}
	if !strings.Contains(logs.String(), "taken back from the store") {
		t.Fatalf("log: %s", logs.String())
	}
	if after := e.answers(again, 3); !reflect.DeepEqual(after, before) {
		t.Fatalf("after the restart:\n%+v\nbefore:\n%+v", after, before)
	}
	fresh := e.tracker(nil, nil)
	e.step(fresh)
	if got := e.answers(fresh, 3); !reflect.DeepEqual(got, before) {
		t.Fatalf("read afresh from the chains:\n%+v\nthe store's:\n%+v", got, before)
	}

	// What happens next: a checkpoint for the queued withdrawal, a deposit.
	bob := e.main.Accounts[2].Address
	e.withdraw(bob, 4)
	number := e.checkpoint(false)
	e.main.MustTransact(e.main.Accounts[0], e.b.Root, devchain.RootGW.PackDeposit(bob, devchain.USDC(1)), nil)
	e.step(again)
	e.step(fresh)
	if got, want := e.answers(again, 5), e.answers(fresh, 5); !reflect.DeepEqual(got, want) {
		t.Fatalf("after new blocks:\n%+v\nread afresh:\n%+v", got, want)
	}
	if p, err := again.Proof(4); err != nil || p.Checkpoint != number {
		t.Fatalf("the new withdrawal's proof: %+v %v", p, err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayTrackerStoreRefused: a store of another schema, of another bridge, or another
// program's file is refused with an error naming it, and left as it was.
func TestGatewayTrackerStoreRefused(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cfg := Config{Main: e.main.Client, Side: e.side.Client, Root: e.b.Root, Checkpoints: e.b.Checkpoints, Child: e.b.Child}

	foreign := filepath.Join(dir, "foreign.db")
	withBolt(t, foreign, func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("tickets")); return err })
	c := cfg
	c.Path = foreign
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "is not a bridge store") || !strings.Contains(err.Error(), "tickets") {
		t.Fatalf("another program's file: %v", err)
	}

	c.Path = filepath.Join(dir, "bridge.db")
	tr, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	e.step(tr)
	tr.Close()
	other := c
	other.Root = e.main.Accounts[5].Address
	if _, err := New(other); err == nil || !strings.Contains(err.Error(), "another bridge") {
		t.Fatalf("another bridge's store: %v", err)
	}
	withBolt(t, c.Path, func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("2")) })
	if _, err := New(c); err == nil || err.Error() != c.Path+` holds the bridge's logs in schema "2"; this relay reads schema "1"` {
		t.Fatalf("another schema: %v", err)
	}
	withBolt(t, c.Path, func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySchema); string(v) != "2" {
			t.Fatalf("the refused file was changed: schema %q", v)
		}
		return nil
	})

	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("stagepass"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Path = junk
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "open the bridge store "+junk) {
		t.Fatalf("not a database: %v", err)
	}
}

// TestGatewayTrackerStoreCorrupt: a stored leaf and a stored deposit that do not parse are
// logged and read again from the chains from their blocks on: the Tracker serves what it
// served before, having read only those blocks again.
func TestGatewayTrackerStoreCorrupt(t *testing.T) {
	e := newEnv(t)
	e.history()
	path := filepath.Join(t.TempDir(), "bridge.db")
	first, main, _ := e.kept(path, 2, nil)
	e.step(first)
	whole := main.queries.Load()
	before := e.answers(first, 3)
	first.Close()

	alice := e.main.Accounts[1].Address
	deposit := before.Deposits[alice][0]
	withBolt(t, path, func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketMain).Cursor()
		k, _ := c.Seek(u64(deposit.Block))
		if k == nil || binary.BigEndian.Uint64(k[:8]) != deposit.Block {
			t.Fatalf("no record of block %d", deposit.Block)
		}
		if err := tx.Bucket(bucketMain).Put(k, []byte(`{"address":`)); err != nil {
			return err
		}
		return tx.Bucket(bucketSide).Put(u64(2), []byte(`{"kind":1,"index":2,"value":"x"}`))
	})

	var logs syncbuf.Buffer
	again, main, side := e.kept(path, 2, &logs)
	for _, want := range []string{"bucket=main", "bucket=side", "reading the chain again from its block"} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("log lacks %q: %s", want, logs.String())
		}
	}
	e.step(again)
	if m := main.queries.Load(); m == 0 || m >= whole {
		t.Fatalf("%d main-chain queries after a bad record, %d for the whole chain", m, whole)
	}
	if side.queries.Load() == 0 {
		t.Fatal("the sidechain was not read again after a bad leaf")
	}
	if after := e.answers(again, 3); !reflect.DeepEqual(after, before) {
		t.Fatalf("after the bad records:\n%+v\nbefore:\n%+v", after, before)
	}
	again.Close()
	// The records read again replaced the bad ones.
	withBolt(t, path, func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketSide).Get(u64(2)); strings.Contains(string(v), `"x"`) {
			t.Fatalf("the bad leaf is still there: %s", v)
		}
		return nil
	})
}

// TestGatewayTrackerReorgBelowMargin: a deposit kept (more than Margin blocks deep) is
// replaced by a longer branch of the main chain forked below it, where its sender's
// transaction is another deposit, to someone else; the next step sees the kept block's
// hash gone, rolls back, and serves the deposits the chain has now — before and after a
// restart.
func TestGatewayTrackerReorgBelowMargin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice, bob := e.main.Accounts[1], e.main.Accounts[2].Address
	path := filepath.Join(t.TempDir(), "bridge.db")
	var logs syncbuf.Buffer
	tr, _, _ := e.kept(path, 1, &logs)
	e.main.MustTransact(e.main.Accounts[0], e.main.USD, devchain.USD.PackMint(e.main.Accounts[0].Address, devchain.USDC(7)), nil)
	e.step(tr)
	parent, err := e.main.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := e.main.MustTransact(e.main.Accounts[0], e.b.Root, devchain.RootGW.PackDeposit(alice.Address, devchain.USDC(7)), nil)
	for range 3 {
		e.main.Commit()
	}
	e.step(tr)
	ds, _, err := tr.Deposits(ctx, alice.Address)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deposits before the fork: %+v %v", ds, err)
	}
	tr.mu.Lock()
	kept := len(tr.kept.deposits[alice.Address])
	tr.mu.Unlock()
	if kept != 1 {
		t.Fatal("the deposit is not kept: the fork would not reach below the margin")
	}

	old, _, err := e.main.Client.TransactionByHash(ctx, r.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.main.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	// On the new branch the depositor's transaction is replaced (same nonce, a higher tip) by
	// a deposit to bob.
	e.replace(old, e.main.Accounts[0], e.b.Root, devchain.RootGW.PackDeposit(bob, devchain.USDC(5)))
	for range 6 { // longer than the old branch
		e.main.Commit()
	}
	e.step(tr)
	if !strings.Contains(logs.String(), "replaced blocks the relay had read") {
		t.Fatalf("the reorganisation was not seen: %s", logs.String())
	}
	if len(e.depositsOnChain(alice.Address)) != 0 || len(e.depositsOnChain(bob)) != 1 {
		t.Fatalf("on the new branch: alice's deposits %+v, bob's %+v", e.depositsOnChain(alice.Address), e.depositsOnChain(bob))
	}
	check := func(tr *Tracker, when string) {
		t.Helper()
		for _, who := range []common.Address{alice.Address, bob} {
			want := e.depositsOnChain(who)
			got, _, err := tr.Deposits(ctx, who)
			if err != nil || len(got) != len(want) {
				t.Fatalf("%s: deposits to %s %+v %v, the chain has %+v", when, who.Hex(), got, err, want)
			}
			for i := range got {
				if got[i].Block != want[i].Block || got[i].Tx != want[i].Tx {
					t.Fatalf("%s: deposit %+v, the chain has %+v", when, got[i], want[i])
				}
			}
		}
	}
	check(tr, "after the fork")
	tr.Close()
	again, _, _ := e.kept(path, 1, nil)
	e.step(again)
	check(again, "after a restart")
	again.Close()
}

// replace sends, in place of transaction old (pending again after a fork), another from
// the same account with the same nonce and a higher tip.
func (e *env) replace(tx *types.Transaction, from *devchain.Account, to common.Address, data []byte) {
	e.t.Helper()
	ctx := context.Background()
	head, err := e.main.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	tip := new(big.Int).Mul(tx.GasTipCap(), big.NewInt(10))
	signed, err := types.SignNewTx(from.Key, types.LatestSignerForChainID(e.main.ChainID), &types.DynamicFeeTx{
		ChainID: e.main.ChainID, Nonce: tx.Nonce(), GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(4)), tip),
		Gas: tx.Gas(), To: &to, Data: data,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.main.Client.SendTransaction(ctx, signed); err != nil {
		e.t.Fatalf("the replacement: %v", err)
	}
}

// depositsOnChain are the Deposited logs to who on the main chain now.
func (e *env) depositsOnChain(who common.Address) []Deposit {
	e.t.Helper()
	logs, err := e.main.Client.FilterLogs(context.Background(), ethereum.FilterQuery{FromBlock: new(big.Int), Addresses: []common.Address{e.b.Root},
		Topics: [][]common.Hash{{DepositedTopic}, nil, nil, {common.BytesToHash(who.Bytes())}}})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []Deposit
	for i := range logs {
		out = append(out, Deposit{Tx: logs[i].TxHash, Block: logs[i].BlockNumber})
	}
	return out
}

func withBolt(t *testing.T, path string, fn func(tx *bbolt.Tx) error) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayFrontierIsTheTree: the frontier's root is bridge.Tree's after every push.
func TestGatewayFrontierIsTheTree(t *testing.T) {
	var f frontier
	var leaves []common.Hash
	for i := range 300 {
		if got, want := f.root(), bridge.Tree(leaves).Root(); got != want {
			t.Fatalf("%d leaves: frontier root %x, tree root %x", i, got, want)
		}
		h := common.BigToHash(big.NewInt(int64(i*7 + 1)))
		f.push(h)
		leaves = append(leaves, h)
	}
}

// TestGatewayTrackerStoreKeepsRecentHashes: the store keeps the newest keptHashes of the
// main cursor's block hashes however many steps it has taken (each step adds one in its own
// transaction), and a step past that many still returns.
func TestGatewayTrackerStoreKeepsRecentHashes(t *testing.T) {
	s, err := openStore(filepath.Join(t.TempDir(), "bridge.db"), followsJSON{MainChainID: 1338})
	if err != nil {
		t.Fatal(err)
	}
	defer s.db.Close()
	const steps = 3*keptHashes + 5
	for b := uint64(1); b <= steps; b++ {
		if err := s.putMain(nil, b+1, &hashPoint{block: b, hash: common.BigToHash(new(big.Int).SetUint64(b))}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if len(got.hashes) != keptHashes || got.hashes[0].block != steps-keptHashes+1 || got.hashes[keptHashes-1].block != steps {
		t.Fatalf("kept %d hashes, from block %d to %d; want %d, %d to %d", len(got.hashes),
			got.hashes[0].block, got.hashes[len(got.hashes)-1].block, keptHashes, steps-keptHashes+1, steps)
	}
}
