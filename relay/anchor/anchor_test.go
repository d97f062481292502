package anchor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/relay/anchor/anchortest"
)

func TestCheckpointAnchorPayload(t *testing.T) {
	h := common.HexToHash("0x1234")
	p := anchor.Payload(7, h)
	script, err := txscript.NullDataScript(p)
	if err != nil {
		t.Fatal(err)
	}
	if n, got, ok := anchor.ParseScript(script); !ok || n != 7 || got != h {
		t.Fatalf("ParseScript = %d %s %v", n, got, ok)
	}
	bad := func(mutate func([]byte) []byte) []byte {
		s, err := txscript.NullDataScript(mutate(bytes.Clone(p)))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, s := range map[string][]byte{
		"other magic":      bad(func(b []byte) []byte { b[0] = 'X'; return b }),
		"other version":    bad(func(b []byte) []byte { b[4] = 2; return b }),
		"short":            bad(func(b []byte) []byte { return b[:len(b)-1] }),
		"not an OP_RETURN": append([]byte{txscript.OP_DUP}, script[1:]...),
		"empty":            nil,
	} {
		if _, _, ok := anchor.ParseScript(s); ok {
			t.Errorf("%s: parsed as an anchor", name)
		}
	}
}

// anchorEnv is a main chain with the sidechain contracts, a btcd simnet node mining to the
// anchorer's key, 100 blocks mined (the first coinbase spendable in the next block: simnet's
// coinbase maturity is 100) and an Anchorer.
type anchorEnv struct {
	b      *devchain.Bridge
	key    *btcec.PrivateKey
	node   *anchor.Node
	btc    *rpcclient.Client
	store  string
	a      *anchor.Anchorer
	params anchor.Config
}

func newAnchorEnv(t testing.TB) *anchorEnv {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	e := &anchorEnv{key: key, store: filepath.Join(t.TempDir(), "anchor.db")}
	e.params = anchor.Config{Key: key, Store: e.store, Generate: 1}
	addr := anchorAddress(t, key)
	e.node = anchortest.StartBtcd(t, addr)
	if e.btc, err = e.node.Client(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.btc.Shutdown)
	if _, err := e.btc.Generate(100); err != nil {
		t.Fatal(err)
	}
	e.b = devchain.NewTestBridge(t, "anchor", 1337, 31337, devchain.BridgeOptions{})
	e.params.BTC, e.params.Main, e.params.Manager = e.btc, e.b.Main.Client, e.b.Checkpoints
	e.open(t)
	return e
}

func anchorAddress(t testing.TB, key *btcec.PrivateKey) btcutil.Address {
	t.Helper()
	a, err := anchor.KeyAddress(key, &chaincfg.SimNetParams)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (e *anchorEnv) open(t testing.TB) {
	t.Helper()
	a, err := anchor.New(context.Background(), e.params)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	e.a = a
}

// submit has 3 of the 4 validators sign the next checkpoint, submits it and returns it as
// the CheckpointManager stores it.
func (e *anchorEnv) submit(t testing.TB) anchor.Checkpoint {
	t.Helper()
	e.b.Side.Commit()
	cp, err := e.b.NextCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Main.Transact(e.b.Main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(cp, e.b.Validators[:3]...), nil); err != nil {
		t.Fatal(err)
	}
	n, err := anchor.Count(context.Background(), e.b.Main.Client, e.b.Checkpoints)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := anchor.ReadCheckpoint(context.Background(), e.b.Main.Client, e.b.Checkpoints, n-1)
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

func TestCheckpointAnchoredInBtcdSimnet(t *testing.T) {
	ctx := context.Background()
	e := newAnchorEnv(t)
	cp0, cp1 := e.submit(t), e.submit(t)

	tx0, err := e.a.Anchor(ctx, cp0)
	if err != nil {
		t.Fatal(err)
	}
	p0, err := e.a.Verify(ctx, cp0)
	if err != nil {
		t.Fatal(err)
	}
	if p0.Txid != tx0 || p0.Height != 101 || p0.Confirmations != 1 || p0.Fee <= 0 || p0.Size == 0 {
		t.Fatalf("checkpoint 0's anchor: %+v (tx %s)", p0, tx0)
	}
	tx1, err := e.a.Anchor(ctx, cp1)
	if err != nil {
		t.Fatal(err)
	}
	if tx1 == tx0 {
		t.Fatal("two checkpoints, one transaction")
	}
	if _, err := e.btc.Generate(3); err != nil {
		t.Fatal(err)
	}
	p0, _ = e.a.Verify(ctx, cp0)
	p1, err := e.a.Verify(ctx, cp1)
	if err != nil {
		t.Fatal(err)
	}
	if p0.Confirmations != 5 || p1.Txid != tx1 || p1.Height != 102 || p1.Confirmations != 4 {
		t.Fatalf("after 3 more blocks: checkpoint 0 %+v, checkpoint 1 %+v", p0, p1)
	}

	// The node's own block holds the OP_RETURN with the checkpoint's hash: found again by a
	// scan that knows nothing of the anchorer.
	chainID, _ := e.b.Main.Client.ChainID(ctx)
	h1 := anchor.Hash(chainID, e.b.Checkpoints, cp1)
	found, err := anchor.Find(ctx, e.btc, 1, h1, anchor.ScanDepth)
	if err != nil {
		t.Fatal(err)
	}
	if found.Txid != tx1 || found.Block != p1.Block || found.Confirmations != 4 {
		t.Fatalf("Find: %+v, anchorer: %+v", found, p1)
	}
	block, err := e.btc.GetBlock(&p1.Block)
	if err != nil {
		t.Fatal(err)
	}
	if len(block.Transactions) != 2 || block.Transactions[1].TxHash() != tx1 {
		t.Fatalf("block %s: %d transactions", p1.Block, len(block.Transactions))
	}
	if _, err := anchor.Find(ctx, e.btc, 1, anchor.Hash(chainID, e.b.Checkpoints, cp0), anchor.ScanDepth); !errors.Is(err, anchor.ErrNotAnchored) {
		t.Fatalf("checkpoint 1 with checkpoint 0's hash: %v", err)
	}

	// Anchoring again does nothing, also from a reopened store.
	_, tip, _ := e.btc.GetBestBlock()
	for i := 0; i < 2; i++ {
		again, err := e.a.Anchor(ctx, cp0)
		if err != nil || again != tx0 {
			t.Fatalf("anchored again: %s %v", again, err)
		}
		e.a.Close()
		e.open(t)
	}
	pool, _ := e.btc.GetRawMempool()
	_, tipAfter, _ := e.btc.GetBestBlock()
	if len(pool) != 0 || tipAfter != tip {
		t.Fatalf("anchoring again: %d in the mempool, tip %d → %d", len(pool), tip, tipAfter)
	}

	// A checkpoint the main chain does not hold is refused.
	if _, err := e.a.Anchor(ctx, anchor.Checkpoint{Number: 2, CheckpointManagerStored: cp1.CheckpointManagerStored}); !errors.Is(err, anchor.ErrUnknownCheckpoint) {
		t.Fatalf("checkpoint 2 (not submitted): %v", err)
	}
	forged := cp1
	forged.BlockRoot[0] ^= 1
	if _, err := e.a.Anchor(ctx, forged); !errors.Is(err, anchor.ErrNotOnMainChain) {
		t.Fatalf("checkpoint 1 with another block root: %v", err)
	}
	if _, err := e.a.Verify(ctx, forged); !errors.Is(err, anchor.ErrNotOnMainChain) {
		t.Fatalf("verify a forged checkpoint: %v", err)
	}
	pool, _ = e.btc.GetRawMempool()
	if len(pool) != 0 {
		t.Fatalf("refused checkpoints sent %d transactions", len(pool))
	}
}

// BenchmarkCheckpointAnchor times a checkpoint's anchor from Anchor to mined in a block
// (simnet: `generate 1` at once) and reports the transaction's size and fee.
func BenchmarkCheckpointAnchor(b *testing.B) {
	ctx := context.Background()
	e := newAnchorEnv(b)
	var size, fee int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cp := e.submit(b)
		b.StartTimer()
		if _, err := e.a.Anchor(ctx, cp); err != nil {
			b.Fatal(err)
		}
		p, err := e.a.Verify(ctx, cp)
		if err != nil || p.Confirmations != 1 {
			b.Fatalf("%+v %v", p, err)
		}
		size, fee = int64(p.Size), p.Fee
	}
	b.ReportMetric(float64(size), "tx-bytes")
	b.ReportMetric(float64(fee), "fee-sat")
}

// With no `generate`, anchors wait in the mempool (the second spending the first's change);
// a btcd restarted without them gets them again from the anchorer's store, and a block
// mines both.
func TestCheckpointAnchorWaitsForMiners(t *testing.T) {
	ctx := context.Background()
	e := newAnchorEnv(t)
	e.a.Close()
	e.params.Generate = 0
	e.open(t)
	cp0, cp1 := e.submit(t), e.submit(t)
	tx0, err := e.a.Anchor(ctx, cp0)
	if err != nil {
		t.Fatal(err)
	}
	tx1, err := e.a.Anchor(ctx, cp1)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range []anchor.Checkpoint{cp0, cp1} {
		p, err := e.a.Verify(ctx, cp)
		if err != nil || p.Confirmations != 0 || p.Height != 0 {
			t.Fatalf("checkpoint %d in the mempool: %+v %v", cp.Number, p, err)
		}
	}
	raw1, err := e.btc.GetRawTransaction(&tx1)
	if err != nil {
		t.Fatal(err)
	}
	if in := raw1.MsgTx().TxIn; len(in) != 1 || in[0].PreviousOutPoint.Hash != tx0 {
		t.Fatalf("checkpoint 1's anchor spends %v, not checkpoint 0's change", in[0].PreviousOutPoint)
	}

	e.restartBtcd(t)
	if _, err := e.a.Verify(ctx, cp0); err != nil {
		t.Fatal(err)
	}
	if pool, _ := e.btc.GetRawMempool(); len(pool) != 2 {
		t.Fatalf("after the anchorer's sync btcd has %d transactions, want both anchors", len(pool))
	}
	if _, err := e.btc.Generate(1); err != nil {
		t.Fatal(err)
	}
	p0, err0 := e.a.Verify(ctx, cp0)
	p1, err1 := e.a.Verify(ctx, cp1)
	if err0 != nil || err1 != nil || p0.Txid != tx0 || p1.Txid != tx1 || p0.Confirmations != 1 || p0.Block != p1.Block {
		t.Fatalf("mined: %+v %v, %+v %v", p0, err0, p1, err1)
	}
}

// restartBtcd stops btcd (which keeps no mempool across a restart), starts it again on the
// same chain and reopens the Anchorer with the new client.
func (e *anchorEnv) restartBtcd(t *testing.T) {
	t.Helper()
	e.node.Stop()
	node, err := anchor.StartSimnet(context.Background(), anchor.NodeOptions{Bin: anchortest.BtcdPath(), Dir: e.node.Dir, MiningAddr: anchorAddress(t, e.key)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(node.Stop)
	e.node = node
	if e.btc, err = node.Client(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.btc.Shutdown)
	if pool, _ := e.btc.GetRawMempool(); len(pool) != 0 {
		t.Fatalf("restarted btcd has %d transactions", len(pool))
	}
	e.a.Close()
	e.params.BTC = e.btc
	e.open(t)
}

// A second anchorer (the same key, its own store) anchors checkpoint 0 in a block while the
// first one's anchor, spending the same coin, is lost from btcd's mempool: the first drops its
// refused anchor, verifies and does not anchor checkpoint 0 again, and anchors checkpoint 1.
func TestCheckpointAnchorConflict(t *testing.T) {
	ctx := context.Background()
	e := newAnchorEnv(t)
	e.a.Close()
	e.params.Generate = 0
	e.open(t)
	cp0, cp1 := e.submit(t), e.submit(t)
	if _, err := e.a.Anchor(ctx, cp0); err != nil {
		t.Fatal(err)
	}
	e.restartBtcd(t)

	other := e.params
	// Another fee rate: the same coin and payload would otherwise make the same transaction.
	other.Store, other.Generate, other.FeeRate = filepath.Join(t.TempDir(), "other.db"), 1, 3
	b, err := anchor.New(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	theirs, err := b.Anchor(ctx, cp0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.a.Verify(ctx, cp0)
	if err != nil || p.Txid != theirs || p.Height != 101 || p.Confirmations != 1 {
		t.Fatalf("checkpoint 0 after the other anchorer: %+v %v (theirs %s)", p, err, theirs)
	}
	if e.a.Anchored(0) {
		t.Fatal("the refused anchor is still remembered")
	}
	again, err := e.a.Anchor(ctx, cp0)
	if err != nil || again != theirs {
		t.Fatalf("anchor checkpoint 0 again: %s %v", again, err)
	}
	if pool, _ := e.btc.GetRawMempool(); len(pool) != 0 {
		t.Fatalf("checkpoint 0 anchored twice: %d in the mempool", len(pool))
	}
	tx1, err := e.a.Anchor(ctx, cp1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.btc.Generate(1); err != nil {
		t.Fatal(err)
	}
	if p, err := e.a.Verify(ctx, cp1); err != nil || p.Txid != tx1 || p.Confirmations != 1 {
		t.Fatalf("checkpoint 1: %+v %v", p, err)
	}
}

// A proof-of-work reorganisation (btcd's invalidateblock) takes the anchor's block away: the
// anchorer reads the chain again, finds the anchor in its new block, and the confirmations
// count from there.
func TestCheckpointAnchorReorg(t *testing.T) {
	ctx := context.Background()
	e := newAnchorEnv(t)
	cp0 := e.submit(t)
	tx0, err := e.a.Anchor(ctx, cp0)
	if err != nil {
		t.Fatal(err)
	}
	before, err := e.a.Verify(ctx, cp0)
	if err != nil || before.Height != 101 {
		t.Fatalf("%+v %v", before, err)
	}
	param, _ := json.Marshal(before.Block.String())
	if _, err := e.btc.RawRequest("invalidateblock", []json.RawMessage{param}); err != nil {
		t.Fatal(err)
	}
	if _, tip, _ := e.btc.GetBestBlock(); tip != 100 {
		t.Fatalf("tip after invalidateblock: %d", tip)
	}
	// The anchor went back to the mempool; two new blocks make the longer chain.
	if p, err := e.a.Verify(ctx, cp0); err != nil || p.Txid != tx0 || p.Confirmations != 0 {
		t.Fatalf("anchor with its block invalidated: %+v %v", p, err)
	}
	if _, err := e.btc.Generate(2); err != nil {
		t.Fatal(err)
	}
	after, err := e.a.Verify(ctx, cp0)
	if err != nil || after.Txid != tx0 || after.Block == before.Block || after.Height != 101 || after.Confirmations != 2 {
		t.Fatalf("after the reorganisation: %+v %v (before %+v)", after, err, before)
	}
	if hash, _ := e.btc.GetBlockHash(101); *hash != after.Block {
		t.Fatalf("block 101 is %s, the anchorer says %s", hash, after.Block)
	}
}
