package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/relay/exits/bridge"
	"github.com/stagepass/stagepass/relay/index"
	"github.com/stagepass/stagepass/relay/permit"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/relay/watcher"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The chain index at the edge. The native relay keeps relay/index in memory, rebuilt from
// the logs by relay/watcher; a Worker keeps nothing between requests, so here the index's
// state lives in a SQL database (D1: migrations/0001_index.sql) and every request seeds an
// index.Index with the rows it needs. The decoding of logs, the state changes an activity
// makes and the answers' shape and order are relay/index's; following the chain (ranges,
// reorganisation detection) is relay/watcher's, resumed from a cursor stored in the database.

// DB is the index's SQL database: D1 in the worker.
type DB interface {
	// Query runs one statement and decodes its rows, as a JSON array of objects keyed by
	// column name, into `into`.
	Query(ctx context.Context, into any, sql string, args ...any) error
	// Batch runs statements as one transaction: all or none.
	Batch(ctx context.Context, stmts []Stmt) error
}

// Stmt is one SQL statement with its arguments.
type Stmt struct {
	SQL  string
	Args []any
}

// ActivityPublisher pushes activities to the websockets subscribed to any of their keys
// (index.OwnerKey, index.EventKey), in order, in one call.
type ActivityPublisher interface {
	PublishActivities(ctx context.Context, items []Published) error
}

// Published is one activity with its fan-out keys.
type Published struct {
	Keys []string          `json:"keys"`
	Data protocol.Activity `json:"data"`
}

// Following limits: the watcher remembers FollowWindow block hashes (reorganisations up to
// that deep are retracted), and one pass reads at most FollowMaxBlocks blocks, which bounds
// its subrequests.
const (
	FollowWindow    = 32
	FollowMaxBlocks = 2000
)

// ErrNoIndex is the answer of the index's methods in a worker without the D1 binding.
var ErrNoIndex = errors.New("edge: no index database (the INDEX D1 binding)")

type eventRow struct {
	Data string `json:"data"`
}

type ticketRow struct {
	Data string `json:"data"`
}

type activityRow struct {
	Data string  `json:"data"`
	Info *string `json:"info"`
	Keys string  `json:"keys"`
}

type followRow struct {
	Next   uint64 `json:"next"`
	Hashes string `json:"hashes"`
}

func (r *Relay) events(ctx context.Context, where string, args ...any) ([]protocol.EventInfo, error) {
	var rows []eventRow
	if err := r.cfg.DB.Query(ctx, &rows, "SELECT data FROM events"+where+" ORDER BY block, log_index", args...); err != nil {
		return nil, fmt.Errorf("index: read events: %w", err)
	}
	out := make([]protocol.EventInfo, len(rows))
	for i, row := range rows {
		if err := json.Unmarshal([]byte(row.Data), &out[i]); err != nil {
			return nil, fmt.Errorf("index: event row: %w", err)
		}
	}
	return out, nil
}

func (r *Relay) tickets(ctx context.Context, where string, args ...any) ([]protocol.TicketInfo, error) {
	var rows []ticketRow
	if err := r.cfg.DB.Query(ctx, &rows, "SELECT data FROM tickets WHERE "+where, args...); err != nil {
		return nil, fmt.Errorf("index: read tickets: %w", err)
	}
	out := make([]protocol.TicketInfo, len(rows))
	for i, row := range rows {
		if err := json.Unmarshal([]byte(row.Data), &out[i]); err != nil {
			return nil, fmt.Errorf("index: ticket row: %w", err)
		}
	}
	return out, nil
}

// head is the cursor of the last activity indexed.
func (r *Relay) head(ctx context.Context) (protocol.Cursor, error) {
	var rows []protocol.Cursor
	err := r.cfg.DB.Query(ctx, &rows, `SELECT block, log_index AS logIndex, sub FROM activities
		ORDER BY block DESC, log_index DESC, sub DESC LIMIT 1`)
	if err != nil || len(rows) == 0 {
		return protocol.Cursor{}, err
	}
	return rows[0], nil
}

func hexAddr(a common.Address) string { return strings.ToLower(a.Hex()) }

// event reads one event into a seeded index, or refuses the call as the native relay does.
func (r *Relay) event(ctx context.Context, addr common.Address) (*index.Index, protocol.EventInfo, error) {
	evs, err := r.events(ctx, " WHERE address = ?", hexAddr(addr))
	if err != nil {
		return nil, protocol.EventInfo{}, err
	}
	if len(evs) == 0 {
		return nil, protocol.EventInfo{}, rpcserver.InvalidParams("no Stagepass event at %s", addr.Hex())
	}
	ix := index.New(r.cfg.Chain, r.cfg.Factory, nil)
	ix.Seed(evs, nil, protocol.Cursor{})
	return ix, evs[0], nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// registerIndex adds the read calls the index answers: sp_events, sp_event,
// sp_ticketsByOwner, sp_listings, sp_eventTickets — the native relay's answers (relay/server),
// from the rows in DB — and sp_permitInfo for the indexed events' currencies (and, with
// the bridge, its stablecoin).
func (r *Relay) registerIndex(s *rpcserver.Server) {
	eventParam := func(ctx context.Context, req *rpcserver.Request) (*index.Index, common.Address, error) {
		if r.cfg.DB == nil {
			return nil, common.Address{}, ErrNoIndex
		}
		var ev common.Address
		if err := rpcserver.Positional(req, rpcserver.AddressParam(&ev, "event")); err != nil {
			return nil, ev, err
		}
		ix, _, err := r.event(ctx, ev)
		return ix, ev, err
	}
	s.Register(protocol.MethodEvents, func(ctx context.Context, _ *rpcserver.Request) (any, error) {
		if r.cfg.DB == nil {
			return nil, ErrNoIndex
		}
		evs, err := r.events(ctx, "")
		return nonNil(evs), err
	})
	s.Register(protocol.MethodEvent, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		ix, ev, err := eventParam(ctx, req)
		if err != nil {
			return nil, err
		}
		info, _ := ix.Event(ev)
		return info, nil
	})
	s.Register(protocol.MethodTicketsByOwner, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		if r.cfg.DB == nil {
			return nil, ErrNoIndex
		}
		var owner common.Address
		if err := rpcserver.Positional(req, rpcserver.AddressParam(&owner, "owner")); err != nil {
			return nil, err
		}
		ts, err := r.tickets(ctx, "owner = ?", hexAddr(owner))
		if err != nil {
			return nil, err
		}
		ix := index.New(r.cfg.Chain, r.cfg.Factory, nil)
		ix.Seed(nil, ts, protocol.Cursor{})
		return nonNil(ix.TicketsByOwner(owner)), nil
	})
	s.Register(protocol.MethodListings, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		ix, ev, err := eventParam(ctx, req)
		if err != nil {
			return nil, err
		}
		ts, err := r.tickets(ctx, "event = ? AND listed = 1", hexAddr(ev))
		if err != nil {
			return nil, err
		}
		ix.Seed(nil, ts, protocol.Cursor{})
		return nonNil(ix.Listings(ev)), nil
	})
	s.Register(protocol.MethodPermitInfo, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		if r.cfg.DB == nil {
			return nil, ErrNoIndex
		}
		var token, owner common.Address
		if err := rpcserver.Positional(req, rpcserver.AddressParam(&token, "token"), rpcserver.AddressParam(&owner, "owner")); err != nil {
			return nil, err
		}
		// Only the currencies of indexed events: the relay is no general-purpose RPC proxy.
		evs, err := r.events(ctx, "")
		if err != nil {
			return nil, err
		}
		ix := index.New(r.cfg.Chain, r.cfg.Factory, nil)
		ix.Seed(evs, nil, protocol.Cursor{})
		if !ix.Currencies()[token] {
			// The bridged stablecoin too, as on the native relay with the bridge.
			bridged := false
			if r.cfg.Bridge != nil {
				t, _, err := bridge.ReadChild(ctx, r.cfg.Chain, r.cfg.Gateway)
				if err != nil {
					return nil, err
				}
				bridged = t == token
			}
			if !bridged {
				return nil, rpcserver.InvalidParams("%s is not a currency of any Stagepass event", token.Hex())
			}
		}
		return permit.Read(ctx, r.cfg.Chain, token, owner)
	})
	s.Register(protocol.MethodEventTickets, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		ix, ev, err := eventParam(ctx, req)
		if err != nil {
			return nil, err
		}
		// The cursor first: the tickets read after it reflect at least that much.
		head, err := r.head(ctx)
		if err != nil {
			return nil, err
		}
		ts, err := r.tickets(ctx, "event = ?", hexAddr(ev))
		if err != nil {
			return nil, err
		}
		ix.Seed(nil, ts, head)
		tickets, cursor := ix.EventTickets(ev)
		return protocol.EventTickets{Event: hexAddr(ev), Cursor: cursor, Tickets: nonNil(tickets)}, nil
	})
}

// Feed is a subscription to the tickets or event topic: its fan-out key and the activities
// after the subscriber's `from` cursor (none without one), as relay/server's feeds.
type Feed struct {
	Key     string              `json:"key"`
	Backlog []protocol.Activity `json:"backlog"`
}

// Subscribe checks the params of sp_subscribe to the tickets or event topic as the native
// relay does and reads the backlog to resume from.
func (r *Relay) Subscribe(ctx context.Context, topic string, params json.RawMessage) (*Feed, error) {
	if r.cfg.DB == nil {
		return nil, ErrNoIndex
	}
	// As relay/server's topics: req.Method is the topic, its params an object decoded strictly.
	req := &rpcserver.Request{Method: topic, Params: params}
	if len(params) == 0 || string(params) == "null" {
		return nil, rpcserver.InvalidParams("%s: params object required", topic)
	}
	var key string
	var from *protocol.Cursor
	switch topic {
	case protocol.TopicTickets:
		var p struct {
			Owner common.Address   `json:"owner"`
			From  *protocol.Cursor `json:"from"`
		}
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		if p.Owner == (common.Address{}) {
			return nil, rpcserver.InvalidParams("tickets: owner is required")
		}
		key, from = index.OwnerKey(p.Owner), p.From
	case protocol.TopicEvent:
		var p struct {
			Event common.Address   `json:"event"`
			From  *protocol.Cursor `json:"from"`
		}
		if err := req.DecodeParams(&p); err != nil {
			return nil, err
		}
		if _, _, err := r.event(ctx, p.Event); err != nil {
			var re *rpcserver.Error
			if errors.As(err, &re) {
				return nil, rpcserver.InvalidParams("event: no Stagepass event at %s", p.Event.Hex())
			}
			return nil, err
		}
		key, from = index.EventKey(p.Event), p.From
	default:
		return nil, rpcserver.InvalidParams("unknown topic %q", topic)
	}
	f := &Feed{Key: key, Backlog: []protocol.Activity{}}
	if from == nil {
		return f, nil
	}
	var rows []activityRow
	c := *from
	err := r.cfg.DB.Query(ctx, &rows, `SELECT a.data AS data FROM activity_keys k
		JOIN activities a ON a.block = k.block AND a.log_index = k.log_index AND a.sub = k.sub
		WHERE k.key = ? AND (k.block > ? OR (k.block = ? AND (k.log_index > ? OR (k.log_index = ? AND k.sub > ?))))
		ORDER BY k.block, k.log_index, k.sub LIMIT 1000`, key, c.Block, c.Block, c.LogIndex, c.LogIndex, c.Sub)
	if err != nil {
		return nil, fmt.Errorf("index: read backlog: %w", err)
	}
	for _, row := range rows {
		var a protocol.Activity
		if err := json.Unmarshal([]byte(row.Data), &a); err != nil {
			return nil, fmt.Errorf("index: activity row: %w", err)
		}
		f.Backlog = append(f.Backlog, a)
	}
	return f, nil
}

// applied is one activity the follower applied in a pass.
type applied struct {
	act  protocol.Activity
	info *protocol.EventInfo
	keys []string
}

// sink is the watcher's Sink for one follower pass: an index.Index seeded with every event
// and, before each range is applied, the tickets its logs touch.
type sink struct {
	r        *Relay
	ix       *index.Index
	loaded   map[string]bool // event:tokenId of the tickets read from DB (or found absent)
	applied  []applied
	reverted bool
	from     uint64 // the first block retracted, when reverted
}

func ticketRef(event, id string) string { return strings.ToLower(event) + ":" + id }

func (s *sink) Addresses() []common.Address { return s.ix.Addresses() }

// Revert: a reorganisation replaced blocks from `from` on. The pass stops applying; the
// follower rebuilds the index without them (rebuild).
func (s *sink) Revert(from uint64) {
	if !s.reverted || from < s.from {
		s.from = from
	}
	s.reverted = true
}

func (s *sink) Apply(ctx context.Context, logs []types.Log) ([]common.Address, error) {
	if s.reverted {
		return nil, nil
	}
	// Decode every log first (the events created in these logs known from their creation
	// on, as index.Apply has them), so the tickets they touch are read in one query.
	type decoded struct {
		acts []protocol.Activity
		info *protocol.EventInfo
	}
	created := map[common.Address]bool{}
	known := func(a common.Address) bool {
		_, ok := s.ix.Event(a)
		return ok || created[a]
	}
	var decs []decoded
	want := map[string][]any{} // token ids to read, by event
	var order []string
	for _, l := range logs {
		acts, info, err := index.Decode(ctx, s.r.cfg.Chain, s.r.cfg.Factory, known, l)
		if err != nil {
			return nil, err
		}
		for _, a := range acts {
			if a.Kind == protocol.KindEventCreated {
				created[common.HexToAddress(a.Event)] = true
			}
			if ref := ticketRef(a.Event, a.TokenID); a.TokenID != "" && !s.loaded[ref] {
				s.loaded[ref] = true
				ev := strings.ToLower(a.Event)
				if want[ev] == nil {
					order = append(order, ev)
				}
				want[ev] = append(want[ev], a.TokenID)
			}
		}
		if len(acts) > 0 {
			decs = append(decs, decoded{acts, info})
		}
	}
	for _, ev := range order {
		ids := want[ev]
		for len(ids) > 0 { // D1 binds at most 100 parameters a statement
			n := min(len(ids), 90)
			ts, err := s.r.tickets(ctx, "event = ? AND token_id IN (?"+strings.Repeat(",?", n-1)+")", append([]any{ev}, ids[:n]...)...)
			if err != nil {
				return nil, err
			}
			s.ix.Seed(nil, ts, protocol.Cursor{})
			ids = ids[n:]
		}
	}
	var out []common.Address
	for _, d := range decs {
		for _, a := range d.acts {
			if err := s.ix.ApplyActivity(a, d.info); err != nil {
				return out, err
			}
			s.applied[len(s.applied)-1].info = d.info
			if a.Kind == protocol.KindEventCreated {
				out = append(out, common.HexToAddress(a.Event))
			}
		}
	}
	return out, nil
}

// capped is the chain as far as one pass reads.
type capped struct {
	Chain
	limit uint64
}

func (c capped) BlockNumber(ctx context.Context) (uint64, error) {
	n, err := c.Chain.BlockNumber(ctx)
	return min(n, c.limit), err
}

// Follow is one pass of the follower: it reads the chain from the stored cursor (at most
// FollowMaxBlocks blocks) with relay/watcher, applies the logs with relay/index, writes
// the activities, the events and tickets they changed and the new cursor in one
// transaction, and then pushes the activities through the fan-out. It returns the next
// block to read. A pass that did not start from the stored cursor (another pass ran
// meanwhile) fails its transaction and writes and pushes nothing; it then runs again from
// the new cursor (up to three times), so that what was on chain when Follow was called is
// indexed when it returns.
//
// Reorganisations: the watcher compares the stored hashes of the last FollowWindow blocks
// with the chain's; when blocks were replaced, the pass drops the activities from the first
// replaced block on, rebuilds events and tickets by replaying the activities that remain
// (as index.Revert does), pushes each dropped activity again with "removed":true, newest
// first, and the next pass reads the new blocks. A reorganisation deeper than the window
// is an error (rebuild the database from START_BLOCK).
func (r *Relay) Follow(ctx context.Context) (uint64, error) {
	if r.cfg.DB == nil {
		return 0, ErrNoIndex
	}
	for range 2 {
		if next, err := r.follow(ctx); !errors.Is(err, errAnotherPass) {
			return next, err
		}
	}
	next, err := r.follow(ctx)
	if errors.Is(err, errAnotherPass) {
		return next, nil // others keep writing: their passes index it
	}
	return next, err
}

// errAnotherPass: the pass's transaction failed because another pass wrote first.
var errAnotherPass = errors.New("index: another pass wrote first")

func (r *Relay) follow(ctx context.Context) (uint64, error) {
	var rows []followRow
	if err := r.cfg.DB.Query(ctx, &rows, "SELECT next, hashes FROM follow WHERE id = 1"); err != nil {
		return 0, fmt.Errorf("index: read cursor: %w", err)
	}
	next, hashes := r.cfg.StartBlock, map[uint64]common.Hash{}
	if len(rows) == 1 {
		next = rows[0].Next
		if err := json.Unmarshal([]byte(rows[0].Hashes), &hashes); err != nil {
			return 0, fmt.Errorf("index: stored block hashes: %w", err)
		}
	}
	start := next
	evs, err := r.events(ctx, "")
	if err != nil {
		return 0, err
	}
	s := &sink{r: r, loaded: map[string]bool{}}
	s.ix = index.New(r.cfg.Chain, r.cfg.Factory, func(keys []string, a protocol.Activity) {
		s.applied = append(s.applied, applied{act: a, keys: keys})
	})
	s.ix.Seed(evs, nil, protocol.Cursor{})
	w := watcher.New(watcher.Config{
		Client: capped{r.cfg.Chain, next + FollowMaxBlocks - 1}, Sink: s, Factory: r.cfg.Factory,
		Start: r.cfg.StartBlock, Window: FollowWindow, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	w.Resume(next, hashes)
	if err := w.Step(ctx); err != nil {
		return 0, fmt.Errorf("index: follow the chain from block %d: %w", start, err)
	}
	next, hashes = w.Position()
	if s.reverted {
		return r.rebuild(ctx, start, min(start, s.from), hashes)
	}
	stmts := []Stmt{guard(start)}
	events := map[string]bool{}
	tickets := map[string]protocol.Activity{}
	for _, a := range s.applied {
		data, err := json.Marshal(a.act)
		if err != nil {
			return 0, err
		}
		keys, _ := json.Marshal(a.keys)
		var info any
		if a.info != nil {
			b, err := json.Marshal(a.info)
			if err != nil {
				return 0, err
			}
			info = string(b)
		}
		c := a.act.Cursor
		stmts = append(stmts, Stmt{"INSERT INTO activities (block, log_index, sub, data, info, keys) VALUES (?, ?, ?, ?, ?, ?)",
			[]any{c.Block, c.LogIndex, c.Sub, string(data), info, string(keys)}})
		for _, k := range a.keys {
			stmts = append(stmts, Stmt{"INSERT INTO activity_keys (key, block, log_index, sub) VALUES (?, ?, ?, ?)", []any{k, c.Block, c.LogIndex, c.Sub}})
		}
		events[a.act.Event] = true
		if a.act.TokenID != "" {
			tickets[ticketRef(a.act.Event, a.act.TokenID)] = a.act
		}
	}
	for ev := range events {
		if info, ok := s.ix.Event(common.HexToAddress(ev)); ok {
			st, err := eventStmt(info)
			if err != nil {
				return 0, err
			}
			stmts = append(stmts, st)
		}
	}
	for _, a := range tickets {
		id, _ := new(big.Int).SetString(a.TokenID, 10)
		if t, ok := s.ix.Ticket(common.HexToAddress(a.Event), id); ok {
			st, err := ticketStmt(t)
			if err != nil {
				return 0, err
			}
			stmts = append(stmts, st)
		} else {
			stmts = append(stmts, Stmt{"DELETE FROM tickets WHERE event = ? AND token_id = ?", []any{strings.ToLower(a.Event), a.TokenID}})
		}
	}
	st, err := cursorStmt(next, hashes)
	if err != nil {
		return 0, err
	}
	if err := r.cfg.DB.Batch(ctx, append(stmts, st)); err != nil {
		if anotherPassRan(err) {
			return start, errAnotherPass
		}
		return 0, fmt.Errorf("index: write blocks %d-%d: %w", start, next-1, err)
	}
	if len(s.applied) > 0 && r.cfg.Activities != nil {
		items := make([]Published, len(s.applied))
		for i, a := range s.applied {
			items[i] = Published{Keys: a.keys, Data: a.act}
		}
		// A push that does not go out is not lost: a subscriber resumes from its cursor.
		_ = r.cfg.Activities.PublishActivities(ctx, items)
	}
	return next, nil
}

// anotherPassRan reports a transaction that guard failed: another pass (the cron trigger's
// and an alarm's at once) wrote first, and this one's work is done or will be redone.
func anotherPassRan(err error) bool { return strings.Contains(err.Error(), "another_pass_ran") }

// guard fails a transaction written by a pass that did not start from the stored cursor:
// follow_check accepts no row (CONSTRAINT another_pass_ran CHECK (stale = 0)).
func guard(start uint64) Stmt {
	return Stmt{"INSERT INTO follow_check (stale) SELECT 1 FROM follow WHERE id = 1 AND next != ?", []any{start}}
}

func cursorStmt(next uint64, hashes map[uint64]common.Hash) (Stmt, error) {
	h, err := json.Marshal(hashes)
	if err != nil {
		return Stmt{}, err
	}
	return Stmt{`INSERT INTO follow (id, next, hashes) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET next = excluded.next, hashes = excluded.hashes`, []any{next, string(h)}}, nil
}

func eventStmt(info protocol.EventInfo) (Stmt, error) {
	data, err := json.Marshal(info)
	if err != nil {
		return Stmt{}, err
	}
	return Stmt{"INSERT OR REPLACE INTO events (address, block, log_index, data) VALUES (?, ?, ?, ?)",
		[]any{strings.ToLower(info.Address), info.Created.Block, info.Created.LogIndex, string(data)}}, nil
}

func ticketStmt(t protocol.TicketInfo) (Stmt, error) {
	data, err := json.Marshal(t)
	if err != nil {
		return Stmt{}, err
	}
	listed := 0
	if t.ListingPrice != "" {
		listed = 1
	}
	return Stmt{"INSERT OR REPLACE INTO tickets (event, token_id, owner, listed, data) VALUES (?, ?, ?, ?, ?)",
		[]any{strings.ToLower(t.Event), t.TokenID, strings.ToLower(t.Owner), listed, string(data)}}, nil
}

// rebuild drops the activities from block `from` on, replays the rest into events and
// tickets, stores the cursor at `from` and pushes the dropped activities as removed.
func (r *Relay) rebuild(ctx context.Context, start, from uint64, hashes map[uint64]common.Hash) (uint64, error) {
	var kept, dropped []activityRow
	if err := r.cfg.DB.Query(ctx, &kept, "SELECT data, info, keys FROM activities WHERE block < ? ORDER BY block, log_index, sub", from); err != nil {
		return 0, fmt.Errorf("index: read activities: %w", err)
	}
	if err := r.cfg.DB.Query(ctx, &dropped, "SELECT data, info, keys FROM activities WHERE block >= ? ORDER BY block DESC, log_index DESC, sub DESC", from); err != nil {
		return 0, fmt.Errorf("index: read activities: %w", err)
	}
	ix := index.New(r.cfg.Chain, r.cfg.Factory, nil)
	for _, row := range kept {
		var a protocol.Activity
		var info *protocol.EventInfo
		if err := json.Unmarshal([]byte(row.Data), &a); err != nil {
			return 0, fmt.Errorf("index: activity row: %w", err)
		}
		if row.Info != nil {
			if err := json.Unmarshal([]byte(*row.Info), &info); err != nil {
				return 0, fmt.Errorf("index: activity row: %w", err)
			}
		}
		if err := ix.ApplyActivity(a, info); err != nil {
			return 0, err
		}
	}
	stmts := []Stmt{guard(start),
		{"DELETE FROM activities WHERE block >= ?", []any{from}},
		{"DELETE FROM activity_keys WHERE block >= ?", []any{from}},
		{"DELETE FROM events", nil},
		{"DELETE FROM tickets", nil},
	}
	for _, ev := range ix.Events() {
		st, err := eventStmt(ev)
		if err != nil {
			return 0, err
		}
		stmts = append(stmts, st)
		ts, _ := ix.EventTickets(common.HexToAddress(ev.Address))
		for _, t := range ts {
			st, err := ticketStmt(t)
			if err != nil {
				return 0, err
			}
			stmts = append(stmts, st)
		}
	}
	for n := range hashes {
		if n >= from {
			delete(hashes, n)
		}
	}
	st, err := cursorStmt(from, hashes)
	if err != nil {
		return 0, err
	}
	if err := r.cfg.DB.Batch(ctx, append(stmts, st)); err != nil {
		if anotherPassRan(err) {
			return start, errAnotherPass
		}
		return 0, fmt.Errorf("index: retract blocks from %d: %w", from, err)
	}
	if len(dropped) > 0 && r.cfg.Activities != nil {
		items := make([]Published, 0, len(dropped))
		for _, row := range dropped {
			var p Published
			if json.Unmarshal([]byte(row.Data), &p.Data) != nil || json.Unmarshal([]byte(row.Keys), &p.Keys) != nil {
				continue
			}
			p.Data.Removed = true
			items = append(items, p)
		}
		_ = r.cfg.Activities.PublishActivities(ctx, items)
	}
	return from, nil
}
