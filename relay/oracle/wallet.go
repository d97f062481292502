package oracle

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/relay/internal/txfees"
)

// ErrDropped: Wallet.Receipt found none of a transaction's versions mined and the
// transaction can no longer be: another transaction of the key took its nonce, or, for a
// transaction sent before a restart, the node has neither it nor a receipt. The caller
// sends afresh if the work is still due.
var ErrDropped = errors.New("oracle: transaction dropped")

// Wallet sends transactions from one hot key on one chain, counting its nonce itself: the
// report aggregators' sender (the oracles' reports to the hub; the validators' checkpoints
// and deposit attestations; the relay's exits and deposits on the main chain). Sends are
// one at a time, so several loops may share a Wallet.
//
// It follows what it sent (Receipt): a transaction unmined for Fees.StuckAfter — the base
// fee rose above its cap, or the node lost it — is sent again under the same nonce with
// fees bumped, so one stuck transaction does not hold back every later one.
type Wallet struct {
	Client  Sender
	ChainID *big.Int
	Key     *ecdsa.PrivateKey
	// Fees prices the transactions (zero: 2 × base fee + the node's tip, replacements 10%
	// up after 30 s, no ceiling).
	Fees txfees.Policy

	mu       sync.Mutex // held while a transaction is built and sent, and around inflight
	nonce    *uint64
	inflight map[uint64]*inflight      // by nonce: sent, not yet seen mined
	byHash   map[common.Hash]*inflight // every version's hash
}

// inflight is one nonce's transaction and the versions sent of it, newest last.
type inflight struct {
	nonce    uint64
	to       common.Address
	data     []byte
	gas      uint64
	fees     txfees.Fees
	versions []common.Hash
	sentAt   time.Time // of the newest version
}

// Address is the wallet's address.
func (w *Wallet) Address() common.Address { return crypto.PubkeyToAddress(w.Key.PublicKey) }

// Forget drops the counted nonce: the next Send reads it from the chain again.
func (w *Wallet) Forget() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nonce = nil
}

// Send signs and sends one EIP-1559 transaction to `to` with `gas`, priced by Fees. Gas 0
// estimates it (+25%) when the client can: a call that would revert is then an error, and
// nothing is sent. Follow it with Receipt.
func (w *Wallet) Send(ctx context.Context, to common.Address, data []byte, gas uint64) (*types.Transaction, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.Client
	w.Fees.Defaults()
	if gas == 0 {
		est, ok := c.(interface {
			EstimateGas(context.Context, ethereum.CallMsg) (uint64, error)
		})
		if !ok {
			return nil, fmt.Errorf("the client cannot estimate gas")
		}
		g, err := est.EstimateGas(ctx, ethereum.CallMsg{From: w.Address(), To: &to, Data: data})
		if err != nil {
			return nil, fmt.Errorf("estimate gas: %w", err)
		}
		gas = g + g/4
	}
	if w.nonce == nil {
		n, err := c.PendingNonceAt(ctx, w.Address())
		if err != nil {
			return nil, fmt.Errorf("read the sender's nonce: %w", err)
		}
		w.nonce = &n
	}
	fees, err := w.Fees.Current(ctx, c)
	if err != nil {
		return nil, err
	}
	f := &inflight{nonce: *w.nonce, to: to, data: data, gas: gas, fees: fees}
	tx, err := w.sign(f)
	if err != nil {
		return nil, err
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		w.nonce = nil // read it again next time
		return nil, err
	}
	*w.nonce++
	w.track(f, tx.Hash())
	return tx, nil
}

func (w *Wallet) sign(f *inflight) (*types.Transaction, error) {
	return types.SignNewTx(w.Key, types.LatestSignerForChainID(w.ChainID), &types.DynamicFeeTx{
		ChainID: w.ChainID, Nonce: f.nonce, GasTipCap: f.fees.Tip, GasFeeCap: f.fees.FeeCap, Gas: f.gas, To: &f.to, Data: f.data,
	})
}

// track records a version of f as sent now. w.mu is held.
func (w *Wallet) track(f *inflight, h common.Hash) {
	if w.inflight == nil {
		w.inflight, w.byHash = map[uint64]*inflight{}, map[common.Hash]*inflight{}
	}
	w.inflight[f.nonce] = f
	w.byHash[h] = f
	f.versions = append(f.versions, h)
	f.sentAt = time.Now()
}

// untrack forgets f and its versions. w.mu is held.
func (w *Wallet) untrack(f *inflight) {
	delete(w.inflight, f.nonce)
	for _, h := range f.versions {
		delete(w.byHash, h)
	}
}

// Receipt follows a transaction Send returned: the receipt of whichever of its versions was
// mined (its hash may differ from h), or nil while none is. Following it replaces what is
// stuck: every version of this wallet unmined for Fees.StuckAfter, at this nonce or below,
// is sent again under its nonce with fees bumped (or re-sent as it is at Fees.MaxFeeCap).
// A hash the wallet did not send in this process (one kept across a restart) is adopted
// if the node still holds it pending. ErrDropped: it can no longer be mined.
func (w *Wallet) Receipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	w.mu.Lock()
	f := w.byHash[h]
	var versions []common.Hash
	if f != nil {
		versions = slices.Clone(f.versions)
	}
	w.mu.Unlock()
	if f == nil {
		versions = []common.Hash{h}
	}
	for _, v := range slices.Backward(versions) {
		r, err := w.Client.TransactionReceipt(ctx, v)
		if err == nil && r != nil {
			if f != nil {
				w.mu.Lock()
				w.untrack(f)
				w.mu.Unlock()
			}
			return r, nil
		}
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			return nil, err
		}
	}
	if f == nil {
		return nil, w.adopt(ctx, h)
	}
	// None mined: taken by another transaction of the key, or still to be mined.
	mined, err := w.Client.NonceAt(ctx, w.Address(), nil)
	if err != nil {
		return nil, err
	}
	if mined > f.nonce {
		// The nonce is used; a version mined in the meantime shows a receipt now.
		for _, v := range slices.Backward(versions) {
			if r, err := w.Client.TransactionReceipt(ctx, v); err == nil && r != nil {
				w.mu.Lock()
				w.untrack(f)
				w.mu.Unlock()
				return r, nil
			}
		}
		w.mu.Lock()
		w.untrack(f)
		w.nonce = nil
		w.mu.Unlock()
		return nil, fmt.Errorf("%w: nonce %d of %s was used by another transaction", ErrDropped, f.nonce, w.Address().Hex())
	}
	return nil, w.replaceStuck(ctx, f.nonce)
}

// adopt takes over h, sent before a restart: if the node holds it pending, it is followed
// (and replaced when stuck) from now on; if the node has neither it nor a receipt, it was
// dropped.
func (w *Wallet) adopt(ctx context.Context, h common.Hash) error {
	tx, pending, err := w.Client.TransactionByHash(ctx, h)
	if errors.Is(err, ethereum.NotFound) || (err == nil && !pending) {
		w.Forget()
		return fmt.Errorf("%w: the node has no transaction %s", ErrDropped, h.Hex())
	}
	if err != nil {
		return err
	}
	if tx.To() == nil {
		return fmt.Errorf("%w: %s creates a contract", ErrDropped, h.Hex())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byHash[h] == nil {
		w.track(&inflight{nonce: tx.Nonce(), to: *tx.To(), data: tx.Data(), gas: tx.Gas(),
			fees: txfees.Fees{Tip: tx.GasTipCap(), FeeCap: tx.GasFeeCap()}}, h)
	}
	return nil
}

// replaceStuck sends again every transaction at or below nonce unmined for StuckAfter,
// lowest nonce first.
func (w *Wallet) replaceStuck(ctx context.Context, upTo uint64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.Fees.Defaults()
	var stuck []*inflight
	for n, f := range w.inflight {
		if n <= upTo && time.Since(f.sentAt) >= w.Fees.StuckAfter {
			stuck = append(stuck, f)
		}
	}
	if len(stuck) == 0 {
		return nil
	}
	slices.SortFunc(stuck, func(a, b *inflight) int { return cmp.Compare(a.nonce, b.nonce) })
	now, err := w.Fees.Current(ctx, w.Client)
	if err != nil {
		return err
	}
	for _, f := range stuck {
		next, ok := w.Fees.Bump(f.fees, now)
		if ok {
			f.fees = next
		}
		// At the ceiling the same transaction goes out again, for a node that lost it.
		tx, err := w.sign(f)
		if err != nil {
			return err
		}
		if err := w.Client.SendTransaction(ctx, tx); err != nil && !settled(err) {
			return fmt.Errorf("re-send nonce %d: %w", f.nonce, err)
		}
		w.track(f, tx.Hash())
	}
	return nil
}

// settled: a re-send the node refuses because it already holds this very transaction, or
// because a version was mined meanwhile (the next Receipt finds it). Nodes answer over
// JSON-RPC with txpool's messages, so they are matched as text.
func settled(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "already known") || strings.Contains(msg, "nonce too low")
}
