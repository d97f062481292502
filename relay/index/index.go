// Package index keeps what the wallet and the site ask the relay for — events and their
// configuration, tickets by owner, listings, check-ins — built from the platform's logs.
//
// The chain is the source of truth: the index is a function of the ordered list of
// activities read from the logs. Apply appends; Revert (a chain reorganisation) truncates the
// list and replays what remains, so no separate undo logic can drift from the forward path.
package index

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	factoryABI   = events.NewEventFactory()
	ticketABI    = events.NewEventTicket()
	ticketParsed = func() *abi.ABI {
		a, err := events.EventTicketMetaData.ParseABI()
		if err != nil {
			panic(err)
		}
		return a
	}()
)

// Caller reads contract state (ethclient and the simulated backend's client satisfy it).
type Caller interface {
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
}

// Publisher receives every activity as it is applied or retracted, with the fan-out keys
// it concerns: "event:<address>" and "owner:<address>" (lower-case hex).
type Publisher func(keys []string, a protocol.Activity)

// Index is safe for concurrent use.
type Index struct {
	caller  Caller
	factory common.Address
	publish Publisher

	mu       sync.RWMutex
	log      []entry
	events   map[common.Address]*protocol.EventInfo
	order    []common.Address
	tickets  map[ticketKey]*protocol.TicketInfo
	byOwner  map[common.Address]map[ticketKey]struct{}
	lastSeen protocol.Cursor
}

type ticketKey struct {
	event common.Address
	id    string
}

// entry is one applied activity with what replay needs that the activity does not carry.
type entry struct {
	act  protocol.Activity
	info *protocol.EventInfo // for eventCreated: the configuration read when it was applied
	keys []string
}

// New returns an empty index of the events created by `factory`.
func New(caller Caller, factory common.Address, publish Publisher) *Index {
	if publish == nil {
		publish = func([]string, protocol.Activity) {}
	}
	ix := &Index{caller: caller, factory: factory, publish: publish}
	ix.reset()
	return ix
}

func (ix *Index) reset() {
	ix.log = nil
	ix.events = map[common.Address]*protocol.EventInfo{}
	ix.order = nil
	ix.tickets = map[ticketKey]*protocol.TicketInfo{}
	ix.byOwner = map[common.Address]map[ticketKey]struct{}{}
}

// Addresses are the contracts whose logs the index needs: the factory and every event.
func (ix *Index) Addresses() []common.Address {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return append([]common.Address{ix.factory}, ix.order...)
}

// Apply adds one block's logs, in log order. Logs of unknown contracts or kinds are ignored.
// It returns whether the block created events (whose own logs in the same block the caller
// must then fetch and apply too).
func (ix *Index) Apply(ctx context.Context, logs []types.Log) (created []common.Address, err error) {
	for _, l := range logs {
		acts, info, err := ix.decode(ctx, l)
		if err != nil {
			return created, err
		}
		for _, a := range acts {
			if err := ix.ApplyActivity(a, info); err != nil {
				return created, err
			}
			if a.Kind == protocol.KindEventCreated {
				created = append(created, common.HexToAddress(a.Event))
			}
		}
	}
	return created, nil
}

// ApplyActivity adds one activity that Decode made (info: the configuration decoded with an
// eventCreated) and publishes it.
func (ix *Index) ApplyActivity(a protocol.Activity, info *protocol.EventInfo) error {
	ix.mu.Lock()
	if len(ix.log) > 0 && !ix.lastSeen.Less(a.Cursor) {
		ix.mu.Unlock()
		return fmt.Errorf("index: log %d/%d applied out of order (last %d/%d)", a.Block, a.LogIndex, ix.lastSeen.Block, ix.lastSeen.LogIndex)
	}
	keys := ix.apply(a, info)
	ix.log = append(ix.log, entry{act: a, info: info, keys: keys})
	ix.lastSeen = a.Cursor
	ix.mu.Unlock()
	ix.publish(keys, a)
	return nil
}

// Seed loads state kept elsewhere — events (in creation order), tickets, and the cursor of
// the last activity they reflect — into an index, without its history. The Workers build
// keeps the index in a database and seeds one of these per request with the rows it needs,
// so the answers and the state changes are this package's.
func (ix *Index) Seed(events []protocol.EventInfo, tickets []protocol.TicketInfo, head protocol.Cursor) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, e := range events {
		a := common.HexToAddress(e.Address)
		if _, ok := ix.events[a]; !ok {
			ix.order = append(ix.order, a)
		}
		cp := e
		ix.events[a] = &cp
	}
	for _, t := range tickets {
		k := ticketKey{common.HexToAddress(t.Event), t.TokenID}
		if old := ix.tickets[k]; old != nil {
			delete(ix.byOwner[common.HexToAddress(old.Owner)], k)
		}
		cp := t
		ix.tickets[k] = &cp
		owner := common.HexToAddress(t.Owner)
		if ix.byOwner[owner] == nil {
			ix.byOwner[owner] = map[ticketKey]struct{}{}
		}
		ix.byOwner[owner][k] = struct{}{}
	}
	if ix.lastSeen.Less(head) {
		ix.lastSeen = head
	}
}

// Revert retracts every activity from block `from` on (a reorganisation replaced those
// blocks), publishing each with Removed set, newest first, and rebuilds the rest.
func (ix *Index) Revert(from uint64) {
	ix.mu.Lock()
	cut := sort.Search(len(ix.log), func(i int) bool { return ix.log[i].act.Block >= from })
	dropped := append([]entry(nil), ix.log[cut:]...)
	kept := ix.log[:cut]
	ix.reset()
	for _, e := range kept {
		ix.apply(e.act, e.info)
		ix.log = append(ix.log, e)
	}
	ix.lastSeen = protocol.Cursor{}
	if len(ix.log) > 0 {
		ix.lastSeen = ix.log[len(ix.log)-1].act.Cursor
	}
	ix.mu.Unlock()
	for i := len(dropped) - 1; i >= 0; i-- {
		a := dropped[i].act
		a.Removed = true
		ix.publish(dropped[i].keys, a)
	}
}

// Since returns the activities for fan-out key `key` after cursor `from`, in order.
func (ix *Index) Since(key string, from protocol.Cursor) []protocol.Activity {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	start := sort.Search(len(ix.log), func(i int) bool { return from.Less(ix.log[i].act.Cursor) })
	var out []protocol.Activity
	for _, e := range ix.log[start:] {
		for _, k := range e.keys {
			if k == key {
				out = append(out, e.act)
				break
			}
		}
	}
	return out
}

// Activities returns every activity after cursor `from`, in order (the category rules
// read the whole history).
func (ix *Index) Activities(from protocol.Cursor) []protocol.Activity {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	start := sort.Search(len(ix.log), func(i int) bool { return from.Less(ix.log[i].act.Cursor) })
	out := make([]protocol.Activity, 0, len(ix.log)-start)
	for _, e := range ix.log[start:] {
		out = append(out, e.act)
	}
	return out
}

// Head is the cursor of the last activity applied.
func (ix *Index) Head() protocol.Cursor {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.lastSeen
}

// Events lists every event, oldest first.
func (ix *Index) Events() []protocol.EventInfo {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make([]protocol.EventInfo, 0, len(ix.order))
	for _, a := range ix.order {
		out = append(out, *ix.events[a])
	}
	return out
}

// Event returns one event's configuration.
func (ix *Index) Event(addr common.Address) (protocol.EventInfo, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	e, ok := ix.events[addr]
	if !ok {
		return protocol.EventInfo{}, false
	}
	return *e, true
}

// TicketsByOwner lists an owner's tickets, by event then id.
func (ix *Index) TicketsByOwner(owner common.Address) []protocol.TicketInfo {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []protocol.TicketInfo
	for k := range ix.byOwner[owner] {
		out = append(out, *ix.tickets[k])
	}
	sortTickets(out)
	return out
}

// EventTickets lists every existing ticket of an event and the index position they
// reflect: a door scanner's snapshot of owners.
func (ix *Index) EventTickets(event common.Address) ([]protocol.TicketInfo, protocol.Cursor) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []protocol.TicketInfo
	for k, t := range ix.tickets {
		if k.event == event {
			out = append(out, *t)
		}
	}
	sortTickets(out)
	return out, ix.lastSeen
}

// Currencies are the ERC-20s the indexed events are priced in.
func (ix *Index) Currencies() map[common.Address]bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := map[common.Address]bool{}
	for _, e := range ix.events {
		if c := common.HexToAddress(e.Currency); c != (common.Address{}) {
			out[c] = true
		}
	}
	return out
}

// Listings lists an event's tickets offered for resale.
func (ix *Index) Listings(event common.Address) []protocol.TicketInfo {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []protocol.TicketInfo
	for k, t := range ix.tickets {
		if k.event == event && t.ListingPrice != "" {
			out = append(out, *t)
		}
	}
	sortTickets(out)
	return out
}

// Ticket returns one ticket.
func (ix *Index) Ticket(event common.Address, id *big.Int) (protocol.TicketInfo, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	t, ok := ix.tickets[ticketKey{event, id.String()}]
	if !ok {
		return protocol.TicketInfo{}, false
	}
	return *t, true
}

func sortTickets(ts []protocol.TicketInfo) {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Event != ts[j].Event {
			return ts[i].Event < ts[j].Event
		}
		a, _ := new(big.Int).SetString(ts[i].TokenID, 10)
		b, _ := new(big.Int).SetString(ts[j].TokenID, 10)
		return a.Cmp(b) < 0
	})
}

// EventKey and OwnerKey are the fan-out keys of an event's and an owner's activity.
func EventKey(a common.Address) string { return "event:" + strings.ToLower(a.Hex()) }
func OwnerKey(a common.Address) string { return "owner:" + strings.ToLower(a.Hex()) }

// apply changes the derived state for one activity and returns its fan-out keys.
// The caller holds ix.mu.
func (ix *Index) apply(a protocol.Activity, info *protocol.EventInfo) []string {
	ev := common.HexToAddress(a.Event)
	keys := []string{EventKey(ev)}
	switch a.Kind {
	case protocol.KindEventCreated:
		cp := *info
		ix.events[ev] = &cp
		ix.order = append(ix.order, ev)
	case protocol.KindTransfer:
		k := ticketKey{ev, a.TokenID}
		from, to := common.HexToAddress(a.From), common.HexToAddress(a.To)
		if from != (common.Address{}) {
			delete(ix.byOwner[from], k)
			keys = append(keys, OwnerKey(from))
		}
		if to == (common.Address{}) { // burned
			delete(ix.tickets, k)
			break
		}
		t := ix.tickets[k]
		if t == nil {
			id, _ := new(big.Int).SetString(a.TokenID, 10)
			t = &protocol.TicketInfo{Event: a.Event, TokenID: a.TokenID, Tier: new(big.Int).Rsh(id, 32).Uint64()}
			ix.tickets[k] = t
			if e := ix.events[ev]; e != nil && int(t.Tier) < len(e.Tiers) {
				e.Tiers[t.Tier].Sold++
			}
		}
		t.Owner = a.To
		t.ListingPrice = "" // any move clears a listing (the contract does the same)
		t.Updated = a.Cursor
		if ix.byOwner[to] == nil {
			ix.byOwner[to] = map[ticketKey]struct{}{}
		}
		ix.byOwner[to][k] = struct{}{}
		keys = append(keys, OwnerKey(to))
	case protocol.KindListed, protocol.KindUnlisted, protocol.KindCheckedIn:
		t := ix.tickets[ticketKey{ev, a.TokenID}]
		if t == nil {
			break
		}
		switch a.Kind {
		case protocol.KindListed:
			t.ListingPrice = a.Price
		case protocol.KindUnlisted:
			t.ListingPrice = ""
		case protocol.KindCheckedIn:
			t.CheckedIn = true
			t.ListingPrice = ""
		}
		t.Updated = a.Cursor
		keys = append(keys, OwnerKey(common.HexToAddress(t.Owner)))
	case protocol.KindResold:
		keys = append(keys, OwnerKey(common.HexToAddress(a.From)), OwnerKey(common.HexToAddress(a.To)))
	case protocol.KindPurchased:
		keys = append(keys, OwnerKey(common.HexToAddress(a.To)))
	case protocol.KindRefunded:
		keys = append(keys, OwnerKey(common.HexToAddress(a.Account)))
	case protocol.KindCancelled:
		if e := ix.events[ev]; e != nil {
			e.Cancelled = true
		}
	}
	return keys
}

// decode turns one log into activities (a batch check-in is one per ticket).
func (ix *Index) decode(ctx context.Context, l types.Log) ([]protocol.Activity, *protocol.EventInfo, error) {
	return Decode(ctx, ix.caller, ix.factory, func(a common.Address) bool {
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		_, ok := ix.events[a]
		return ok
	}, l)
}

// Decode turns one log into activities (a batch check-in is one per ticket): the factory's
// EventCreated (with the new event's configuration, read from its contract at that block)
// and the logs of the events `known` says exist. Other logs give nothing.
func Decode(ctx context.Context, caller Caller, factory common.Address, known func(common.Address) bool, l types.Log) ([]protocol.Activity, *protocol.EventInfo, error) {
	base := protocol.Activity{
		Event:  strings.ToLower(l.Address.Hex()),
		TxHash: l.TxHash.Hex(),
		Cursor: protocol.Cursor{Block: l.BlockNumber, LogIndex: l.Index},
	}
	one := func(a protocol.Activity) []protocol.Activity { return []protocol.Activity{a} }
	hex := func(a common.Address) string { return strings.ToLower(a.Hex()) }
	if l.Address == factory {
		ev, err := factoryABI.UnpackEventCreatedEvent(&l)
		if err != nil {
			return nil, nil, nil // another factory log
		}
		info, err := readEvent(ctx, caller, ev.EventAddress, l.BlockNumber)
		if err != nil {
			return nil, nil, fmt.Errorf("index: read event %s: %w", ev.EventAddress, err)
		}
		info.Issuer, info.Venue, info.Created = hex(ev.Issuer), ev.Venue, base.Cursor
		base.Kind, base.Event, base.Account = protocol.KindEventCreated, hex(ev.EventAddress), hex(ev.Issuer)
		return one(base), info, nil
	}
	if !known(l.Address) || len(l.Topics) == 0 {
		return nil, nil, nil
	}
	a := base
	ev, err := ticketParsed.EventByID(l.Topics[0])
	if err != nil {
		return nil, nil, nil // not one of the ticket contract's events
	}
	switch ev.Name {
	case "Transfer":
		if e, err := ticketABI.UnpackTransferEvent(&l); err == nil {
			a.Kind, a.TokenID, a.From, a.To = protocol.KindTransfer, e.Id.String(), hex(e.From), hex(e.To)
			return one(a), nil, nil
		}
	case "Purchased":
		if e, err := ticketABI.UnpackPurchasedEvent(&l); err == nil {
			a.Kind, a.TokenID, a.To, a.Price, a.Quantity = protocol.KindPurchased, e.FirstTokenId.String(), hex(e.Buyer), e.UnitPrice.String(), e.Quantity.Uint64()
			return one(a), nil, nil
		}
	case "Listed":
		if e, err := ticketABI.UnpackListedEvent(&l); err == nil {
			a.Kind, a.TokenID, a.From, a.Price = protocol.KindListed, e.TokenId.String(), hex(e.Seller), e.Price.String()
			return one(a), nil, nil
		}
	case "Unlisted":
		if e, err := ticketABI.UnpackUnlistedEvent(&l); err == nil {
			a.Kind, a.TokenID = protocol.KindUnlisted, e.TokenId.String()
			return one(a), nil, nil
		}
	case "Resold":
		if e, err := ticketABI.UnpackResoldEvent(&l); err == nil {
			a.Kind, a.TokenID, a.From, a.To, a.Price = protocol.KindResold, e.TokenId.String(), hex(e.Seller), hex(e.Buyer), e.Price.String()
			return one(a), nil, nil
		}
	case "CheckedIn":
		if e, err := ticketABI.UnpackCheckedInEvent(&l); err == nil {
			a.Kind, a.TokenID, a.Account = protocol.KindCheckedIn, e.TokenId.String(), hex(e.Gate)
			return one(a), nil, nil
		}
	case "CheckedInBatch":
		if e, err := ticketABI.UnpackCheckedInBatchEvent(&l); err == nil {
			// One activity per ticket, numbered within the log.
			out := make([]protocol.Activity, 0, len(e.TokenIds))
			for i, id := range e.TokenIds {
				b := a
				b.Kind, b.TokenID, b.Account = protocol.KindCheckedIn, id.String(), hex(e.Gate)
				b.Sub = uint(i)
				out = append(out, b)
			}
			return out, nil, nil
		}
	case "GateSet":
		if e, err := ticketABI.UnpackGateSetEvent(&l); err == nil {
			allowed := e.Allowed
			a.Kind, a.Account, a.Allowed = protocol.KindGateSet, hex(e.Gate), &allowed
			return one(a), nil, nil
		}
	case "Cancelled":
		a.Kind = protocol.KindCancelled
		return one(a), nil, nil
	case "Refunded":
		if e, err := ticketABI.UnpackRefundedEvent(&l); err == nil {
			a.Kind, a.TokenID, a.Account, a.Price = protocol.KindRefunded, e.TokenId.String(), hex(e.Holder), e.Amount.String()
			return one(a), nil, nil
		}
	}
	return nil, nil, nil
}

// readEvent reads an event's configuration from its contract at `block`.
func readEvent(ctx context.Context, caller Caller, addr common.Address, block uint64) (*protocol.EventInfo, error) {
	at := new(big.Int).SetUint64(block)
	call := func(data []byte) ([]byte, error) {
		return caller.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: data}, at)
	}
	info := &protocol.EventInfo{Address: strings.ToLower(addr.Hex())}
	out, err := call(ticketABI.PackSettings())
	if err != nil {
		return nil, err
	}
	st, err := ticketABI.UnpackSettings(out)
	if err != nil {
		return nil, err
	}
	info.StartsAt, info.DoorsOpenAt, info.ResaleClosesAt = st.StartsAt.Uint64(), st.DoorsOpenAt.Uint64(), st.ResaleClosesAt.Uint64()
	info.MaxPerBuyer, info.MaxResaleMarkupBps, info.SellerMarkupShareBps = st.MaxPerBuyer, st.MaxResaleMarkupBps, st.SellerMarkupShareBps
	info.GiftsAllowed, info.Cancelled = st.GiftsAllowed, st.Cancelled
	if out, err = call(ticketABI.PackName()); err != nil {
		return nil, err
	}
	if info.Name, err = ticketABI.UnpackName(out); err != nil {
		return nil, err
	}
	if out, err = call(ticketABI.PackBaseURI()); err != nil {
		return nil, err
	}
	if info.BaseURI, err = ticketABI.UnpackBaseURI(out); err != nil {
		return nil, err
	}
	if out, err = call(ticketABI.PackCurrency()); err != nil {
		return nil, err
	}
	cur, err := ticketABI.UnpackCurrency(out)
	if err != nil {
		return nil, err
	}
	info.Currency = strings.ToLower(cur.Hex())
	for i := 0; i < int(st.TierCount); i++ {
		if out, err = call(ticketABI.PackTierInfo(big.NewInt(int64(i)))); err != nil {
			return nil, err
		}
		t, err := ticketABI.UnpackTierInfo(out)
		if err != nil {
			return nil, err
		}
		info.Tiers = append(info.Tiers, protocol.TierInfo{FaceValue: t.FaceValue.String(), Supply: t.Supply})
	}
	if err := tierNames(ctx, caller, addr, block, info); err != nil {
		return nil, err
	}
	if out, err = call(ticketABI.PackSplits()); err != nil {
		return nil, err
	}
	splits, err := ticketABI.UnpackSplits(out)
	if err != nil {
		return nil, err
	}
	for _, s := range splits {
		info.Splits = append(info.Splits, protocol.SplitInfo{Account: strings.ToLower(s.Account.Hex()), Bps: s.Bps, Role: s.Role})
	}
	if out, err = call(ticketABI.PackDiscounts()); err != nil {
		return nil, err
	}
	ds, err := ticketABI.UnpackDiscounts(out)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		info.Discounts = append(info.Discounts, protocol.Discount{From: d.From.Uint64(), MaxDiscountBps: d.MaxDiscountBps})
	}
	for c := range info.CategoryQuotaBps {
		if out, err = call(ticketABI.PackCategoryQuotaBps(uint8(c))); err != nil {
			return nil, err
		}
		q, err := ticketABI.UnpackCategoryQuotaBps(out)
		if err != nil {
			return nil, err
		}
		info.CategoryQuotaBps[c] = uint16(q.Uint64())
	}
	for _, x := range []struct {
		pack   []byte
		unpack func([]byte) (*big.Int, error)
		into   *uint64
	}{
		{ticketABI.PackPresaleEndsAt(), ticketABI.UnpackPresaleEndsAt, &info.PresaleEndsAt},
		{ticketABI.PackSuperfanPresaleEndsAt(), ticketABI.UnpackSuperfanPresaleEndsAt, &info.SuperfanPresaleEndsAt},
	} {
		if out, err = call(x.pack); err != nil {
			return nil, err
		}
		v, err := x.unpack(out)
		if err != nil {
			return nil, err
		}
		*x.into = v.Uint64()
	}
	return info, nil
}

// tierNames fills in tier names, which the contract emits (TierConfigured) rather than
// stores, from the creating block's logs.
func tierNames(ctx context.Context, caller Caller, addr common.Address, block uint64, info *protocol.EventInfo) error {
	fl, ok := caller.(ethereum.LogFilterer)
	if !ok {
		return nil
	}
	at := new(big.Int).SetUint64(block)
	logs, err := fl.FilterLogs(ctx, ethereum.FilterQuery{
		FromBlock: at, ToBlock: at, Addresses: []common.Address{addr},
		Topics: [][]common.Hash{{ticketParsed.Events["TierConfigured"].ID}},
	})
	if err != nil {
		return err
	}
	for _, l := range logs {
		if e, err := ticketABI.UnpackTierConfiguredEvent(&l); err == nil && e.Tier.IsUint64() && e.Tier.Uint64() < uint64(len(info.Tiers)) {
			info.Tiers[e.Tier.Uint64()].Name = e.Name
		}
	}
	return nil
}
