package oracle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The aggregator's ledger: every payment the relay created an intent for (payment id →
// processor id, so nodes can look it up after a restart), and the ones still open (not yet
// minted, refunded or given up), which the reconciler checks against the chain.
var (
	bucketRefs = []byte("payment-refs") // payment id → paymentRecord (JSON)
	bucketOpen = []byte("payment-open") // payment id → empty
)

type paymentRecord struct {
	Ref     string `json:"ref"`
	Created int64  `json:"created"` // unix seconds
}

type store struct{ db *bbolt.DB }

func openStore(path string) (*store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open the payments ledger %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketRefs, bucketOpen} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) put(pid [32]byte, ref string) error {
	raw, err := json.Marshal(paymentRecord{Ref: ref, Created: time.Now().Unix()})
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketRefs).Get(pid[:]) != nil {
			return nil
		}
		if err := tx.Bucket(bucketRefs).Put(pid[:], raw); err != nil {
			return err
		}
		return tx.Bucket(bucketOpen).Put(pid[:], nil)
	})
}

func (s *store) get(pid [32]byte) (paymentRecord, bool, error) {
	var rec paymentRecord
	found := false
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketRefs).Get(pid[:])
		if raw == nil {
			return nil
		}
		found = true
		return json.Unmarshal(raw, &rec)
	})
	return rec, found, err
}

func (s *store) open() ([][32]byte, error) {
	var out [][32]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketOpen).ForEach(func(k, _ []byte) error {
			var pid [32]byte
			copy(pid[:], k)
			out = append(out, pid)
			return nil
		})
	})
	return out, err
}

func (s *store) close(pid [32]byte) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketOpen).Delete(pid[:]) })
}

// reconcile checks each open payment against the hub, so that what happened while the
// relay was down (or between a report's transaction and its settlement) completes exactly
// as if it had not: minted payments show as minted, a purchase that failed at mint time is
// refunded, and a payment captured but never requested on chain within Expire is refunded.
func (a *Aggregator) reconcile(ctx context.Context) error {
	if a.store == nil {
		return nil
	}
	pids, err := a.store.open()
	if err != nil {
		return err
	}
	var errs []error
	for _, pid := range pids {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := a.reconcileOne(ctx, pid); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *Aggregator) reconcileOne(ctx context.Context, pid [32]byte) error {
	rec, _, err := a.store.get(pid)
	if err != nil {
		return err
	}
	pay, err := hubPayment(ctx, a.cfg.Client, a.cfg.Hub, pid)
	if err != nil {
		return err
	}
	switch pay.Status {
	case statusMinted:
		a.mu.Lock()
		if p, ok := a.progress[pid]; !ok || p.State != protocol.PaymentMinted {
			a.update(pid, func(p *protocol.PaymentProgress) {
				p.State, p.FirstTokenID, p.Quantity = protocol.PaymentMinted, pay.FirstTokenId.String(), pay.Quantity.Uint64()
				p.Event = strings.ToLower(pay.TicketEvent.Hex())
			})
		}
		a.mu.Unlock()
		return a.store.close(pid)
	case statusFailed:
		if err := a.refund(ctx, rec.Ref); err != nil {
			return err
		}
		a.mu.Lock()
		if p, ok := a.progress[pid]; !ok || p.State != protocol.PaymentFailed {
			a.update(pid, func(p *protocol.PaymentProgress) {
				p.State, p.Reason = protocol.PaymentFailed, "a rule refused the mint; the payment is refunded"
			})
		}
		a.mu.Unlock()
		return a.store.close(pid)
	case statusRefunded, statusChargedBack:
		return a.store.close(pid)
	case statusNone:
		if time.Since(time.Unix(rec.Created, 0)) < a.cfg.Expire || a.cfg.Processor == nil {
			return nil
		}
		// Paid (perhaps), but never requested on chain: nothing can mint it now that the
		// relay stops vouching for it, so give the money back.
		in, err := a.cfg.Processor.Retrieve(ctx, rec.Ref)
		if err != nil {
			return fmt.Errorf("check unrequested payment %s: %w", rec.Ref, err)
		}
		if in.Status == payments.StatusSucceeded {
			if err := a.refund(ctx, rec.Ref); err != nil {
				return err
			}
			a.cfg.Logger.Info("refunded a payment that was never requested on chain", "payment", rec.Ref)
		}
		return a.store.close(pid)
	}
	return nil // requested or capturing: the nodes and the sender are on it
}

// refund refunds a payment in full unless it is refunded already.
func (a *Aggregator) refund(ctx context.Context, ref string) error {
	if a.cfg.Processor == nil || ref == "" {
		return nil
	}
	if in, err := a.cfg.Processor.Retrieve(ctx, ref); err == nil && in.AmountRefunded > 0 {
		return nil // refunded already (an earlier attempt, or the issuer by hand)
	}
	if _, err := a.cfg.Processor.Refund(ctx, ref); err != nil && !errors.Is(err, payments.ErrNotRefundable) {
		return fmt.Errorf("refund %s: %w", ref, err)
	}
	return nil
}

// ProgressOf is a payment's progress: as the aggregator saw it, or else as the hub records
// it (after a restart), or "created" for an intent this relay made that nothing reported on.
// It fails for payments this relay did not create.
func (a *Aggregator) ProgressOf(ctx context.Context, pid [32]byte) (protocol.PaymentProgress, error) {
	if p, ok := a.Progress(pid); ok {
		return p, nil
	}
	ref, err := a.PaymentRef(ctx, pid)
	if err != nil {
		return protocol.PaymentProgress{}, err
	}
	k, n := a.Threshold()
	p := protocol.PaymentProgress{ID: ref, PaymentID: protocol.Hex32(pid), State: protocol.PaymentCreated, Threshold: k, Members: n, Time: time.Now().UnixMilli()}
	pay, err := hubPayment(ctx, a.cfg.Client, a.cfg.Hub, pid)
	if err != nil {
		return p, nil
	}
	if pay.Status != statusNone {
		p.Event = strings.ToLower(pay.TicketEvent.Hex())
	}
	switch pay.Status {
	case statusRequested, statusCapturing:
		p.State = protocol.PaymentVerifying
	case statusMinted:
		p.State, p.FirstTokenID, p.Quantity = protocol.PaymentMinted, pay.FirstTokenId.String(), pay.Quantity.Uint64()
	case statusFailed:
		p.State, p.Reason = protocol.PaymentFailed, "a rule refused the mint; the payment is refunded"
	case statusRefunded, statusChargedBack:
		p.State = protocol.PaymentRefunded
	}
	return p, nil
}
