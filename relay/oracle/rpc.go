package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
	"github.com/stagepass/stagepass/wasm/relayclient/wsconn"
)

// RPCRelay is a Relay reached over the relay's JSON-RPC API: what an independent oracle
// node (`stagepass oracle`) uses. Over a websocket (ws:// or wss://…/ws: one connection,
// reconnected with backoff by the wallet's own relay client) or plain HTTP POST /rpc.
type RPCRelay struct {
	// URL is the relay's endpoint: ws://127.0.0.1:8080/ws, or http://127.0.0.1:8080/rpc.
	URL  string
	HTTP *http.Client

	once sync.Once
	ws   *relayclient.Client
}

// Close closes the websocket, if one was opened.
func (c *RPCRelay) Close() {
	if c.ws != nil {
		c.ws.Close()
	}
}

var _ Relay = (*RPCRelay)(nil)

// rpcError is a JSON-RPC error the relay answered with.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("relay: %s (%d)", e.Message, e.Code) }

// Call makes one JSON-RPC call to the relay and decodes its result into out.
func (c *RPCRelay) Call(ctx context.Context, method string, out any, params ...any) error {
	if params == nil {
		params = []any{}
	}
	if strings.HasPrefix(c.URL, "ws://") || strings.HasPrefix(c.URL, "wss://") {
		c.once.Do(func() {
			c.ws = relayclient.New(relayclient.Config{URL: c.URL, Dial: wsconn.Dial, MaxBackoff: 5 * time.Second})
			c.ws.Start()
		})
		// The client waits for its connection while ctx allows: bound it, so a relay that
		// is down delays the node's round rather than stopping it.
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		err := c.ws.Call(cctx, method, params, out)
		var re *relayclient.RPCError
		if errors.As(err, &re) {
			return &rpcError{Code: re.Code, Message: re.Message}
		}
		if err != nil {
			return fmt.Errorf("relay %s: %w", method, err)
		}
		return nil
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("relay %s: %w", method, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("relay %s: %w", method, err)
	}
	var reply struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("relay %s: HTTP %d: %s", method, res.StatusCode, bytes.TrimSpace(raw))
	}
	if reply.Error != nil {
		return reply.Error
	}
	return json.Unmarshal(reply.Result, out)
}

// PaymentRef implements Relay with sp_paymentRef.
func (c *RPCRelay) PaymentRef(ctx context.Context, pid [32]byte) (string, error) {
	var ref string
	return ref, c.Call(ctx, protocol.MethodPaymentRef, &ref, protocol.Hex32(pid))
}

// Submit implements Relay with sp_submitReport; a refusal wraps ErrRefused.
func (c *RPCRelay) Submit(ctx context.Context, r protocol.OracleReport) (protocol.ReportReceipt, error) {
	var rc protocol.ReportReceipt
	err := c.Call(ctx, protocol.MethodSubmitReport, &rc, r)
	if e, ok := err.(*rpcError); ok && e.Code == -32602 && strings.Contains(e.Message, ErrRefused.Error()) {
		return rc, fmt.Errorf("%w: %s", ErrRefused, e.Message)
	}
	return rc, err
}

// Proposals implements Relay with sp_batchProposals.
func (c *RPCRelay) Proposals(ctx context.Context) ([]protocol.BatchProposal, error) {
	var out []protocol.BatchProposal
	return out, c.Call(ctx, protocol.MethodBatchProposals, &out)
}

// IssuerRequests implements Relay with sp_issuerRequests.
func (c *RPCRelay) IssuerRequests(ctx context.Context) ([]protocol.IssuerRequest, error) {
	var out []protocol.IssuerRequest
	return out, c.Call(ctx, protocol.MethodIssuerRequests, &out)
}
