package server

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/relay/index"
	"github.com/stagepass/stagepass/relay/internal/logscan"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	ticketBinding   = events.NewEventTicket()
	revenueSplitID  = mustTicketEvent("RevenueSplit")
	gateSetID       = mustTicketEvent("GateSet")
	zeroAddressText = strings.ToLower(common.Address{}.Hex())
)

func mustTicketEvent(name string) common.Hash {
	return logscan.EventID(&events.EventTicketMetaData, name)
}

// registerIssuerAPI puts the issuer console's read methods on the server. The console
// follows the "event" topic and reads sp_eventStats again on each activity.
func (r *Relay) registerIssuerAPI(s *rpcserver.Server) {
	s.Register(protocol.MethodIssuerEvents, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var issuer common.Address
		if err := positional(req, addressParam(&issuer, "issuer")); err != nil {
			return nil, err
		}
		want := strings.ToLower(issuer.Hex())
		out := []protocol.EventInfo{}
		for _, ev := range r.index.Events() {
			if ev.Issuer == want {
				r.withIssuerDomain(ctx, &ev)
				out = append(out, ev)
			}
		}
		return out, nil
	})
	s.Register(protocol.MethodEventStats, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var ev common.Address
		if err := positional(req, addressParam(&ev, "event")); err != nil {
			return nil, err
		}
		return r.eventStats(ctx, ev)
	})
}

// eventStats folds the event's indexed activity into its figures. What each party was paid
// in the event's token is computed from each sale as the contract pays it (splitAmounts, the
// seller's part of a resale), with the same code the wallet shows before signing; card sales
// pay nothing on-chain, and their parties' amounts are the RevenueSplit events of the
// fulfilment transactions, read from the chain up to the indexed block.
func (r *Relay) eventStats(ctx context.Context, addr common.Address) (*protocol.EventStats, error) {
	info, ok := r.index.Event(addr)
	if !ok {
		return nil, rpcserver.InvalidParams("no Stagepass event at %s", addr.Hex())
	}
	acts := r.index.Since(index.EventKey(addr), protocol.Cursor{})
	head := info.Created
	for _, a := range acts {
		head = a.Cursor
	}
	// Card fulfilments: their RevenueSplit logs, by transaction, in log order; and the gates
	// (those the configuration names are set in the creating transaction, before the index
	// knows the event, so they are read from the chain too).
	splitsByTx := map[string][]*events.EventTicketRevenueSplit{}
	gates := map[string]bool{}
	logs, err := r.cfg.Client.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: new(big.Int).SetUint64(info.Created.Block), ToBlock: new(big.Int).SetUint64(head.Block),
		Addresses: []common.Address{addr}, Topics: [][]common.Hash{{revenueSplitID, gateSetID}},
	})
	if err != nil {
		return nil, fmt.Errorf("read card revenue and gates of %s: %w", addr.Hex(), err)
	}
	for i := range logs {
		if e, err := ticketBinding.UnpackRevenueSplitEvent(&logs[i]); err == nil {
			splitsByTx[logs[i].TxHash.Hex()] = append(splitsByTx[logs[i].TxHash.Hex()], e)
		} else if g, err := ticketBinding.UnpackGateSetEvent(&logs[i]); err == nil {
			gates[strings.ToLower(g.Gate.Hex())] = g.Allowed
		}
	}

	st := &protocol.EventStats{Event: strings.ToLower(addr.Hex()), Cursor: head, Gates: []string{}}
	n := func() *big.Int { return new(big.Int) }
	revenue, resaleValue, toSellers := n(), n(), n()
	tierRevenue := make([]*big.Int, len(info.Tiers))
	for i := range tierRevenue {
		tierRevenue[i] = n()
	}
	type paid struct{ primary, resale, card *big.Int }
	pays := make([]paid, len(info.Splits))
	for i := range pays {
		pays[i] = paid{n(), n(), n()}
	}
	addSplit := func(amount *big.Int, resale bool) {
		for i, part := range actions.SplitAmounts(&info, amount) {
			if resale {
				pays[i].resale.Add(pays[i].resale, part)
			} else {
				pays[i].primary.Add(pays[i].primary, part)
			}
		}
	}
	// A card resale's seller is paid by the processor too, and its RevenueSplit names the
	// seller: those are not the parties'.
	sellerSplits := map[string]int{} // "tx/seller/amount" → how many
	for _, a := range acts {
		_, card := splitsByTx[a.TxHash]
		price, _ := new(big.Int).SetString(a.Price, 10)
		switch a.Kind {
		case protocol.KindPurchased:
			total := new(big.Int).Mul(price, new(big.Int).SetUint64(a.Quantity))
			id, _ := new(big.Int).SetString(a.TokenID, 10)
			if tier := new(big.Int).Rsh(id, 32).Uint64(); tier < uint64(len(tierRevenue)) {
				tierRevenue[tier].Add(tierRevenue[tier], total)
			}
			st.Sold += a.Quantity
			revenue.Add(revenue, total)
			if card {
				st.CardSold += a.Quantity
			} else {
				addSplit(total, false)
			}
		case protocol.KindResold:
			id, _ := new(big.Int).SetString(a.TokenID, 10)
			p, err := actions.TierPrices(&info, new(big.Int).Rsh(id, 32).Uint64(), time.Now())
			if err != nil {
				continue
			}
			seller := actions.ResaleSellerAmount(&info, p.Face, price)
			st.Resales++
			resaleValue.Add(resaleValue, price)
			toSellers.Add(toSellers, seller)
			if card {
				sellerSplits[a.TxHash+"/"+a.From+"/"+seller.String()]++
			} else {
				addSplit(new(big.Int).Sub(price, seller), true)
			}
		case protocol.KindCheckedIn:
			st.CheckedIn++
		}
	}
	for tx, splits := range splitsByTx {
		for _, e := range splits {
			party := strings.ToLower(e.Party.Hex())
			if k := tx + "/" + party + "/" + e.Amount.String(); sellerSplits[k] > 0 {
				sellerSplits[k]--
				continue
			}
			for i, sp := range info.Splits {
				if sp.Account == party {
					pays[i].card.Add(pays[i].card, e.Amount)
					break
				}
			}
		}
	}
	for i, t := range info.Tiers {
		st.Tiers = append(st.Tiers, protocol.TierStats{Name: t.Name, Supply: t.Supply, Sold: uint64(t.Sold), Revenue: tierRevenue[i].String()})
	}
	st.Revenue, st.ResaleValue, st.ToSellers = revenue.String(), resaleValue.String(), toSellers.String()
	for i, sp := range info.Splits {
		total := new(big.Int).Add(pays[i].primary, pays[i].resale)
		total.Add(total, pays[i].card)
		st.Payouts = append(st.Payouts, protocol.Payout{Account: sp.Account, Role: sp.Role, Bps: sp.Bps,
			Primary: pays[i].primary.String(), Resale: pays[i].resale.String(), Card: pays[i].card.String(), Total: total.String()})
	}
	st.Listed = uint64(len(r.index.Listings(addr)))
	for g, ok := range gates {
		if ok && g != zeroAddressText {
			st.Gates = append(st.Gates, g)
		}
	}
	sort.Strings(st.Gates)
	// The category mix, as the contract counts it now.
	for c := range st.Categories {
		out, err := r.cfg.Client.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: ticketBinding.PackCategoryCount(uint8(c))}, nil)
		if err != nil {
			return nil, fmt.Errorf("read the category mix of %s: %w", addr.Hex(), err)
		}
		n, err := ticketBinding.UnpackCategoryCount(out)
		if err != nil {
			return nil, fmt.Errorf("read the category mix of %s: %w", addr.Hex(), err)
		}
		st.Categories[c] = n.Uint64()
	}
	return st, nil
}
