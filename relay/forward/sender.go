package forward

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/relay/forward/rules"
	"github.com/stagepass/stagepass/relay/internal/txfees"
)

// sendLoop runs the sender until the queue is empty after Close began, or until Close's
// drain timeout cancels ctx. A wake from Submit only sends new entries; the ticker also
// tracks receipts, repairs nonce gaps and replaces stuck transactions.
func (f *Forwarder) sendLoop(ctx context.Context) {
	defer close(f.sendDone)
	tick := time.NewTicker(f.cfg.PollInterval)
	defer tick.Stop()
	drain := f.drain
	full := true
	for {
		if !f.cfg.hooks.holdSender {
			if err := f.step(ctx, full); err != nil && !errors.Is(err, errStop) && ctx.Err() == nil {
				f.log.Warn("forward sender", "err", err)
			}
		}
		if drain == nil && f.idle() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
			full = false
		case <-tick.C:
			full = true
		case <-drain:
			drain, full = nil, true
		}
	}
}

func (f *Forwarder) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queue) == 0
}

func (f *Forwarder) step(ctx context.Context, full bool) error {
	if full {
		if err := f.track(ctx); err != nil {
			return err
		}
		if err := f.repair(ctx); err != nil {
			return err
		}
		if err := f.replaceStuck(ctx); err != nil {
			return err
		}
	}
	return f.sendNew(ctx)
}

// fees are one transaction's EIP-1559 prices.
type fees = txfees.Fees

func (f *Forwarder) currentFees(ctx context.Context) (fees, error) {
	return f.cfg.Fees.Current(ctx, f.client)
}

// bump prices a replacement of old (txfees.Policy.Bump); false above MaxFeeCap.
func (f *Forwarder) bump(old *attempt, now fees) (fees, bool) {
	return f.cfg.Fees.Bump(fees{Tip: old.Tip, FeeCap: old.FeeCap}, now)
}

func executeGas(reqGas uint64, calldata int) uint64 { return rules.ExecuteGas(reqGas, calldata) }

func (f *Forwarder) signExecute(r *record, nonce uint64, fe fees) (*types.Transaction, error) {
	data := fwdABI.PackExecute(r.requestData())
	tx, err := types.SignNewTx(f.cfg.Key, f.signer, &types.DynamicFeeTx{
		ChainID: f.cfg.ChainID, Nonce: nonce, GasTipCap: fe.Tip, GasFeeCap: fe.FeeCap,
		Gas: executeGas(r.Gas, len(data)), To: &f.cfg.Forwarder, Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("sign transaction for %s: %w", r.ID, err)
	}
	return tx, nil
}

func newAttempt(tx *types.Transaction, fe fees, at time.Time) (attempt, error) {
	raw, err := tx.MarshalBinary()
	if err != nil {
		return attempt{}, fmt.Errorf("encode transaction: %w", err)
	}
	return attempt{Hash: tx.Hash(), Raw: raw, Tip: fe.Tip, FeeCap: fe.FeeCap, SentAt: at}, nil
}

// outcome is what a node made of a broadcast (rules.Classify).
type outcome = rules.Outcome

const (
	delivered   = rules.Delivered
	nonceUsed   = rules.NonceUsed
	underpriced = rules.Underpriced
	retry       = rules.Retry
	rejected    = rules.Rejected
)

func classify(err error) outcome { return rules.Classify(err) }

// errStop is a test hook's way of making the sender stop as if the process had died.
var errStop = errors.New("forward: sender stopped")

func (f *Forwarder) broadcast(ctx context.Context, tx *types.Transaction) (outcome, error) {
	if h := f.cfg.hooks.beforeBroadcast; h != nil && !h(tx) {
		return retry, errStop
	}
	err := f.client.SendTransaction(ctx, tx)
	return classify(err), err
}

func decodeTx(raw []byte) (*types.Transaction, error) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("decode stored transaction: %w", err)
	}
	return tx, nil
}

// sendNew puts accepted entries into transactions, in acceptance order, up to MaxInFlight.
// All the batch's transactions are written to the outbox (one fsync) before the first is
// broadcast.
func (f *Forwarder) sendNew(ctx context.Context) error {
	entries := f.snapshot()
	inflight := 0
	busy := make(map[common.Address]bool) // signers with a transaction in flight
	for _, e := range entries {
		if e.rec.State == Sent {
			inflight++
			busy[e.rec.From] = true
		}
	}
	var (
		changes   []change
		txs       []*types.Transaction
		fe        *fees
		blocked   = make(map[common.Address]bool)
		minedNext *uint64 // the hot wallet's mined nonce, read once if needed
		firstNew  = f.nextNonce
	)
	for _, e := range entries {
		r := e.rec
		if r.State != Accepted || blocked[r.From] {
			continue
		}
		if inflight+len(txs) >= f.cfg.Limits.MaxInFlight {
			break
		}
		// Run it first unless an earlier request of the same signer is still in flight
		// (then the chain's state is not the one it will meet).
		if !busy[r.From] {
			err := f.simulate(ctx, r, nil)
			var re *RevertError
			switch {
			case errors.As(err, &re):
				c, final, err := f.judgeRevert(ctx, e, re, inflight+len(txs), &minedNext)
				if err != nil {
					f.nextNonce = firstNew
					return err
				}
				if final {
					changes = append(changes, c)
				} else {
					blocked[r.From] = true
				}
				continue
			case err != nil:
				f.nextNonce = firstNew
				return err
			}
		}
		if fe == nil {
			cur, err := f.currentFees(ctx)
			if err != nil {
				f.nextNonce = firstNew
				return err
			}
			fe = &cur
		}
		nonce := f.nextNonce
		tx, err := f.signExecute(r, nonce, *fe)
		if err != nil {
			f.nextNonce = firstNew
			return err
		}
		a, err := newAttempt(tx, *fe, f.now())
		if err != nil {
			f.nextNonce = firstNew
			return err
		}
		f.nextNonce++
		next := r.clone()
		next.State, next.TxNonce, next.Attempts = Sent, &nonce, append(next.Attempts, a)
		changes = append(changes, change{e: e, next: next})
		txs = append(txs, tx)
		busy[r.From] = true
	}
	if err := f.persist(changes); err != nil {
		// Nothing was broadcast, so the nonces can be handed out again.
		f.nextNonce = firstNew
		return err
	}
	var holes []change
	for _, c := range changes {
		if c.next.State != Sent {
			continue
		}
		tx := txs[0]
		txs = txs[1:]
		out, err := f.broadcast(ctx, tx)
		if errors.Is(err, errStop) {
			return err
		}
		switch out {
		case delivered:
			f.log.Debug("forward request sent", "id", c.next.ID, "tx", tx.Hash(), "nonce", tx.Nonce())
		case rejected:
			// The node will never take it: the request fails, and its nonce becomes a hole
			// that the next repair plugs.
			f.log.Error("node rejected forward transaction", "id", c.next.ID, "tx", tx.Hash(), "err", err)
			fail := c.e.rec.clone()
			fail.State, fail.Reason = Failed, "the node rejected the transaction: "+err.Error()
			holes = append(holes, change{e: c.e, next: fail})
		default:
			// Kept as sent: repair re-broadcasts it, or tracking finds where its nonce went.
			f.log.Warn("forward transaction not delivered; will retry", "id", c.next.ID, "tx", tx.Hash(), "err", err)
		}
	}
	return f.persist(holes)
}

// judgeRevert decides what a revert found before sending means: final (the request
// fails, or turns out to have been executed by someone else) or maybe caused by our own
// transactions in flight, in which case the entry waits until they are mined and is
// judged again.
func (f *Forwarder) judgeRevert(ctx context.Context, e *entry, re *RevertError, inflight int, minedNext **uint64) (change, bool, error) {
	switch re.Name {
	case "ERC2771ForwarderInvalidSigner", "ERC2771ForwarderExpiredRequest":
		// The signature no longer matches the signer's nonce, or the deadline passed.
		// Either way nothing in flight can help; the request may have run elsewhere.
		if c, ok, err := f.executedElsewhere(ctx, e); err != nil || ok {
			return c, ok, err
		}
		return failedChange(e, re.Reason()), true, nil
	case "ERC2771UntrustfulTarget":
		return failedChange(e, re.Reason()), true, nil
	}
	if inflight == 0 {
		return failedChange(e, re.Reason()), true, nil
	}
	if !e.deferred {
		e.deferred, e.deferNonce = true, f.nextNonce
		return change{}, false, nil
	}
	if *minedNext == nil {
		n, err := f.client.NonceAt(ctx, f.hot, nil)
		if err != nil {
			return change{}, false, fmt.Errorf("read hot wallet nonce: %w", err)
		}
		*minedNext = &n
	}
	if **minedNext >= e.deferNonce {
		return failedChange(e, re.Reason()), true, nil
	}
	return change{}, false, nil
}

func failedChange(e *entry, reason string) change {
	next := e.rec.clone()
	next.State, next.Reason = Failed, reason
	return change{e: e, next: next}
}

// track finds the receipts of transactions whose nonce the chain has used.
func (f *Forwarder) track(ctx context.Context) error {
	var sent []*entry
	for _, e := range f.snapshot() {
		if e.rec.State == Sent {
			sent = append(sent, e)
		}
	}
	if len(sent) == 0 && len(f.fillers) == 0 {
		return nil
	}
	minedNext, err := f.client.NonceAt(ctx, f.hot, nil)
	if err != nil {
		return fmt.Errorf("read hot wallet nonce: %w", err)
	}
	for n := range f.fillers {
		if n < minedNext {
			delete(f.fillers, n)
		}
	}
	var changes []change
	var head *big.Int
	for _, e := range sent {
		r := e.rec
		if *r.TxNonce >= minedNext {
			continue
		}
		rcpt, err := f.findReceipt(ctx, r)
		if err != nil {
			return err
		}
		if rcpt != nil {
			if f.cfg.Confirmations > 1 {
				if head == nil {
					h, err := f.client.HeaderByNumber(ctx, nil)
					if err != nil {
						return fmt.Errorf("read head: %w", err)
					}
					head = h.Number
				}
				if rcpt.BlockNumber.Uint64()+f.cfg.Confirmations-1 > head.Uint64() {
					continue
				}
			}
			c, err := f.settle(ctx, e, rcpt)
			if err != nil {
				return err
			}
			changes = append(changes, c)
			continue
		}
		// The nonce is used but by none of our attempts. Nodes can show the nonce before
		// the receipt, so give it a few polls before concluding.
		if e.missing++; e.missing < 3 {
			continue
		}
		if c, ok, err := f.executedElsewhere(ctx, e); err != nil {
			return err
		} else if ok {
			changes = append(changes, c)
			continue
		}
		f.log.Warn("hot wallet nonce used by a transaction that is not ours; sending again",
			"id", r.ID, "nonce", *r.TxNonce)
		next := r.clone()
		next.State, next.TxNonce, next.Attempts = Accepted, nil, nil
		e.missing = 0
		changes = append(changes, change{e: e, next: next})
	}
	return f.persist(changes)
}

func (f *Forwarder) findReceipt(ctx context.Context, r *record) (*types.Receipt, error) {
	for i := len(r.Attempts) - 1; i >= 0; i-- {
		rcpt, err := f.client.TransactionReceipt(ctx, r.Attempts[i].Hash)
		if errors.Is(err, ethereum.NotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("receipt of %s: %w", r.Attempts[i].Hash, err)
		}
		return rcpt, nil
	}
	return nil, nil
}

// settle turns a receipt into the entry's final state. The forwarder's execute reverts
// when the forwarded call does, so a successful transaction is a successful request.
func (f *Forwarder) settle(ctx context.Context, e *entry, rcpt *types.Receipt) (change, error) {
	next := e.rec.clone()
	next.TxHash, next.Block = rcpt.TxHash, rcpt.BlockNumber.Uint64()
	if rcpt.Status == types.ReceiptStatusSuccessful {
		next.State = Mined
		f.log.Info("forward request mined", "id", next.ID, "tx", rcpt.TxHash, "block", next.Block, "gasUsed", rcpt.GasUsed)
		return change{e: e, next: next}, nil
	}
	if c, ok, err := f.executedElsewhere(ctx, e); err != nil || ok {
		return c, err
	}
	next.State = Failed
	switch err := f.simulate(ctx, e.rec, rcpt.BlockNumber); {
	case err == nil:
		next.Reason = "reverted on chain"
	default:
		var re *RevertError
		if errors.As(err, &re) {
			next.Reason = re.Reason()
		} else {
			next.Reason = "reverted on chain (reason unavailable: " + err.Error() + ")"
		}
	}
	f.log.Warn("forward request failed on chain", "id", next.ID, "tx", rcpt.TxHash, "reason", next.Reason)
	return change{e: e, next: next}, nil
}

// logWindow bounds the search for another relayer's execution: hosted nodes refuse
// unbounded log queries, and a request's deadline keeps it recent anyway.
const logWindow = 50_000

// executedElsewhere checks whether the request's forwarder nonce has been used — by
// someone else relaying the same signed request — and if so settles the entry from the
// forwarder's ExecutedForwardRequest log.
func (f *Forwarder) executedElsewhere(ctx context.Context, e *entry) (change, bool, error) {
	r := e.rec
	n, err := f.forwarderNonce(ctx, r.From, nil)
	if err != nil {
		return change{}, false, err
	}
	if n <= r.Nonce {
		return change{}, false, nil
	}
	next := r.clone()
	next.State, next.Reason = Mined, "executed by another relayer"
	head, err := f.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return change{}, false, fmt.Errorf("read head: %w", err)
	}
	from := new(big.Int)
	if h := head.Number.Uint64(); h > logWindow {
		from.SetUint64(h - logWindow)
	}
	topic := fwdABI.GetABI().Events["ExecutedForwardRequest"].ID
	logs, err := f.client.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: from, Addresses: []common.Address{f.cfg.Forwarder},
		Topics: [][]common.Hash{{topic}, {common.BytesToHash(r.From.Bytes())}},
	})
	if err != nil {
		return change{}, false, fmt.Errorf("search forwarder logs for %s: %w", r.ID, err)
	}
	defer func() {
		f.log.Info("forward request was executed by another relayer", "id", r.ID, "tx", next.TxHash, "state", next.State)
	}()
	for i := range logs {
		ev, err := fwdABI.UnpackExecutedForwardRequestEvent(&logs[i])
		if err != nil || ev.Nonce.Cmp(new(big.Int).SetUint64(r.Nonce)) != 0 {
			continue
		}
		next.TxHash, next.Block = logs[i].TxHash, logs[i].BlockNumber
		if !ev.Success {
			next.State, next.Reason = Failed, "executed by another relayer and reverted"
		}
	}
	return change{e: e, next: next}, true, nil
}

// repair re-sends what the node should have but does not. If the node's pending nonce is
// below a nonce we used, our transactions there were dropped (a node restart, pool
// eviction) or never arrived (a crash between writing and broadcasting): re-broadcast
// the stored bytes. A nonce nobody holds gets a no-op transaction, or everything above it
// waits forever.
func (f *Forwarder) repair(ctx context.Context) error {
	pending, err := f.client.PendingNonceAt(ctx, f.hot)
	if err != nil {
		return fmt.Errorf("read hot wallet pending nonce: %w", err)
	}
	if pending > f.nextNonce {
		// Someone else used the hot wallet; never reuse their nonces.
		f.nextNonce = pending
	}
	if pending == f.nextNonce {
		return nil
	}
	byNonce := make(map[uint64]*entry)
	for _, e := range f.snapshot() {
		if e.rec.State == Sent {
			byNonce[*e.rec.TxNonce] = e
		}
	}
	now := f.now()
	// Transactions sent moments ago may not be counted by the pool yet.
	grace := f.cfg.PollInterval
	var fe *fees
	for n := pending; n < f.nextNonce; n++ {
		if e := byNonce[n]; e != nil {
			a := e.rec.last()
			if now.Sub(a.SentAt) < grace || now.Sub(e.lastResend) < grace {
				continue
			}
			tx, err := decodeTx(a.Raw)
			if err != nil {
				return err
			}
			out, err := f.broadcast(ctx, tx)
			if errors.Is(err, errStop) {
				return err
			}
			e.lastResend = f.now()
			f.log.Info("re-sent forward transaction the node did not have", "id", e.rec.ID, "tx", tx.Hash(), "nonce", n, "outcome", out, "err", err)
			continue
		}
		tx := f.fillers[n]
		if tx == nil {
			if fe == nil {
				cur, err := f.currentFees(ctx)
				if err != nil {
					return err
				}
				fe = &cur
			}
			tx, err = types.SignNewTx(f.cfg.Key, f.signer, &types.DynamicFeeTx{
				ChainID: f.cfg.ChainID, Nonce: n, GasTipCap: fe.Tip, GasFeeCap: fe.FeeCap, Gas: 21_000, To: &f.hot,
			})
			if err != nil {
				return fmt.Errorf("sign filler: %w", err)
			}
			f.fillers[n] = tx
		}
		out, err := f.broadcast(ctx, tx)
		if errors.Is(err, errStop) {
			return err
		}
		f.log.Warn("plugged a hot wallet nonce gap", "nonce", n, "tx", tx.Hash(), "outcome", out, "err", err)
	}
	return nil
}

// replaceStuck re-prices transactions unmined for StuckAfter: same nonce, fees up by at
// least BumpPercent. The new transaction is written before it is broadcast, and every
// attempt's receipt is looked for, so whichever one the chain takes is recognised.
func (f *Forwarder) replaceStuck(ctx context.Context) error {
	now := f.now()
	var stuck []*entry
	for _, e := range f.snapshot() {
		if e.rec.State == Sent && now.Sub(e.rec.last().SentAt) >= f.cfg.Fees.StuckAfter {
			stuck = append(stuck, e)
		}
	}
	if len(stuck) == 0 {
		return nil
	}
	slices.SortFunc(stuck, func(a, b *entry) int { return cmp.Compare(*a.rec.TxNonce, *b.rec.TxNonce) })
	cur, err := f.currentFees(ctx)
	if err != nil {
		return err
	}
	var changes []change
	var txs []*types.Transaction
	for _, e := range stuck {
		last := e.rec.last()
		fe, ok := f.bump(last, cur)
		if !ok {
			// At the fee ceiling: all that is left is to make sure the node has it.
			if now.Sub(e.lastResend) >= f.cfg.Fees.StuckAfter {
				e.lastResend = now
				if tx, err := decodeTx(last.Raw); err == nil {
					_, err := f.broadcast(ctx, tx)
					f.log.Warn("forward transaction stuck at the fee ceiling; re-sent as is", "id", e.rec.ID, "tx", tx.Hash(), "err", err)
				}
			}
			continue
		}
		tx, err := f.signExecute(e.rec, *e.rec.TxNonce, fe)
		if err != nil {
			return err
		}
		a, err := newAttempt(tx, fe, now)
		if err != nil {
			return err
		}
		next := e.rec.clone()
		next.Attempts = append(next.Attempts, a)
		changes = append(changes, change{e: e, next: next})
		txs = append(txs, tx)
	}
	if err := f.persist(changes); err != nil {
		return err
	}
	for i, tx := range txs {
		out, err := f.broadcast(ctx, tx)
		if errors.Is(err, errStop) {
			return err
		}
		old := changes[i].next.Attempts[len(changes[i].next.Attempts)-2]
		f.log.Info("replaced stuck forward transaction", "id", changes[i].next.ID, "nonce", tx.Nonce(),
			"old", old.Hash, "new", tx.Hash(), "tip", tx.GasTipCap(), "feeCap", tx.GasFeeCap(), "outcome", out, "err", err)
	}
	return nil
}
