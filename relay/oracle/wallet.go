package oracle

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Wallet sends transactions from one hot key on one chain, counting its nonce itself: the
// report aggregators' sender (the oracles' reports to the hub; the validators' checkpoints
// and deposit attestations; the relay's exits on the main chain). Sends are one at a time, so
// several loops may share a Wallet.
type Wallet struct {
	Client  Sender
	ChainID *big.Int
	Key     *ecdsa.PrivateKey

	mu    sync.Mutex // held while a transaction is built and sent
	nonce *uint64
}

// Address is the wallet's address.
func (w *Wallet) Address() common.Address { return crypto.PubkeyToAddress(w.Key.PublicKey) }

// Forget drops the counted nonce: the next Send reads it from the chain again (after a
// transaction was dropped).
func (w *Wallet) Forget() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nonce = nil
}

// Send signs and sends one EIP-1559 transaction to `to` with `gas`, fee cap twice the
// base fee plus the suggested tip. Gas 0 estimates it (+25%) when the client can: a call
// that would revert is then an error, and nothing is sent.
func (w *Wallet) Send(ctx context.Context, to common.Address, data []byte, gas uint64) (*types.Transaction, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.Client
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
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	tip, err := c.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, err
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx, err := types.SignNewTx(w.Key, types.LatestSignerForChainID(w.ChainID), &types.DynamicFeeTx{
		ChainID: w.ChainID, Nonce: *w.nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: &to, Data: data,
	})
	if err != nil {
		return nil, err
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		w.nonce = nil // read it again next time
		return nil, err
	}
	*w.nonce++
	return tx, nil
}
