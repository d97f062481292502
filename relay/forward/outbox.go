package forward

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The outbox: every accepted request by ID, and the unfinished ones in acceptance order.
var (
	bucketRequests = []byte("requests") // ID → record (JSON)
	bucketQueue    = []byte("queue")    // sequence (uint64 big-endian) → ID, unfinished only
)

// record is one request as the outbox keeps it. Value is not stored: it is always 0.
type record struct {
	ID         common.Hash    `json:"id"`
	Seq        uint64         `json:"seq"`
	From       common.Address `json:"from"`
	To         common.Address `json:"to"`
	Gas        uint64         `json:"gas"`
	Nonce      uint64         `json:"nonce"`
	Deadline   uint64         `json:"deadline"`
	Data       hexutil.Bytes  `json:"data"`
	Signature  hexutil.Bytes  `json:"signature"`
	State      State          `json:"state"`
	Reason     string         `json:"reason,omitempty"`
	AcceptedAt time.Time      `json:"acceptedAt"`
	UpdatedAt  time.Time      `json:"updatedAt"`

	// Sending: the hot-wallet nonce and every transaction signed for it, latest last. Each
	// is written here before it is broadcast, so a restart re-sends these exact bytes.
	TxNonce  *uint64   `json:"txNonce,omitempty"`
	Attempts []attempt `json:"attempts,omitempty"`
	// Mining.
	TxHash common.Hash `json:"txHash,omitzero"`
	Block  uint64      `json:"block,omitempty"`
}

type attempt struct {
	Hash   common.Hash   `json:"hash"`
	Raw    hexutil.Bytes `json:"raw"`
	Tip    *big.Int      `json:"tip"`
	FeeCap *big.Int      `json:"feeCap"`
	SentAt time.Time     `json:"sentAt"`
}

func (r *record) clone() *record {
	c := *r
	c.Attempts = slices.Clone(r.Attempts)
	if r.TxNonce != nil {
		n := *r.TxNonce
		c.TxNonce = &n
	}
	return &c
}

func (r *record) last() *attempt {
	if len(r.Attempts) == 0 {
		return nil
	}
	return &r.Attempts[len(r.Attempts)-1]
}

func (r *record) status() Status {
	st := Status{
		ID: r.ID, State: r.State, From: r.From, Nonce: r.Nonce,
		TxHash: r.TxHash, Block: r.Block, Reason: r.Reason, Time: r.UpdatedAt,
	}
	if a := r.last(); a != nil && st.TxHash == (common.Hash{}) {
		st.TxHash = a.Hash
	}
	return st
}

// entry is an unfinished record in memory. After it is queued only the sender changes it.
type entry struct {
	rec *record

	missing    int    // sender checks that found its nonce used but no receipt of ours
	deferNonce uint64 // a revert is final once the hot wallet's mined nonce reaches this
	deferred   bool
	lastResend time.Time
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

func (f *Forwarder) get(id common.Hash) (*record, error) {
	var rec *record
	err := f.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketRequests).Get(id[:])
		if v == nil {
			return fmt.Errorf("%w: %s", ErrUnknownRequest, id)
		}
		rec = new(record)
		return json.Unmarshal(v, rec)
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil, ErrClosed
	}
	return rec, err
}

// write is one Submit waiting for the group committer.
type write struct {
	rec  *record
	done chan writeResult
}

type writeResult struct {
	state State
	fresh bool
	err   error
}

const maxGroup = 512

// accept writes rec to the outbox and returns once it is on disk. Concurrent Submits share
// one bbolt transaction — one fsync — which is what makes a thousand a second possible on a
// disk that takes milliseconds per fsync.
func (f *Forwarder) accept(ctx context.Context, rec *record) (State, bool, error) {
	w := &write{rec: rec, done: make(chan writeResult, 1)}
	select {
	case f.writes <- w:
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	// Once queued the write completes even if ctx ends: the answer must match the disk.
	r := <-w.done
	if r.err != nil {
		return "", false, r.err
	}
	return r.state, r.fresh, nil
}

func (f *Forwarder) commitLoop() {
	defer close(f.commitDone)
	for {
		var batch []*write
		select {
		case w := <-f.writes:
			batch = append(batch, w)
		case <-f.stopCommit:
			return
		}
		// Whatever queued while the last commit was fsyncing goes into this one.
	more:
		for len(batch) < maxGroup {
			select {
			case w := <-f.writes:
				batch = append(batch, w)
			default:
				break more
			}
		}
		f.commitGroup(batch)
	}
}

func (f *Forwarder) commitGroup(batch []*write) {
	results := make([]writeResult, len(batch))
	err := f.db.Update(func(tx *bbolt.Tx) error {
		reqs, queue := tx.Bucket(bucketRequests), tx.Bucket(bucketQueue)
		for i, w := range batch {
			if v := reqs.Get(w.rec.ID[:]); v != nil {
				var old record
				if err := json.Unmarshal(v, &old); err != nil {
					return fmt.Errorf("decode request %s: %w", w.rec.ID, err)
				}
				results[i] = writeResult{state: old.State}
				continue
			}
			seq, err := queue.NextSequence()
			if err != nil {
				return err
			}
			w.rec.Seq = seq
			v, err := json.Marshal(w.rec)
			if err != nil {
				return err
			}
			if err := reqs.Put(w.rec.ID[:], v); err != nil {
				return err
			}
			if err := queue.Put(seqKey(seq), w.rec.ID[:]); err != nil {
				return err
			}
			results[i] = writeResult{state: w.rec.State, fresh: true}
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("forward: write outbox: %w", err)
		for _, w := range batch {
			w.done <- writeResult{err: err}
		}
		return
	}
	// The sender and the nonce check must see the new entries before Submit answers.
	f.mu.Lock()
	for i, w := range batch {
		if results[i].fresh {
			f.queue = append(f.queue, &entry{rec: w.rec})
			f.pending[w.rec.From] = append(f.pending[w.rec.From], w.rec.Nonce)
		}
	}
	f.mu.Unlock()
	for i, w := range batch {
		w.done <- results[i]
	}
}

// load creates the buckets, drops finished requests past retention, and queues what a
// previous run left unfinished.
func (f *Forwarder) load(ctx context.Context) error {
	cutoff := f.now().Add(-f.cfg.Retention)
	var unfinished []*record
	err := f.db.Update(func(tx *bbolt.Tx) error {
		reqs, err := tx.CreateBucketIfNotExists(bucketRequests)
		if err != nil {
			return err
		}
		queue, err := tx.CreateBucketIfNotExists(bucketQueue)
		if err != nil {
			return err
		}
		var stale [][]byte
		err = reqs.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decode request %x: %w", k, err)
			}
			if r.State.Final() && r.UpdatedAt.Before(cutoff) {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := reqs.Delete(k); err != nil {
				return err
			}
		}
		return queue.ForEach(func(_, id []byte) error {
			v := reqs.Get(id)
			if v == nil {
				return fmt.Errorf("queued request %x is missing", id)
			}
			r := new(record)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("decode request %x: %w", id, err)
			}
			unfinished = append(unfinished, r)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("forward: load outbox: %w", err)
	}

	pendingNonce, err := f.client.PendingNonceAt(ctx, f.hot)
	if err != nil {
		return fmt.Errorf("forward: read hot wallet nonce: %w", err)
	}
	f.nextNonce = pendingNonce
	for _, r := range unfinished {
		f.queue = append(f.queue, &entry{rec: r})
		f.pending[r.From] = append(f.pending[r.From], r.Nonce)
		// Transactions written but perhaps never broadcast still own their nonces.
		if r.TxNonce != nil && *r.TxNonce >= f.nextNonce {
			f.nextNonce = *r.TxNonce + 1
		}
	}
	if len(unfinished) > 0 {
		f.log.Info("outbox has unfinished requests from a previous run", "count", len(unfinished), "nextNonce", f.nextNonce)
	}
	return nil
}

// change is a new version of an entry's record, applied once it is on disk.
type change struct {
	e    *entry
	next *record
}

// persist writes the changes in one transaction, then applies them in memory and reports
// the status changes. Finished entries leave the queue.
func (f *Forwarder) persist(changes []change) error {
	if len(changes) == 0 {
		return nil
	}
	now := f.now()
	err := f.db.Update(func(tx *bbolt.Tx) error {
		reqs, queue := tx.Bucket(bucketRequests), tx.Bucket(bucketQueue)
		for _, c := range changes {
			c.next.UpdatedAt = now
			v, err := json.Marshal(c.next)
			if err != nil {
				return err
			}
			if err := reqs.Put(c.next.ID[:], v); err != nil {
				return err
			}
			if c.next.State.Final() {
				if err := queue.Delete(seqKey(c.next.Seq)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forward: write outbox: %w", err)
	}
	var notify []Status
	var done []*entry
	for _, c := range changes {
		prev := c.e.rec.State
		c.e.rec = c.next
		if c.next.State != prev {
			notify = append(notify, c.next.status())
		}
		if c.next.State.Final() {
			done = append(done, c.e)
		}
	}
	if len(done) > 0 {
		f.mu.Lock()
		for _, e := range done {
			f.queue = slices.DeleteFunc(f.queue, func(q *entry) bool { return q == e })
			nonces := f.pending[e.rec.From]
			if i := slices.Index(nonces, e.rec.Nonce); i >= 0 {
				nonces = slices.Delete(nonces, i, i+1)
			}
			if len(nonces) == 0 {
				delete(f.pending, e.rec.From)
			} else {
				f.pending[e.rec.From] = nonces
			}
		}
		f.mu.Unlock()
	}
	for _, st := range notify {
		f.notify(st)
	}
	return nil
}

func (f *Forwarder) snapshot() []*entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queue)
}
