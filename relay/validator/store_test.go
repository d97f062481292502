package validator

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"go.etcd.io/bbolt"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
	"github.com/stagepass/stagepass/relay/oracle"
)

// aggregatorAt is the relay's aggregator as it starts on the store at `path`: the env's
// submitter key on the same two chains. The env's validators report to it from now on.
func (e *env) aggregatorAt(path string, log *slog.Logger) *Aggregator {
	e.t.Helper()
	submitter := devchain.NewAccount(e.t.Name()+"/submitter", 0)
	agg, err := NewAggregator(context.Background(), AggregatorConfig{
		Main: e.main.Client, Side: e.side.Client, MainChainID: e.main.ChainID, SideChainID: e.side.ChainID,
		Root: e.b.Root, Child: e.b.Child, Key: submitter.Key, Poll: 20 * time.Millisecond, Path: path, Logger: log,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { agg.Close() })
	for _, n := range e.nodes {
		n.cfg.Relay = agg
	}
	return agg
}

// runAgg runs `agg` and seals a block on both chains every 20 ms until stop.
func (e *env) runAgg(agg *Aggregator) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = agg.Run(ctx) }()
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.main.Commit()
				e.side.Commit()
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	e.t.Cleanup(stop)
	return stop
}

// storeEnv is a bridge of four validators checkpointing every 2 sidechain blocks, three
// blocks already sealed, and an aggregator keeping its store at path (returned as first).
func storeEnv(t *testing.T) (e *env, path string, first *Aggregator) {
	t.Helper()
	e = newEnv(t, devchain.BridgeOptions{}, NodeConfig{Every: 2})
	for range 3 {
		e.side.Commit()
	}
	path = filepath.Join(t.TempDir(), "validators.db")
	return e, path, e.aggregatorAt(path, nil)
}

// sent is how many transactions the submitter sent on the main chain (its nonce).
func (e *env) sent(agg *Aggregator) uint64 { return e.nonce(e.main, agg.main.Address()) }

// sentSide is how many transactions the submitter sent on the sidechain.
func (e *env) sentSide(agg *Aggregator) uint64 { return e.nonce(e.side, agg.side.Address()) }

func (e *env) nonce(c *devchain.Chain, a common.Address) uint64 {
	e.t.Helper()
	n, err := c.Client.NonceAt(context.Background(), a, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// records counts the store's records per bucket (the aggregator on it closed).
func records(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]int{}
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			out[string(name)] = b.Stats().KeyN
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// quiet steps `agg` with blocks in between and checks it sends nothing.
func (e *env) quiet(agg *Aggregator) {
	e.t.Helper()
	before, beforeSide := e.sent(agg), e.sentSide(agg)
	for range 10 {
		if err := agg.Step(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		e.main.Commit()
		e.side.Commit()
	}
	if after := e.sent(agg); after != before {
		e.t.Fatalf("a restarted aggregator sent %d transactions with nothing left to do", after-before)
	}
	if after := e.sentSide(agg); after != beforeSide {
		e.t.Fatalf("a restarted aggregator sent %d sidechain transactions with nothing left to do", after-beforeSide)
	}
}

// TestCheckpointQuorumSubmittedAfterRestart: three of four validators sign a checkpoint,
// the relay stops before submitting it, and the validators stop too. A new aggregator on
// the same store submits it without any validator resending; a third start submits nothing.
func TestCheckpointQuorumSubmittedAfterRestart(t *testing.T) {
	e, path, first := storeEnv(t)
	ctx := context.Background()
	cp, ok, err := e.nodes[0].NextCheckpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("next checkpoint: %v %v", ok, err)
	}
	for _, n := range e.nodes[:3] {
		if err := n.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if g := first.groups[first.digestOf(t, cp)]; g == nil || !g.ready || len(g.sigs) != 3 {
		t.Fatalf("before the restart: %+v", g)
	}
	first.Close() // stopped before its first Step: nothing sent
	if n := e.count(); n != 0 {
		t.Fatalf("%d checkpoints before the restart", n)
	}
	if r := records(t, path); r["signatures"] != 3 || r["sent"] != 0 {
		t.Fatalf("store after the signatures: %v", r)
	}

	second := e.aggregatorAt(path, nil)
	stop := e.runAgg(second)
	e.waitFor("the checkpoint signed before the restart", 30*time.Second, func() bool { return e.count() == 1 && second.Submitted() == 1 })
	stop()
	second.Close()
	if got := e.checkpoint(0); got.StartBlock != cp.StartBlock.Uint64() || got.EndBlock != cp.EndBlock.Uint64() || got.BlockRoot != cp.BlockRoot {
		t.Fatalf("checkpoint %d..%d %x, signed %d..%d %x", got.StartBlock, got.EndBlock, got.BlockRoot, cp.StartBlock, cp.EndBlock, cp.BlockRoot)
	}
	if r := records(t, path); r["signatures"] != 0 || r["sent"] != 0 {
		t.Fatalf("store after the checkpoint: %v", r)
	}

	third := e.aggregatorAt(path, nil)
	e.quiet(third)
	if n, s := e.count(), third.Submitted(); n != 1 || s != 0 {
		t.Fatalf("after a second restart: %d checkpoints, %d submitted", n, s)
	}
}

// TestCheckpointSentBeforeRestartFollowed: the relay stops after sending a checkpoint and
// before it is mined; the restarted aggregator follows that transaction instead of sending
// the checkpoint again.
func TestCheckpointSentBeforeRestartFollowed(t *testing.T) {
	e, path, first := storeEnv(t)
	ctx := context.Background()
	for _, n := range e.nodes[:3] {
		if err := n.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Step(ctx); err != nil { // sent; no block sealed yet
		t.Fatal(err)
	}
	first.Close()
	if r := records(t, path); r["signatures"] != 3 || r["sent"] != 1 {
		t.Fatalf("store after sending: %v", r)
	}

	second := e.aggregatorAt(path, nil)
	e.waitFor("the checkpoint sent before the restart", 30*time.Second, func() bool {
		e.main.Commit()
		if err := second.Step(ctx); err != nil {
			t.Fatal(err)
		}
		return e.count() == 1 && second.Submitted() == 1
	})
	if n := e.sent(second); n != 1 {
		t.Fatalf("the submitter sent %d transactions on the main chain, want 1", n)
	}
	second.Close()
	if r := records(t, path); r["signatures"] != 0 || r["sent"] != 0 {
		t.Fatalf("store after the checkpoint: %v", r)
	}
}

// TestCheckpointEquivocationSlashedAfterRestart: the relay sees a validator sign two roots
// for one range and stops before slashing it. The restarted aggregator still refuses the
// validator and slashes it, once; a second restart sends nothing.
func TestCheckpointEquivocationSlashedAfterRestart(t *testing.T) {
	e, path, first := storeEnv(t)
	ctx := context.Background()
	cheat := e.b.Validators[3]
	cp, ok, err := e.nodes[3].NextCheckpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("next checkpoint: %v %v", ok, err)
	}
	if _, err := first.Submit(ctx, signCheckpoint(t, e, cheat.Key, cp)); err != nil {
		t.Fatal(err)
	}
	forked := cp
	forked.BlockRoot[0] ^= 1
	if _, err := first.Submit(ctx, signCheckpoint(t, e, cheat.Key, forked)); !errors.Is(err, ErrEquivocation) {
		t.Fatalf("a second root: %v", err)
	}
	first.Close()
	if r := records(t, path); r["offences"] != 1 || r["signatures"] != 0 {
		t.Fatalf("store after the equivocation: %v", r)
	}

	second := e.aggregatorAt(path, nil)
	if _, err := second.Submit(ctx, signCheckpoint(t, e, cheat.Key, cp)); !errors.Is(err, ErrEquivocation) || !errors.Is(err, oracle.ErrRefused) {
		t.Fatalf("the equivocating validator after the restart: %v", err)
	}
	stop := e.runAgg(second)
	e.waitFor("the slash", 30*time.Second, func() bool {
		p, err := stakes(ctx, e.main.Client, e.b.Stake)
		return err == nil && p.of[cheat.Address] == nil && second.Slashed() == 1
	})
	stop()
	second.Close()
	if r := records(t, path); r["offences"] != 0 {
		t.Fatalf("store after the slash: %v", r)
	}

	third := e.aggregatorAt(path, nil)
	e.quiet(third)
	logs, err := e.main.Client.FilterLogs(ctx, ethereum.FilterQuery{Addresses: []common.Address{e.b.Stake}})
	if err != nil {
		t.Fatal(err)
	}
	slashes := 0
	for _, l := range logs {
		if ev, err := devchain.Stake.UnpackSlashedEvent(&l); err == nil {
			slashes++
			if ev.Validator != cheat.Address {
				t.Fatalf("slashed %s", ev.Validator.Hex())
			}
		}
	}
	if slashes != 1 || third.Slashed() != 0 {
		t.Fatalf("%d Slashed events, %d by the third start", slashes, third.Slashed())
	}
}

// TestCheckpointStoreBadRecordsSkipped: unreadable records, a signature filed under another
// signer and evidence that proves nothing are logged and skipped, and left in the file; the
// good signature beside them is reloaded. A file of another schema or another program is
// refused with an error naming it.
func TestCheckpointStoreBadRecordsSkipped(t *testing.T) {
	e, path, first := storeEnv(t)
	ctx := context.Background()
	cp, ok, err := e.nodes[0].NextCheckpoint(ctx)
	if err != nil || !ok {
		t.Fatalf("next checkpoint: %v %v", ok, err)
	}
	if _, err := first.Submit(ctx, signCheckpoint(t, e, e.b.Validators[0].Key, cp)); err != nil {
		t.Fatal(err)
	}
	digest := first.digestOf(t, cp)
	first.Close()

	v1, v2 := e.b.Validators[1], e.b.Validators[2]
	same := offenceRecord{
		A: signedJSON{Checkpoint: checkpointJSON(cp), Signature: signCheckpoint(t, e, v2.Key, cp).Signature},
		B: signedJSON{Checkpoint: checkpointJSON(cp), Signature: signCheckpoint(t, e, v2.Key, cp).Signature},
	}
	err = update(t, path, func(tx *bbolt.Tx) error {
		s, o, sent := tx.Bucket(bucketSignatures), tx.Bucket(bucketOffences), tx.Bucket(bucketSent)
		foreign, _ := json.Marshal(signCheckpoint(t, e, v1.Key, cp))
		evidence, _ := json.Marshal(same)
		return errors.Join(
			s.Put([]byte("short"), []byte("x")),
			s.Put(sigKey([32]byte{1}, v1.Address), []byte("{not json")),
			s.Put(sigKey(digest, v2.Address), foreign), // v1's signature filed as v2's
			o.Put([]byte{7}, []byte("garbage")),
			o.Put(v2.Address[:], evidence), // one root twice: no equivocation
			sent.Put([]byte{1, 2, 3}, []byte{4}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	var log syncbuf.Buffer
	second := e.aggregatorAt(path, slog.New(slog.NewTextHandler(&log, nil)))
	if n := strings.Count(log.String(), "skipping"); n != 6 {
		t.Fatalf("%d records skipped, want 6:\n%s", n, log.String())
	}
	g := second.groups[digest]
	if g == nil || len(g.sigs) != 1 || g.sigs[e.b.Validators[0].Address] == nil {
		t.Fatalf("the good signature was not reloaded: %+v", g)
	}
	if rc, err := second.Submit(ctx, signCheckpoint(t, e, v2.Key, cp)); err != nil || rc.Signatures != 2 {
		t.Fatalf("the validator the bogus evidence names: %+v %v", rc, err)
	}
	second.Close()
	if r := records(t, path); r["signatures"] != 4 || r["offences"] != 2 || r["sent"] != 1 {
		t.Fatalf("the skipped records were not kept: %v", r)
	}

	if err := update(t, path, func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("2")) }); err != nil {
		t.Fatal(err)
	}
	submitter := devchain.NewAccount(t.Name()+"/submitter", 0)
	cfg := AggregatorConfig{
		Main: e.main.Client, Side: e.side.Client, MainChainID: e.main.ChainID, SideChainID: e.side.ChainID,
		Root: e.b.Root, Child: e.b.Child, Key: submitter.Key, Path: path,
	}
	if _, err := NewAggregator(ctx, cfg); err == nil || !strings.Contains(err.Error(), `schema "2"`) {
		t.Fatalf("a newer schema: %v", err)
	}
	other := filepath.Join(t.TempDir(), "payments.db")
	if err := update(t, other, func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("payment-refs")); return err }); err != nil {
		t.Fatal(err)
	}
	cfg.Path = other
	if _, err := NewAggregator(ctx, cfg); err == nil || !strings.Contains(err.Error(), "not a validator signatures store") {
		t.Fatalf("another program's file: %v", err)
	}
}

func update(t *testing.T, path string, f func(*bbolt.Tx) error) error {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Update(f)
}

func (a *Aggregator) digestOf(t *testing.T, cp mainchain.Checkpoint) [32]byte {
	t.Helper()
	d, err := checkpointDigest(context.Background(), a.cfg.Main, a.c.Stake, cp)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCheckpointCoveredWhileDownForgotten: signatures kept for a checkpoint that another
// submitter got accepted while this relay was down are forgotten at its restart, and
// nothing is sent for them.
func TestCheckpointCoveredWhileDownForgotten(t *testing.T) {
	e, path, first := storeEnv(t)
	ctx := context.Background()
	for _, n := range e.nodes[:3] {
		if err := n.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first.Close()
	for _, n := range e.nodes[:3] { // meanwhile the validators report to another relay
		n.cfg.Relay = e.agg
		n.sentCP = map[[2]uint64]time.Time{}
		if err := n.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.agg.Step(ctx); err != nil {
		t.Fatal(err)
	}
	e.main.Commit()
	if n := e.count(); n != 1 {
		t.Fatalf("the other relay's checkpoint: %d", n)
	}

	var log syncbuf.Buffer
	second := e.aggregatorAt(path, slog.New(slog.NewTextHandler(&log, nil)))
	if len(second.groups) != 0 || !strings.Contains(log.String(), "forgotten=3") {
		t.Fatalf("after the restart: %d reports; log:\n%s", len(second.groups), log.String())
	}
	e.quiet(second)
	second.Close()
	if r := records(t, path); r["signatures"] != 0 || r["sent"] != 0 {
		t.Fatalf("store after the restart: %v", r)
	}
}

// TestCheckpointStoreDepositsMintedAfterRestart: a deposit attested by 3 of 4 validators
// before the relay stopped is minted on the sidechain by the restarted aggregator, once.
func TestCheckpointStoreDepositsMintedAfterRestart(t *testing.T) {
	e := newEnv(t, devchain.BridgeOptions{}, NodeConfig{Confirmations: 3, Every: 1 << 20, Resend: time.Nanosecond})
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "validators.db")
	first := e.aggregatorAt(path, nil)
	fan := e.side.Accounts[0]
	block := e.deposit(e.main.Accounts[0], fan.Address, devchain.USDC(70))
	for e.head(e.main) < block+2 {
		e.main.Commit()
	}
	for _, n := range e.nodes[:3] {
		if err := n.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	first.Close()
	if r := records(t, path); r["signatures"] != 3 {
		t.Fatalf("store after the attestations: %v", r)
	}
	if got := e.childBalance(fan.Address); got.Sign() != 0 {
		t.Fatalf("minted before the restart: %v", got)
	}

	second := e.aggregatorAt(path, nil)
	for range 3 {
		if err := second.Step(ctx); err != nil {
			t.Fatal(err)
		}
		e.side.Commit()
	}
	if got := e.childBalance(fan.Address); got.Cmp(devchain.USDC(70)) != 0 {
		t.Fatalf("after the restart the fan holds %v", got)
	}
	second.Close()
	if r := records(t, path); r["signatures"] != 0 || r["sent"] != 0 {
		t.Fatalf("store after the mint: %v", r)
	}
	third := e.aggregatorAt(path, nil)
	e.quiet(third)
	if got := e.childBalance(fan.Address); got.Cmp(devchain.USDC(70)) != 0 {
		t.Fatalf("credited again: %v", got)
	}
}
