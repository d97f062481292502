// Package scanner is the door: it verifies passes against the freshest owner data it has
// (the relay's snapshot of the event's tickets, kept current by the event topic's pushes),
// remembers what this device admitted, and queues offline admissions for a batch check-in
// when the network returns. It holds no keys and makes no calls; the wallet wires it to
// the relay and signs the check-ins with the gate account.
package scanner

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Verdict codes: OK, or why a pass is refused.
const (
	Admitted         = "ADMITTED"
	PassExpired      = "PASS_EXPIRED"
	PassFuture       = "PASS_FUTURE"
	PassMalformed    = "PASS_MALFORMED"
	PassForged       = "PASS_FORGED"
	PassWrongChain   = "PASS_WRONG_CHAIN"
	PassWrongEvent   = "PASS_WRONG_EVENT"
	PassNotOwner     = "PASS_NOT_OWNER" // transferred (or never the holder's)
	AlreadyCheckedIn = "ALREADY_CHECKED_IN"
	PassReplayed     = "PASS_REPLAYED" // this device already admitted the ticket
	UnknownTicket    = "UNKNOWN_TICKET"
)

var reasons = map[string]string{
	PassExpired:   "pass expired: ask the holder to reopen it (the code changes every 15 s)",
	PassFuture:    "pass is from the future: a clock is wrong",
	PassMalformed: "not a Stagepass pass", PassForged: "forged pass: the signature is not the holder's",
	PassWrongChain: "pass for another network", PassWrongEvent: "pass for another event",
	PassNotOwner:     "the ticket now belongs to someone else (transferred or resold)",
	AlreadyCheckedIn: "ticket already checked in", PassReplayed: "ticket already admitted at this door",
	UnknownTicket: "no such ticket for this event",
}

// Verdict is the door's answer for one pass.
type Verdict struct {
	Code    string `json:"code"`
	OK      bool   `json:"ok"`
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"`
	Holder  string `json:"holder,omitempty"`
	TokenID string `json:"tokenId,omitempty"`
	Tier    uint64 `json:"tier"`
}

func reject(code string, err error, p protocol.Pass) Verdict {
	v := Verdict{Code: code, Reason: reasons[code]}
	if err != nil {
		v.Detail = err.Error()
	}
	if !p.Holder.IsZero() {
		v.Holder = p.Holder.Hex()
	}
	if p.TokenID != nil {
		v.TokenID = p.TokenID.String()
	}
	return v
}

type owned struct {
	Owner     string `json:"owner"`
	CheckedIn bool   `json:"checkedIn"`
}

// State is what the scanner persists (so a reload keeps the offline queue).
type State struct {
	Event    string            `json:"event"`
	Cursor   protocol.Cursor   `json:"cursor"`
	Taken    int64             `json:"taken"` // when the snapshot was loaded (unix ms)
	Tickets  map[string]owned  `json:"tickets"`
	Admitted map[string]int64  `json:"admitted"` // token id → when this device admitted it (unix ms)
	Queue    []string          `json:"queue"`    // admitted, check-in not yet sent
	Sent     map[string]string `json:"sent"`     // token id → request id of its check-in
	// Doubles are double entries: tickets this device admitted offline that the chain then
	// showed checked in at another door before this device's check-in was sent (token id →
	// when it was found, unix ms).
	Doubles map[string]int64 `json:"doubles,omitempty"`
	// For tickets sent from here: the transaction that checked each in on the chain (token
	// id → tx hash, from the event topic) and the transaction each of this device's
	// check-in requests was mined in (request id → tx hash). Different: another door's
	// check-in landed first and this device's batch skipped the ticket — a double entry.
	CheckedTx map[string]string `json:"checkedTx,omitempty"`
	MinedTx   map[string]string `json:"minedTx,omitempty"`
}

// Scanner is one door of one event.
type Scanner struct {
	chainID uint64
	event   ethcrypto.Address

	mu sync.Mutex
	st State
}

// New returns a scanner for event on chainID; restore a saved state with Restore.
func New(chainID uint64, event ethcrypto.Address) *Scanner {
	return &Scanner{chainID: chainID, event: event, st: State{Event: strings.ToLower(event.Hex()),
		Tickets: map[string]owned{}, Admitted: map[string]int64{}, Sent: map[string]string{}}}
}

// CacheKey is where a scanner's state is stored.
func CacheKey(event ethcrypto.Address) string { return "scanner:" + strings.ToLower(event.Hex()) }

// Restore loads a saved state of the same event.
func (s *Scanner) Restore(b []byte) error {
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("scanner: restore: %w", err)
	}
	if st.Event != strings.ToLower(s.event.Hex()) {
		return fmt.Errorf("scanner: saved state is for %s", st.Event)
	}
	if st.Tickets == nil {
		st.Tickets = map[string]owned{}
	}
	if st.Admitted == nil {
		st.Admitted = map[string]int64{}
	}
	if st.Sent == nil {
		st.Sent = map[string]string{}
	}
	s.mu.Lock()
	s.st = st
	s.mu.Unlock()
	return nil
}

// Save is the state to persist.
func (s *Scanner) Save() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(s.st)
	return b
}

// LoadSnapshot replaces the owner data with the relay's snapshot (sp_eventTickets).
// This device's admissions stay: they are facts the chain may not know yet.
func (s *Scanner) LoadSnapshot(snap protocol.EventTickets, now time.Time) error {
	if !strings.EqualFold(snap.Event, s.event.Hex()) {
		return fmt.Errorf("scanner: snapshot is of %s, not %s", snap.Event, s.event.Hex())
	}
	t := make(map[string]owned, len(snap.Tickets))
	for _, tk := range snap.Tickets {
		t[tk.TokenID] = owned{Owner: strings.ToLower(tk.Owner), CheckedIn: tk.CheckedIn}
	}
	s.mu.Lock()
	s.st.Tickets, s.st.Cursor, s.st.Taken = t, snap.Cursor, now.UnixMilli()
	for _, id := range append([]string(nil), s.st.Queue...) {
		if t[id].CheckedIn {
			s.double(id)
		}
	}
	s.mu.Unlock()
	return nil
}

// Cursor is where the event topic should resume.
func (s *Scanner) Cursor() protocol.Cursor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Cursor
}

// Apply updates the owner data from an event-topic push (transfers, check-ins, and their
// retractions). It reports whether anything changed.
func (s *Scanner) Apply(a protocol.Activity) bool {
	if !strings.EqualFold(a.Event, s.event.Hex()) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !a.Removed && !s.st.Cursor.Less(a.Cursor) {
		return false // already reflected
	}
	zero := "0x0000000000000000000000000000000000000000"
	changed := true
	switch a.Kind {
	case protocol.KindTransfer:
		owner := strings.ToLower(a.To)
		if a.Removed {
			owner = strings.ToLower(a.From)
		}
		if owner == zero {
			delete(s.st.Tickets, a.TokenID)
		} else {
			t := s.st.Tickets[a.TokenID]
			t.Owner = owner
			s.st.Tickets[a.TokenID] = t
		}
	case protocol.KindCheckedIn:
		t, ok := s.st.Tickets[a.TokenID]
		if ok {
			t.CheckedIn = !a.Removed
			s.st.Tickets[a.TokenID] = t
		}
		if !a.Removed {
			// Checked in while still in this device's queue (not sent yet): another door
			// let the same ticket in.
			s.double(a.TokenID)
			if r, sent := s.st.Sent[a.TokenID]; sent && a.TxHash != "" {
				if s.st.CheckedTx == nil {
					s.st.CheckedTx = map[string]string{}
				}
				s.st.CheckedTx[a.TokenID] = strings.ToLower(a.TxHash)
				s.compare(a.TokenID, r)
			}
		}
	default:
		changed = false
	}
	if a.Removed {
		// Resume from before the retracted position; the relay resends what replaces it.
		if !a.Cursor.Less(s.st.Cursor) && a.Cursor.Block > 0 {
			s.st.Cursor = protocol.Cursor{Block: a.Cursor.Block - 1, LogIndex: ^uint(0) >> 1}
		}
	} else {
		s.st.Cursor = a.Cursor
	}
	return changed
}

// Mined records the transaction a check-in request of this device was mined in; a ticket
// of that request the chain shows checked in by another transaction is a double entry.
func (s *Scanner) Mined(requestID, txHash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.MinedTx == nil {
		s.st.MinedTx = map[string]string{}
	}
	s.st.MinedTx[requestID] = strings.ToLower(txHash)
	for id, r := range s.st.Sent {
		if r == requestID {
			s.compare(id, r)
		}
	}
}

// compare records a double entry when ticket id, sent from here in request r, was checked
// in by another transaction than r's.
func (s *Scanner) compare(id, r string) {
	mined, checked := s.st.MinedTx[r], s.st.CheckedTx[id]
	if mined == "" || checked == "" || mined == checked {
		return
	}
	if s.st.Doubles == nil {
		s.st.Doubles = map[string]int64{}
	}
	if _, ok := s.st.Doubles[id]; !ok {
		s.st.Doubles[id] = time.Now().UnixMilli()
	}
}

// double records a double entry if id is in the queue (admitted here offline, check-in
// not sent) and takes it out: the chain has it checked in already.
func (s *Scanner) double(id string) {
	for _, q := range s.st.Queue {
		if q == id {
			if s.st.Doubles == nil {
				s.st.Doubles = map[string]int64{}
			}
			s.st.Doubles[id] = time.Now().UnixMilli()
			s.dequeue(id)
			return
		}
	}
}

func (s *Scanner) dequeue(id string) {
	for i, q := range s.st.Queue {
		if q == id {
			s.st.Queue = append(s.st.Queue[:i], s.st.Queue[i+1:]...)
			return
		}
	}
}

// Lookup gives the freshest owner data for the pass's ticket when the device is online
// (the relay's sp_ticketsByOwner of the claimed holder): whether the holder holds it and
// whether it is checked in. An error falls back to the snapshot.
type Lookup func(p protocol.Pass) (held, checkedIn bool, err error)

// Check verifies a pass at now without admitting it: signature, window, chain, event,
// owner per lookup (nil: the snapshot), not checked in, not admitted here before.
func (s *Scanner) Check(payload string, now time.Time, lookup Lookup) (Verdict, protocol.Pass) {
	v := protocol.Verifier{ChainID: s.chainID, Events: []ethcrypto.Address{s.event}}
	p, err := v.Verify(payload, now)
	for _, m := range []struct {
		err  error
		code string
	}{
		{protocol.ErrPassMalformed, PassMalformed}, {protocol.ErrPassExpired, PassExpired}, {protocol.ErrPassFuture, PassFuture},
		{protocol.ErrPassForged, PassForged}, {protocol.ErrPassWrongChain, PassWrongChain}, {protocol.ErrPassWrongEvent, PassWrongEvent},
	} {
		if errors.Is(err, m.err) {
			return reject(m.code, err, p), p
		}
	}
	if err != nil {
		return reject(PassMalformed, err, p), p
	}
	id := p.TokenID.String()
	fresh := false
	var held, checkedIn bool
	if lookup != nil {
		var err error
		held, checkedIn, err = lookup(p)
		fresh = err == nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.st.Admitted[id]; ok {
		return reject(PassReplayed, fmt.Errorf("admitted at %s", time.UnixMilli(at).UTC().Format("15:04:05")), p), p
	}
	t, ok := s.st.Tickets[id]
	if fresh {
		ok = true
		t = owned{CheckedIn: checkedIn, Owner: "someone else"}
		if held {
			t.Owner = strings.ToLower(p.Holder.Hex())
		}
	}
	switch {
	case !ok:
		return reject(UnknownTicket, nil, p), p
	case t.CheckedIn:
		return reject(AlreadyCheckedIn, nil, p), p
	case t.Owner != strings.ToLower(p.Holder.Hex()):
		return reject(PassNotOwner, fmt.Errorf("%w: owner is %s", protocol.ErrPassNotOwner, t.Owner), p), p
	}
	return Verdict{Code: Admitted, OK: true, Holder: p.Holder.Hex(), TokenID: id, Tier: new(big.Int).Rsh(p.TokenID, 32).Uint64()}, p
}

// Admit records that this device let the ticket in. With requestID empty (offline) its
// check-in is queued to be sent later; otherwise it was submitted as that request.
func (s *Scanner) Admit(tokenID string, now time.Time, requestID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Admitted[tokenID] = now.UnixMilli()
	if requestID == "" {
		s.st.Queue = append(s.st.Queue, tokenID)
	} else {
		s.st.Sent[tokenID] = requestID
	}
}

// Unadmit forgets an admission whose check-in the chain refused.
func (s *Scanner) Unadmit(tokenID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.st.Admitted, tokenID)
	delete(s.st.Sent, tokenID)
	s.dequeue(tokenID)
}

// Queue lists the admitted tickets whose check-in has not been sent yet, oldest first.
func (s *Scanner) Queue() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.st.Queue...)
}

// Sent marks queued tickets as submitted in request id.
func (s *Scanner) Sent(ids []string, requestID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.dequeue(id)
		s.st.Sent[id] = requestID
	}
}

// Requeue puts tickets whose check-in request failed back in the queue (a failed batch
// is retried; already-checked-in tickets are skipped on-chain by checkInBatch).
func (s *Scanner) Requeue(requestID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, r := range s.st.Sent {
		if r == requestID {
			ids = append(ids, id)
			delete(s.st.Sent, id)
		}
	}
	sort.Strings(ids)
	s.st.Queue = append(s.st.Queue, ids...)
}

// Stats is what the scanner page shows.
type Stats struct {
	Event    string          `json:"event"`
	Tickets  int             `json:"tickets"`
	Admitted int             `json:"admitted"`
	Queued   int             `json:"queued"`
	Cursor   protocol.Cursor `json:"cursor"`
	Taken    int64           `json:"snapshotAt"`
	// DoubleEntries are the tickets this device admitted offline that another door had
	// checked in first (sorted).
	DoubleEntries []string `json:"doubleEntries"`
}

// Stats counts tickets, admissions and the offline queue.
func (s *Scanner) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	doubles := make([]string, 0, len(s.st.Doubles))
	for id := range s.st.Doubles {
		doubles = append(doubles, id)
	}
	sort.Strings(doubles)
	return Stats{Event: s.st.Event, Tickets: len(s.st.Tickets), Admitted: len(s.st.Admitted), Queued: len(s.st.Queue), Cursor: s.st.Cursor, Taken: s.st.Taken,
		DoubleEntries: doubles}
}
