package payout

import (
	"context"
	"fmt"
	"math/big"
	"sort"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/relay/internal/logscan"
	"github.com/stagepass/stagepass/relay/payments"
)

var (
	// OracleHub: PaymentReversed(bytes32 indexed paymentId, address indexed ticketEvent, uint8 status)
	topicPaymentReversed = crypto.Keccak256Hash([]byte("PaymentReversed(bytes32,address,uint8)"))
	// EventTicket: the logs of a card fulfilment.
	topicCardPurchased      = crypto.Keccak256Hash([]byte("CardPurchased(bytes32,bytes32,uint256)"))
	topicCardPurchaseFailed = crypto.Keccak256Hash([]byte("CardPurchaseFailed(bytes32,bytes32,address,bytes)"))
	topicPurchased          = crypto.Keccak256Hash([]byte("Purchased(address,uint256,uint256,uint256,uint256)"))
	topicResold             = crypto.Keccak256Hash([]byte("Resold(uint256,address,address,uint256,uint256)"))
)

// reverse claws back the payouts of the card sale whose ticket a CardReversed log reverses.
//
// The sale: the hub emits PaymentReversed(paymentId, event) just before the event's
// CardReversed logs of that payment, in the same transaction (a payment is reversed once);
// the event's CardPurchased log for that payment id is in the fulfilment transaction, whose
// logs say what the sale was (Purchased: qty tickets at unitPrice; Resold: one ticket, price
// and the seller's part, paid by the RevenueSplit log before it) and how the fulfilment's
// revenue was split (the RevenueSplit logs after its last CardPurchased).
//
// The amounts: each ticket carries its part of the fulfilment's split revenue (unitPrice, or
// a resale's price less the seller's part). With V the value of the sale's tickets reversed
// up to and including this log and R the split revenue, a party paid P cents is owed back
// floor(P·V/R) in all, and this log reverses that less what the logs before it reversed; the
// seller of a resale is owed back everything. The sum of a purchase's reversals therefore
// never exceeds what was paid, and equals it when every ticket of the fulfilment is
// reversed. Each reversal is keyed by this log and the payout's key; the payout is made (or
// found made, by its own key) first, so a worker that sees the reversal before it paid ends
// with the payout made and reversed, once each.
func (w *Worker) reverse(ctx context.Context, l *types.Log) error {
	if l.Removed || len(l.Topics) != 2 {
		return nil
	}
	ok, err := w.isEvent(ctx, l.Address)
	if err != nil || !ok {
		return err // a look-alike contract's log claws back nothing
	}
	hub, err := w.oracleHub(ctx)
	if err != nil {
		return err
	}
	rtx, err := w.txLogs(ctx, l.BlockHash, l.TxHash)
	if err != nil {
		return err
	}
	pid, before, ok := reversalOf(rtx, hub, l)
	if !ok {
		w.cfg.Logger.Warn("card reversal without the hub's PaymentReversed; nothing clawed back", "tx", l.TxHash, "index", l.Index)
		return nil
	}
	// The payment's fulfilment, among the blocks this worker pays out (from Start): the
	// newest, read back from the reversal's block in queries of at most RangeLimit blocks.
	var f *types.Log
	q := ethereum.FilterQuery{Addresses: []common.Address{l.Address}, Topics: [][]common.Hash{{topicCardPurchased}, nil, {pid}}}
	span := logscan.Span{From: w.cfg.Start, To: l.BlockNumber, Limit: w.cfg.RangeLimit, Backward: true}
	err = logscan.Scan(ctx, w.cfg.Chain, q, span, func(found []types.Log, _, _ uint64) (bool, error) {
		for i := range found {
			if !found[i].Removed {
				f = &found[i]
			}
		}
		return f == nil, nil
	})
	if err != nil {
		return fmt.Errorf("find the fulfilment of payment %s: %w", pid.Hex(), err)
	}
	if f == nil {
		w.cfg.Logger.Warn("card reversal of a sale fulfilled before this worker's start; nothing clawed back", "payment", pid, "tx", l.TxHash)
		return nil
	}
	ftx, err := w.txLogs(ctx, f.BlockHash, f.TxHash)
	if err != nil {
		return err
	}
	s, err := saleOf(ftx, f)
	if err != nil {
		return fmt.Errorf("fulfilment %s of payment %s: %w", f.TxHash.Hex(), pid.Hex(), err)
	}
	id := l.Topics[1].Big()
	if _, ours := s.tokens[id.String()]; !ours {
		w.cfg.Logger.Warn("card reversal of a ticket its payment did not buy; nothing clawed back", "token", id, "payment", pid)
		return nil
	}
	vBefore, vWith := new(big.Int), new(big.Int)
	for _, t := range before {
		if v, ours := s.tokens[t]; ours {
			vBefore.Add(vBefore, v)
		}
	}
	vWith.Add(vBefore, s.tokens[id.String()])
	key := logKey(l)
	for _, sp := range s.splits {
		if err := w.clawBack(ctx, key, sp, func(paid int64) int64 {
			return share(paid, vWith, s.revenue) - share(paid, vBefore, s.revenue)
		}); err != nil {
			return err
		}
	}
	if s.seller != nil {
		if err := w.clawBack(ctx, key, s.seller, func(paid int64) int64 { return paid }); err != nil {
			return err
		}
	}
	return nil
}

// clawBack makes (or finds made) the payout of RevenueSplit log `split`, then reverses
// amount(paid cents) of it, keyed by the reversing log's key and the payout's.
func (w *Worker) clawBack(ctx context.Context, reversalKey string, split *types.Log, amount func(paid int64) int64) error {
	p, ok, err := w.payoutOf(ctx, split)
	if err != nil || !ok {
		return err
	}
	cents := amount(p.Amount)
	if cents <= 0 {
		return nil
	}
	if p, err = w.cfg.Payer.Pay(ctx, p); err != nil {
		return fmt.Errorf("pay %s its share of tx %s before reversing it: %w", p.Party, split.TxHash.Hex(), err)
	}
	r, err := w.cfg.Payer.Reverse(ctx, payments.Reversal{Key: reversalKey + ":" + p.Key, Transfer: p.ID, Amount: cents})
	if err != nil {
		return fmt.Errorf("reverse %d of %s's payout %s: %w", cents, p.Party, p.ID, err)
	}
	w.mu.Lock()
	w.clawed++
	w.mu.Unlock()
	w.cfg.Logger.Info("card payout clawed back", "party", p.Party, "cents", cents, "of", p.Amount, "transfer", p.ID, "reversal", r.ID)
	return nil
}

// share is floor(paid·v/total) cents (paid when v covers total).
func share(paid int64, v, total *big.Int) int64 {
	if total.Sign() <= 0 || v.Cmp(total) >= 0 {
		return paid
	}
	n := new(big.Int).Mul(big.NewInt(paid), v)
	return n.Quo(n, total).Int64()
}

// reversalOf finds, in the logs of reversal transaction rtx, the payment that CardReversed
// log l reverses (the hub's PaymentReversed for l's event before it) and the tokens the same
// payment's reversal reversed before l.
func reversalOf(rtx []types.Log, hub common.Address, l *types.Log) (pid common.Hash, before []string, ok bool) {
	for i := range rtx {
		x := &rtx[i]
		if x.Index >= l.Index {
			break
		}
		switch {
		case x.Address == hub && len(x.Topics) == 3 && x.Topics[0] == topicPaymentReversed:
			ok = common.BytesToAddress(x.Topics[2].Bytes()) == l.Address
			pid, before = x.Topics[1], nil
		case ok && x.Address == l.Address && len(x.Topics) == 2 && x.Topics[0] == topicCardReversed:
			before = append(before, x.Topics[1].Big().String())
		}
	}
	return pid, before, ok
}

// sale is what one card purchase of a fulfilment sold, as the fulfilment's logs say.
type sale struct {
	tokens  map[string]*big.Int // token id → its part of the split revenue (base units)
	revenue *big.Int            // the fulfilment's split revenue (base units)
	splits  []*types.Log        // the fulfilment's RevenueSplit logs to the split parties
	seller  *types.Log          // a resale's RevenueSplit log to the seller
}

// saleOf reads the purchase that CardPurchased log f closes from its fulfilment's logs ftx:
// the event's logs since the previous purchase's CardPurchased (or CardPurchaseFailed).
func saleOf(ftx []types.Log, f *types.Log) (*sale, error) {
	s := &sale{tokens: map[string]*big.Int{}, revenue: new(big.Int)}
	var seg []*types.Log
	closed := false // the logs after the last purchase: the split
	for i := range ftx {
		x := &ftx[i]
		if x.Address != f.Address || len(x.Topics) == 0 {
			continue
		}
		switch x.Topics[0] {
		case topicCardPurchased, topicCardPurchaseFailed:
			if x.Index == f.Index {
				if err := s.read(seg); err != nil {
					return nil, err
				}
			}
			seg, closed, s.splits = nil, true, nil
		case topicRevenueSplit:
			seg = append(seg, x)
			if closed {
				s.splits = append(s.splits, x)
			}
		default:
			seg = append(seg, x)
		}
	}
	for _, sp := range s.splits {
		if len(sp.Data) == 64 {
			s.revenue.Add(s.revenue, new(big.Int).SetBytes(sp.Data[:32]))
		}
	}
	if len(s.tokens) == 0 {
		return nil, fmt.Errorf("no sale before CardPurchased log %d", f.Index)
	}
	return s, nil
}

// read takes the sale from its logs: a Purchased (primary) or a Resold and the seller's
// RevenueSplit (resale).
func (s *sale) read(seg []*types.Log) error {
	for _, x := range seg {
		switch x.Topics[0] {
		case topicPurchased:
			ev, err := ticketABI.UnpackPurchasedEvent(x)
			if err != nil {
				return err
			}
			for i := int64(0); i < ev.Quantity.Int64(); i++ {
				s.tokens[new(big.Int).Add(ev.FirstTokenId, big.NewInt(i)).String()] = ev.UnitPrice
			}
		case topicResold:
			ev, err := ticketABI.UnpackResoldEvent(x)
			if err != nil {
				return err
			}
			s.tokens[ev.TokenId.String()] = new(big.Int).Sub(ev.Price, ev.SellerAmount)
		case topicRevenueSplit:
			s.seller = x
		}
	}
	return nil
}

// txLogs are the logs of transaction tx in block `block`, in order.
func (w *Worker) txLogs(ctx context.Context, block, tx common.Hash) ([]types.Log, error) {
	all, err := w.cfg.Chain.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &block})
	if err != nil {
		return nil, fmt.Errorf("read the logs of tx %s: %w", tx.Hex(), err)
	}
	var out []types.Log
	for _, x := range all {
		if x.TxHash == tx && !x.Removed {
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// oracleHub is the factory's OracleHub: the only emitter of PaymentReversed trusted.
func (w *Worker) oracleHub(ctx context.Context) (common.Address, error) {
	w.mu.Lock()
	hub := w.hub
	w.mu.Unlock()
	if hub != (common.Address{}) {
		return hub, nil
	}
	out, err := w.cfg.Chain.CallContract(ctx, ethereum.CallMsg{To: &w.cfg.Factory, Data: factoryABI.PackOracleHub()}, nil)
	if err != nil {
		return hub, fmt.Errorf("ask the factory for its oracle hub: %w", err)
	}
	if hub, err = factoryABI.UnpackOracleHub(out); err != nil {
		return hub, err
	}
	w.mu.Lock()
	w.hub = hub
	w.mu.Unlock()
	return hub, nil
}
