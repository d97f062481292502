package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/relay/forward/rules"
)

// HTTPStore is the Store spoken over HTTP to the outbox Durable Object (relay.mjs, class
// Outbox): each call is one POST of a JSON body to /<operation>, answered with
// {"record":…,"changed":bool}, {"records":[…]}, {"nonces":[…]} or
// {"error":"…","kind":"nonce"|"pending"|"unknown","want":n}. Client carries the request to
// the object (in the worker, its stub's fetch).
type HTTPStore struct {
	Client *http.Client
	Base   string // e.g. "https://outbox"
}

type storeReply struct {
	Record  *Record   `json:"record"`
	Records []*Record `json:"records"`
	Nonces  []uint64  `json:"nonces"`
	Changed bool      `json:"changed"`
	Error   string    `json:"error"`
	Kind    string    `json:"kind"`
	Want    uint64    `json:"want"`
}

func (s *HTTPStore) call(ctx context.Context, op string, body any) (*storeReply, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.Base, "/")+"/"+op, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("outbox %s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("outbox %s: read reply: %w", op, err)
	}
	var rep storeReply
	if err := json.Unmarshal(raw, &rep); err != nil {
		return nil, fmt.Errorf("outbox %s: HTTP %d: %.200s", op, resp.StatusCode, raw)
	}
	switch rep.Kind {
	case "":
	case "unknown":
		return nil, rules.ErrUnknownRequest
	case "pending":
		return nil, fmt.Errorf("%w: %s", rules.ErrTooManyPending, rep.Error)
	case "nonce":
		got := new(big.Int)
		if r, ok := body.(acceptBody); ok {
			got.SetUint64(r.Record.Nonce)
		}
		return nil, &rules.NonceError{Got: got, Want: new(big.Int).SetUint64(rep.Want)}
	default:
		return nil, fmt.Errorf("outbox %s: %s", op, rep.Error)
	}
	if rep.Error != "" || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("outbox %s: HTTP %d: %s", op, resp.StatusCode, rep.Error)
	}
	return &rep, nil
}

type acceptBody struct {
	Record     *Record `json:"record"`
	ChainNonce uint64  `json:"chainNonce"`
	MaxPending int     `json:"maxPending"`
}

func (s *HTTPStore) record(ctx context.Context, op string, body any) (*Record, bool, error) {
	rep, err := s.call(ctx, op, body)
	if err != nil {
		return nil, false, err
	}
	if rep.Record == nil {
		return nil, false, fmt.Errorf("outbox %s: no record in the reply", op)
	}
	return rep.Record, rep.Changed, nil
}

// Accept implements Store.
func (s *HTTPStore) Accept(ctx context.Context, rec *Record, chainNonce uint64, maxPending int) (*Record, bool, error) {
	return s.record(ctx, "accept", acceptBody{Record: rec, ChainNonce: chainNonce, MaxPending: maxPending})
}

// Get implements Store.
func (s *HTTPStore) Get(ctx context.Context, id common.Hash) (*Record, error) {
	rec, _, err := s.record(ctx, "get", map[string]any{"id": id})
	return rec, err
}

// Pending implements Store.
func (s *HTTPStore) Pending(ctx context.Context, from common.Address) ([]uint64, error) {
	rep, err := s.call(ctx, "pending", map[string]any{"from": from})
	if err != nil {
		return nil, err
	}
	return rep.Nonces, nil
}

// Queue implements Store.
func (s *HTTPStore) Queue(ctx context.Context) ([]*Record, error) {
	rep, err := s.call(ctx, "queue", map[string]any{})
	if err != nil {
		return nil, err
	}
	return rep.Records, nil
}

// Reserve implements Store.
func (s *HTTPStore) Reserve(ctx context.Context, id common.Hash, chainNonce uint64) (*Record, error) {
	rec, _, err := s.record(ctx, "reserve", map[string]any{"id": id, "chainNonce": chainNonce})
	return rec, err
}

// Attach implements Store.
func (s *HTTPStore) Attach(ctx context.Context, id common.Hash, a Attempt, at int64) (*Record, bool, error) {
	return s.record(ctx, "attach", map[string]any{"id": id, "attempt": a, "at": at})
}

// Replace implements Store.
func (s *HTTPStore) Replace(ctx context.Context, id common.Hash, txNonce uint64, prev common.Hash, a Attempt, at int64) (*Record, bool, error) {
	return s.record(ctx, "replace", map[string]any{"id": id, "txNonce": txNonce, "prev": prev, "attempt": a, "at": at})
}

// Settle implements Store.
func (s *HTTPStore) Settle(ctx context.Context, id common.Hash, state, txHash string, block uint64, reason string, at int64) (*Record, bool, error) {
	return s.record(ctx, "settle", map[string]any{"id": id, "state": state, "txHash": txHash, "block": block, "reason": reason, "at": at})
}

// HTTPPublisher is the Publisher spoken over HTTP to the fan-out Durable Object: POST
// /publish {"key":…,"data":…}.
type HTTPPublisher struct {
	Client *http.Client
	Base   string // e.g. "https://fanout"
}

// Publish implements Publisher.
func (p *HTTPPublisher) Publish(ctx context.Context, key string, data any) error {
	return p.post(ctx, "/publish", map[string]any{"key": key, "data": data})
}

// PublishActivities implements ActivityPublisher: POST /activities {"items":[{"keys":[…],"data":…}]}.
func (p *HTTPPublisher) PublishActivities(ctx context.Context, items []Published) error {
	return p.post(ctx, "/activities", map[string]any{"items": items})
}

func (p *HTTPPublisher) post(ctx context.Context, path string, msg any) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(p.Base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.Client.Do(req)
	if err != nil {
		return fmt.Errorf("fanout %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		return fmt.Errorf("fanout %s: HTTP %d: %s", path, resp.StatusCode, msg)
	}
	return nil
}
