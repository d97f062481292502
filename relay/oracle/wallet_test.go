package oracle

import (
	"context"
	"errors"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/internal/txfees"
)

// stuckFees prices below any base fee: the node's pool takes the transaction (its tip meets
// the pool's floor of 1 wei) but no block can include it.
func stuckFees() txfees.Policy {
	return txfees.Policy{Tip: big.NewInt(1), MaxFeeCap: big.NewInt(1), StuckAfter: time.Millisecond}
}

func walletChain(t *testing.T) *devchain.Chain {
	t.Helper()
	c, err := devchain.New(devchain.Options{Accounts: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var payee = common.HexToAddress("0x000000000000000000000000000000000000dEaD")

// follow commits blocks and follows h through w until it is mined.
func follow(t *testing.T, c *devchain.Chain, w *Wallet, h common.Hash) *types.Receipt {
	t.Helper()
	for range 20 {
		r, err := w.Receipt(context.Background(), h)
		if err != nil {
			t.Fatalf("receipt of %s: %v", h, err)
		}
		if r != nil {
			return r
		}
		time.Sleep(2 * time.Millisecond)
		c.Commit()
	}
	t.Fatalf("%s never mined", h)
	return nil
}

// TestWalletReplacesStuckTransactions: two transactions priced below the base fee stay in
// the pool through blocks; following the second re-prices both under their own nonces, and
// both are mined, each once, with the receipt of the version that was.
func TestWalletReplacesStuckTransactions(t *testing.T) {
	c := walletChain(t)
	ctx := context.Background()
	w := &Wallet{Client: c.Client, ChainID: c.ChainID, Key: c.Accounts[0].Key, Fees: stuckFees()}
	start, err := c.Client.NonceAt(ctx, w.Address(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tx1, err := w.Send(ctx, payee, nil, 21_000)
	if err != nil {
		t.Fatal(err)
	}
	tx2, err := w.Send(ctx, payee, nil, 21_000)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c.Commit()
	}
	if r, _ := c.Client.TransactionReceipt(ctx, tx1.Hash()); r != nil {
		t.Fatal("a transaction below the base fee was mined")
	}
	// Still within the ceiling: re-sent as it is, and still not mined.
	if r, err := w.Receipt(ctx, tx2.Hash()); r != nil || err != nil {
		t.Fatalf("at the ceiling: %v, %v", r, err)
	}
	w.Fees = txfees.Policy{StuckAfter: time.Millisecond} // the ceiling lifted
	r2 := follow(t, c, w, tx2.Hash())
	r1 := follow(t, c, w, tx1.Hash())
	if r1.Status != types.ReceiptStatusSuccessful || r2.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("statuses %d, %d", r1.Status, r2.Status)
	}
	if r1.TxHash == tx1.Hash() || r2.TxHash == tx2.Hash() {
		t.Fatal("a stuck version was mined, not its replacement")
	}
	if n, _ := c.Client.NonceAt(ctx, w.Address(), nil); n != start+2 {
		t.Fatalf("nonce %d, want %d: each transaction mined once", n, start+2)
	}
	// The next send continues from the counted nonce.
	tx3, err := w.Send(ctx, payee, nil, 21_000)
	if err != nil || tx3.Nonce() != start+2 {
		t.Fatalf("next send: nonce %v, %v", tx3, err)
	}
	follow(t, c, w, tx3.Hash())
}

// lossyNode loses the first transaction sent through it, as a node whose pool dropped it.
type lossyNode struct {
	Sender
	lost atomic.Bool
}

func (n *lossyNode) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if n.lost.CompareAndSwap(false, true) {
		return nil
	}
	return n.Sender.SendTransaction(ctx, tx)
}

// TestWalletResendsWhatTheNodeLost: a transaction the node never kept is sent again under
// its nonce once it is overdue, and mined.
func TestWalletResendsWhatTheNodeLost(t *testing.T) {
	c := walletChain(t)
	w := &Wallet{Client: &lossyNode{Sender: c.Client}, ChainID: c.ChainID, Key: c.Accounts[0].Key, Fees: txfees.Policy{StuckAfter: time.Millisecond}}
	tx, err := w.Send(context.Background(), payee, nil, 21_000)
	if err != nil {
		t.Fatal(err)
	}
	c.Commit()
	if r := follow(t, c, w, tx.Hash()); r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("status %d", r.Status)
	}
}

// TestWalletAfterRestart: a new Wallet of the same key, following a hash kept from before,
// adopts a transaction still pending and replaces it when stuck; a hash the node does not
// know, or one whose nonce another transaction took, is ErrDropped.
func TestWalletAfterRestart(t *testing.T) {
	c := walletChain(t)
	ctx := context.Background()
	key := c.Accounts[0].Key
	before := &Wallet{Client: c.Client, ChainID: c.ChainID, Key: key, Fees: stuckFees()}
	tx, err := before.Send(ctx, payee, nil, 21_000)
	if err != nil {
		t.Fatal(err)
	}
	c.Commit()

	after := &Wallet{Client: c.Client, ChainID: c.ChainID, Key: key, Fees: txfees.Policy{StuckAfter: time.Millisecond}}
	if r := follow(t, c, after, tx.Hash()); r.Status != types.ReceiptStatusSuccessful || r.TxHash == tx.Hash() {
		t.Fatalf("adopted: %+v", r)
	}
	if _, err := after.Receipt(ctx, common.HexToHash("0x01")); !errors.Is(err, ErrDropped) {
		t.Fatalf("an unknown hash: %v", err)
	}

	// Another transaction of the key takes the nonce of one this wallet sent.
	w := &Wallet{Client: c.Client, ChainID: c.ChainID, Key: key, Fees: stuckFees()}
	lost, err := w.Send(ctx, payee, nil, 21_000)
	if err != nil {
		t.Fatal(err)
	}
	fees, _ := (&txfees.Policy{BaseFeeMultiplier: 2}).Current(ctx, c.Client)
	other, _ := types.SignNewTx(key, types.LatestSignerForChainID(c.ChainID), &types.DynamicFeeTx{ChainID: c.ChainID, Nonce: lost.Nonce(),
		GasTipCap: fees.Tip, GasFeeCap: fees.FeeCap, Gas: 21_000, To: &c.Accounts[1].Address, Value: big.NewInt(1)})
	if err := c.Client.SendTransaction(ctx, other); err != nil {
		t.Fatal(err)
	}
	c.Commit()
	if _, err := w.Receipt(ctx, lost.Hash()); !errors.Is(err, ErrDropped) {
		t.Fatalf("a nonce taken by another transaction: %v", err)
	}
	w.Fees = txfees.Policy{}
	next, err := w.Send(ctx, payee, nil, 21_000)
	if err != nil || next.Nonce() != lost.Nonce()+1 {
		t.Fatalf("after a drop the nonce is read again: %v, %v", next, err)
	}
	follow(t, c, w, next.Hash())
}
