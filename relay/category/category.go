// Package category computes buyer categories (claims 5, 17-19): bot, scalper, fan and
// superfan of an artist, or unclassified, from a buyer's history on the platform — what the
// chain shows (purchases, resales and their markups, gifts, check-ins per artist) and what
// the card processor shows (one card's fingerprint across many wallets). Every rule and
// threshold is in this file; the relay uses it to explain a buyer's category, and each
// oracle node runs it on its own copy of the chain to decide what it attests.
//
// The rules are deterministic: the same activities (up to the same block) and the same card
// signals give the same verdicts on every node, which is what lets k of them sign one
// identical attestation.
package category

import (
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/stagepass/stagepass/wasm/protocol"
)

// Categories, numbered as EventTypes.sol's Category library.
const (
	Unclassified uint8 = iota
	Fan
	Superfan
	Scalper
	Bot
)

// Names are the categories in words, by number.
var Names = [...]string{"unclassified", "fan", "superfan", "scalper", "bot"}

// Rules are the thresholds; DefaultRules are the platform's.
type Rules struct {
	// Superfan of artist A: checked in at SuperfanCheckIns or more of A's events.
	SuperfanCheckIns int
	// Fan of artist A: checked in at FanCheckIns or more of A's events, or kept (did not
	// resell) tickets to FanEventsKept or more of them.
	FanCheckIns, FanEventsKept int
	// Scalper (any artist): resold ScalperResales or more tickets across ScalperEvents or
	// more events, ScalperShare or more of all the tickets they acquired, at an average
	// markup of ScalperNearCap or more of the events' allowed cap.
	ScalperResales, ScalperEvents int
	ScalperShare, ScalperNearCap  float64
	// Bot (any artist): one card fingerprint used by BotWalletsPerCard or more wallets, or
	// BotBurst or more purchases by one wallet within BotBurstBlocks consecutive blocks.
	BotWalletsPerCard int
	BotBurst          int
	BotBurstBlocks    uint64
	// CountTestCards counts the processor's test-mode cards as fingerprints (every fan in
	// development pays with 4242 4242 4242 4242, which is one card).
	CountTestCards bool
}

// DefaultRules are the thresholds the platform runs with.
func DefaultRules() Rules {
	return Rules{
		SuperfanCheckIns: 3, FanCheckIns: 1, FanEventsKept: 2,
		ScalperResales: 3, ScalperEvents: 2, ScalperShare: 0.5, ScalperNearCap: 0.8,
		BotWalletsPerCard: 5, BotBurst: 8, BotBurstBlocks: 5,
	}
}

// Verdict is one buyer's category for one artist (Artist "" for bot and scalper, which hold
// for every artist), with the facts that put them there.
type Verdict struct {
	Buyer    string   `json:"buyer"`
	Artist   string   `json:"artist,omitempty"`
	Category uint8    `json:"category"`
	Name     string   `json:"name"`
	Facts    []string `json:"facts"`
}

type eventFacts struct {
	artist string
	face   []*big.Int // per tier
	capBps uint16
}

type wallet struct {
	acquired   map[string]int // event → tickets acquired (bought, bought on resale, received)
	resold     map[string]int // event → tickets resold as the seller
	nearCap    []float64      // per resale sold: markup as a share of the allowed markup
	checkedIn  map[string]bool
	buyBlocks  []uint64 // blocks of primary purchases, in order
	cards      map[string]bool
	purchased  map[string]int // event → tickets bought at primary sale
	giftsGiven int
}

// History is what the rules read, built from the chain's activities in order (Apply) and
// the processor's card signals (AddCard).
type History struct {
	events  map[string]*eventFacts
	wallets map[string]*wallet
	owners  map[string]string          // event/token → owner
	cards   map[string]map[string]bool // fingerprint → wallets
	gifts   map[string]string          // event/token/tx of a plain transfer → its sender
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{events: map[string]*eventFacts{}, wallets: map[string]*wallet{}, owners: map[string]string{},
		cards: map[string]map[string]bool{}, gifts: map[string]string{}}
}

// ArtistOf is whose fans an event counts, as OracleHub.registerEvent decides: the first
// revenue-split party with the artist role, else the originator.
func ArtistOf(ev protocol.EventInfo) string {
	for _, s := range ev.Splits {
		if s.Role == 1 {
			return strings.ToLower(s.Account)
		}
	}
	if len(ev.Splits) > 0 {
		return strings.ToLower(ev.Splits[0].Account)
	}
	return ""
}

// AddEvent records an event's artist, face values and resale cap.
func (h *History) AddEvent(ev protocol.EventInfo) {
	f := &eventFacts{artist: ArtistOf(ev), capBps: ev.MaxResaleMarkupBps}
	for _, t := range ev.Tiers {
		v, _ := new(big.Int).SetString(t.FaceValue, 10)
		f.face = append(f.face, v)
	}
	h.events[strings.ToLower(ev.Address)] = f
}

func (h *History) w(addr string) *wallet {
	addr = strings.ToLower(addr)
	w := h.wallets[addr]
	if w == nil {
		w = &wallet{acquired: map[string]int{}, resold: map[string]int{}, checkedIn: map[string]bool{}, cards: map[string]bool{}, purchased: map[string]int{}}
		h.wallets[addr] = w
	}
	return w
}

const zeroAddr = "0x0000000000000000000000000000000000000000"

// Apply folds one activity (the relay index's, in chain order) into the history.
func (h *History) Apply(a protocol.Activity) {
	if a.Removed {
		return
	}
	ev := strings.ToLower(a.Event)
	key := ev + "/" + a.TokenID
	switch a.Kind {
	case protocol.KindPurchased:
		w := h.w(a.To)
		q := int(max(a.Quantity, 1))
		w.purchased[ev] += q
		for range q {
			w.buyBlocks = append(w.buyBlocks, a.Block)
		}
	case protocol.KindResold:
		// The resale's Transfer (counted as the buyer's acquisition) precedes it; count the
		// sale for the seller.
		s := h.w(a.From)
		s.resold[ev]++
		if f := h.events[ev]; f != nil {
			id, ok := new(big.Int).SetString(a.TokenID, 10)
			price, ok2 := new(big.Int).SetString(a.Price, 10)
			if ok && ok2 {
				tier := new(big.Int).Rsh(id, 32).Uint64()
				if int(tier) < len(f.face) && f.capBps > 0 {
					face := f.face[tier]
					allowed := new(big.Float).SetInt(new(big.Int).Div(new(big.Int).Mul(face, big.NewInt(int64(f.capBps))), big.NewInt(10_000)))
					markup := new(big.Float).SetInt(new(big.Int).Sub(price, face))
					share, _ := new(big.Float).Quo(markup, allowed).Float64()
					s.nearCap = append(s.nearCap, share)
				}
			}
		}
		// The resale's Transfer came first in its transaction and was counted as a gift.
		if from, ok := h.gifts[key+"/"+a.TxHash]; ok {
			h.w(from).giftsGiven--
			delete(h.gifts, key+"/"+a.TxHash)
		}
	case protocol.KindTransfer:
		if a.To != zeroAddr {
			h.w(a.To).acquired[ev]++
		}
		if a.From != zeroAddr && a.To != zeroAddr {
			// A gift, unless a Resold follows in the same transaction. Gifts are facts
			// only: no rule uses them yet.
			h.w(a.From).giftsGiven++
			h.gifts[key+"/"+a.TxHash] = strings.ToLower(a.From)
		}
		h.owners[key] = a.To
	case protocol.KindCheckedIn:
		if o := h.owners[key]; o != "" && o != zeroAddr {
			h.w(o).checkedIn[ev] = true
		}
	}
}

// AddCard records that `buyer` paid with the card whose processor fingerprint is
// `fingerprint`; test-mode cards count only if the rules say so.
func (h *History) AddCard(buyer, fingerprint string, live bool, r Rules) {
	if fingerprint == "" || (!live && !r.CountTestCards) {
		return
	}
	buyer = strings.ToLower(buyer)
	h.w(buyer).cards[fingerprint] = true
	if h.cards[fingerprint] == nil {
		h.cards[fingerprint] = map[string]bool{}
	}
	h.cards[fingerprint][buyer] = true
}

// Classify gives every wallet's verdicts: one for all artists when the wallet is a bot or
// a scalper, else one per artist it is a fan or superfan of. Unclassified wallets have no
// verdict. The result is sorted by buyer, then artist.
func (h *History) Classify(r Rules) []Verdict {
	buyers := make([]string, 0, len(h.wallets))
	for b := range h.wallets {
		buyers = append(buyers, b)
	}
	sort.Strings(buyers)
	var out []Verdict
	for _, b := range buyers {
		g, fans := h.Explain(b, r)
		if g.Category != Unclassified {
			out = append(out, g)
			continue
		}
		for _, v := range fans {
			if v.Category != Unclassified {
				out = append(out, v)
			}
		}
	}
	return out
}

// Explain is one wallet's verdict for every artist (bot, scalper or unclassified, with its
// facts) and its verdict per artist whose events it has been to.
func (h *History) Explain(buyer string, r Rules) (Verdict, []Verdict) {
	buyer = strings.ToLower(buyer)
	g := Verdict{Buyer: buyer, Category: Unclassified}
	w := h.wallets[buyer]
	if w == nil {
		g.Name, g.Facts = Names[Unclassified], []string{"no purchases, resales or check-ins on Stagepass yet"}
		return g, nil
	}
	// Bot.
	for fp := range w.cards {
		if n := len(h.cards[fp]); n >= r.BotWalletsPerCard {
			g.Category = Bot
			g.Facts = append(g.Facts, fmt.Sprintf("a card this wallet paid with was used by %d wallets (a bot at %d)", n, r.BotWalletsPerCard))
		}
	}
	if r.BotBurst > 0 {
		for i := 0; i+r.BotBurst-1 < len(w.buyBlocks); i++ {
			if w.buyBlocks[i+r.BotBurst-1]-w.buyBlocks[i] < r.BotBurstBlocks {
				g.Category = Bot
				g.Facts = append(g.Facts, fmt.Sprintf("%d purchases within %d blocks (a bot at %d within %d)",
					r.BotBurst, w.buyBlocks[i+r.BotBurst-1]-w.buyBlocks[i]+1, r.BotBurst, r.BotBurstBlocks))
				break
			}
		}
	}
	sort.Strings(g.Facts)
	// Scalper.
	acquired, resold, events := 0, 0, 0
	for _, n := range w.acquired {
		acquired += n
	}
	for _, n := range w.resold {
		resold += n
		if n > 0 {
			events++
		}
	}
	avg := 0.0
	for _, s := range w.nearCap {
		avg += s
	}
	if len(w.nearCap) > 0 {
		avg /= float64(len(w.nearCap))
	}
	if g.Category == Unclassified && resold >= r.ScalperResales && events >= r.ScalperEvents &&
		acquired > 0 && float64(resold) >= r.ScalperShare*float64(acquired) && avg >= r.ScalperNearCap {
		g.Category = Scalper
		g.Facts = append(g.Facts, fmt.Sprintf("resold %d of %d tickets acquired, across %d events, at %.0f%% of the allowed markup on average (a scalper at %d resales, %d events, %.0f%% of tickets, %.0f%% of the cap)",
			resold, acquired, events, 100*avg, r.ScalperResales, r.ScalperEvents, 100*r.ScalperShare, 100*r.ScalperNearCap))
	}
	if g.Category == Unclassified {
		g.Facts = append(g.Facts, fmt.Sprintf("%d tickets acquired, %d resold, %d gifted, %d card(s) seen; not a bot or scalper", acquired, resold, w.giftsGiven, len(w.cards)))
	}
	g.Name = Names[g.Category]

	// Per artist: check-ins, and events whose tickets were kept.
	type tally struct{ checkIns, kept int }
	per := map[string]*tally{}
	for ev, f := range h.events {
		if f.artist == "" {
			continue
		}
		t := per[f.artist]
		if t == nil {
			t = &tally{}
		}
		if w.checkedIn[ev] {
			t.checkIns++
		}
		if w.acquired[ev] > w.resold[ev] {
			t.kept++
		}
		if t.checkIns > 0 || t.kept > 0 {
			per[f.artist] = t
		}
	}
	artists := make([]string, 0, len(per))
	for a := range per {
		artists = append(artists, a)
	}
	sort.Strings(artists)
	var fans []Verdict
	for _, a := range artists {
		t := per[a]
		v := Verdict{Buyer: buyer, Artist: a, Category: Unclassified}
		switch {
		case t.checkIns >= r.SuperfanCheckIns:
			v.Category = Superfan
		case t.checkIns >= r.FanCheckIns || t.kept >= r.FanEventsKept:
			v.Category = Fan
		}
		v.Name = Names[v.Category]
		v.Facts = []string{fmt.Sprintf("checked in at %d of this artist's events, kept tickets to %d (a superfan at %d check-ins; a fan at %d check-in or %d events kept)",
			t.checkIns, t.kept, r.SuperfanCheckIns, r.FanCheckIns, r.FanEventsKept)}
		fans = append(fans, v)
	}
	return g, fans
}
