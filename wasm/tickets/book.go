// Package tickets keeps a wallet account's tickets: a fold of the relay's pushes on the
// owner's "tickets" topic, with reorg retractions, cached for offline use, resumed from
// the last cursor after a reconnect.
package tickets

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/stagepass/stagepass/wasm/protocol"
)

// Ticket states shown to the fan.
const (
	StateValid     = "valid"
	StateListed    = "listed"
	StateCheckedIn = "checkedIn"
)

// serialBits is EventTicket's SERIAL_BITS: a token id is tier << 32 | serial.
const serialBits = 32

// Ticket is one ticket the account holds.
type Ticket struct {
	Event        string          `json:"event"`
	TokenID      string          `json:"tokenId"`
	Tier         uint64          `json:"tier"`
	Owner        string          `json:"owner"`
	ListingPrice string          `json:"listingPrice,omitempty"`
	CheckedIn    bool            `json:"checkedIn"`
	State        string          `json:"state"`
	Updated      protocol.Cursor `json:"updated"`
}

// Book is the account's ticket history as the relay pushed it. Tickets are derived from
// the history, so a retraction (removed:true) is undone exactly by dropping its activity
// and folding again.
type Book struct {
	Owner  string                        `json:"owner"` // lowercase 0x address
	Cursor protocol.Cursor               `json:"cursor"`
	Log    []protocol.Activity           `json:"log"`
	Events map[string]protocol.EventInfo `json:"events,omitempty"` // lowercase address → info
}

// NewBook returns an empty book for owner.
func NewBook(owner string) *Book {
	return &Book{Owner: strings.ToLower(owner), Events: map[string]protocol.EventInfo{}}
}

// Decode reads a cached book; it must belong to owner.
func Decode(b []byte, owner string) (*Book, error) {
	bk := NewBook(owner)
	if err := json.Unmarshal(b, bk); err != nil {
		return nil, fmt.Errorf("tickets: decode cache: %w", err)
	}
	if bk.Owner != strings.ToLower(owner) {
		return nil, fmt.Errorf("tickets: cache is for %s, not %s", bk.Owner, owner)
	}
	if bk.Events == nil {
		bk.Events = map[string]protocol.EventInfo{}
	}
	return bk, nil
}

// Encode is the cache record.
func (b *Book) Encode() []byte {
	out, _ := json.Marshal(b)
	return out
}

func same(a, b protocol.Activity) bool {
	return a.Cursor == b.Cursor && a.Kind == b.Kind && a.TokenID == b.TokenID &&
		strings.EqualFold(a.TxHash, b.TxHash) && strings.EqualFold(a.Event, b.Event)
}

// Apply adds one pushed activity (or retracts it when Removed) and reports whether the
// book changed. Repeats are ignored.
func (b *Book) Apply(a protocol.Activity) bool {
	if a.Removed {
		for i := len(b.Log) - 1; i >= 0; i-- {
			if same(b.Log[i], a) {
				b.Log = append(b.Log[:i], b.Log[i+1:]...)
				// Resume from before the retracted blocks: the replacement chain's
				// activities may sit at lower positions than what was taken back.
				b.Cursor = protocol.Cursor{}
				if n := len(b.Log); n > 0 {
					b.Cursor = b.Log[n-1].Cursor
				}
				return true
			}
		}
		return false
	}
	a.Removed = false
	i := sort.Search(len(b.Log), func(i int) bool { return !b.Log[i].Cursor.Less(a.Cursor) })
	for j := i; j < len(b.Log) && b.Log[j].Cursor == a.Cursor; j++ {
		if same(b.Log[j], a) {
			return false
		}
	}
	b.Log = append(b.Log, protocol.Activity{})
	copy(b.Log[i+1:], b.Log[i:])
	b.Log[i] = a
	if b.Cursor.Less(a.Cursor) {
		b.Cursor = a.Cursor
	}
	return true
}

// Tickets folds the history into the tickets the owner holds now, sorted by event and id.
func (b *Book) Tickets() []Ticket {
	type key struct{ event, id string }
	held := map[key]*Ticket{}
	for _, a := range b.Log {
		k := key{strings.ToLower(a.Event), a.TokenID}
		t := held[k]
		switch a.Kind {
		case protocol.KindTransfer:
			switch {
			case strings.EqualFold(a.To, b.Owner):
				id, _ := new(big.Int).SetString(a.TokenID, 10)
				if id == nil {
					continue
				}
				held[k] = &Ticket{Event: k.event, TokenID: a.TokenID, Tier: new(big.Int).Rsh(id, serialBits).Uint64(),
					Owner: b.Owner, Updated: a.Cursor}
			case strings.EqualFold(a.From, b.Owner):
				delete(held, k)
			}
		case protocol.KindListed:
			if t != nil {
				t.ListingPrice, t.Updated = a.Price, a.Cursor
			}
		case protocol.KindUnlisted:
			if t != nil {
				t.ListingPrice, t.Updated = "", a.Cursor
			}
		case protocol.KindCheckedIn:
			if t != nil {
				t.CheckedIn, t.ListingPrice, t.Updated = true, "", a.Cursor
			}
		}
	}
	out := make([]Ticket, 0, len(held))
	for _, t := range held {
		switch {
		case t.CheckedIn:
			t.State = StateCheckedIn
		case t.ListingPrice != "":
			t.State = StateListed
		default:
			t.State = StateValid
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Event != out[j].Event {
			return out[i].Event < out[j].Event
		}
		x, _ := new(big.Int).SetString(out[i].TokenID, 10)
		y, _ := new(big.Int).SetString(out[j].TokenID, 10)
		return x.Cmp(y) < 0
	})
	return out
}

// MissingEvents lists events of held tickets whose details the book lacks.
func (b *Book) MissingEvents() []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range b.Tickets() {
		if _, ok := b.Events[t.Event]; !ok && !seen[t.Event] {
			seen[t.Event] = true
			out = append(out, t.Event)
		}
	}
	return out
}
