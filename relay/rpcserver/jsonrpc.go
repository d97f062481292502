package rpcserver

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// JSON-RPC 2.0 error codes. The -32000 range follows EIP-1474, which wallets already know.
const (
	CodeParseError     = -32700 // the message is not JSON
	CodeInvalidRequest = -32600 // JSON, but not a JSON-RPC 2.0 request (or a batch over the cap)
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	CodeUnavailable    = -32002 // the server or the connection is shutting down
	CodeLimitExceeded  = -32005 // rate limit, subscriptions per connection
)

// Error is a JSON-RPC error. Handlers return one (possibly wrapped) to choose the code and
// the message the client sees; any other error is reported as CodeInternalError with a
// generic message, and logged, so internal details never reach clients.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidParams returns a CodeInvalidParams error with a formatted message.
func InvalidParams(format string, args ...any) *Error {
	return Errorf(CodeInvalidParams, format, args...)
}

// call is one request of a message, parsed and validated.
type call struct {
	id     json.RawMessage // nil for a notification, "null" when the id is unknown
	notify bool            // a valid request without id: run it, send nothing back
	method string
	params json.RawMessage
	err    *Error // set when the request is invalid or was refused before it ran
}

// wireRequest takes every member as raw JSON so that a wrongly typed member becomes a clear
// -32600 rather than a decoder error.
type wireRequest struct {
	Version json.RawMessage `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  json.RawMessage `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type wireResponse struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

var nullID = json.RawMessage("null")

// parseMessage splits a websocket frame or an HTTP body into calls. A non-nil *Error means
// the message as a whole is answered with that one error (id null): not JSON, an empty
// batch or a batch over maxBatch.
func parseMessage(data []byte, maxBatch int) (calls []call, batch bool, perr *Error) {
	data = bytes.TrimSpace(data)
	if !json.Valid(data) {
		return nil, false, Errorf(CodeParseError, "parse error: the message is not valid JSON")
	}
	switch data[0] {
	case '{':
		return []call{parseCall(data)}, false, nil
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(data, &elems); err != nil {
			return nil, false, Errorf(CodeParseError, "parse error: %v", err)
		}
		if len(elems) == 0 {
			return nil, false, Errorf(CodeInvalidRequest, "invalid request: empty batch")
		}
		if len(elems) > maxBatch {
			return nil, false, Errorf(CodeInvalidRequest, "invalid request: batch of %d requests exceeds the limit of %d", len(elems), maxBatch)
		}
		calls = make([]call, len(elems))
		for i, e := range elems {
			calls[i] = parseCall(e)
		}
		return calls, true, nil
	default:
		return []call{{id: nullID, err: Errorf(CodeInvalidRequest, "invalid request: expected an object or an array")}}, false, nil
	}
}

func parseCall(data []byte) call {
	invalid := func(id json.RawMessage, format string, args ...any) call {
		if id == nil {
			id = nullID
		}
		return call{id: id, err: Errorf(CodeInvalidRequest, "invalid request: "+format, args...)}
	}
	var w wireRequest
	if err := json.Unmarshal(data, &w); err != nil {
		return invalid(nil, "expected an object")
	}
	if w.ID != nil && !validID(w.ID) {
		return invalid(nil, "id must be a string, a number or null")
	}
	var version string
	if json.Unmarshal(w.Version, &version) != nil || version != "2.0" {
		return invalid(w.ID, `"jsonrpc" must be "2.0"`)
	}
	var method string
	if w.Method == nil || w.Method[0] != '"' || json.Unmarshal(w.Method, &method) != nil || method == "" {
		return invalid(w.ID, `"method" must be a non-empty string`)
	}
	c := call{id: w.ID, notify: w.ID == nil, method: method}
	switch {
	case w.Params == nil || string(w.Params) == "null":
	case w.Params[0] == '[' || w.Params[0] == '{':
		c.params = w.Params
	default:
		if c.id == nil {
			c.id = nullID
		}
		c.notify = false
		c.err = InvalidParams(`invalid params: "params" must be an array or an object`)
	}
	return c
}

func validID(id json.RawMessage) bool {
	switch id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true // json.Valid already held, so 'n' is null
	}
	return false
}

// encodeResponse returns one response object. A result that cannot be encoded has already
// been turned into an *Error by the caller; an Error whose Data cannot be encoded is sent
// without it.
func encodeResponse(id json.RawMessage, result json.RawMessage, rerr *Error) []byte {
	if id == nil {
		id = nullID
	}
	resp := wireResponse{Version: "2.0", ID: id, Result: result, Error: rerr}
	if rerr == nil && result == nil {
		resp.Result = nullID
	}
	b, err := json.Marshal(resp)
	if err != nil && rerr != nil {
		resp.Error = &Error{Code: rerr.Code, Message: rerr.Message}
		b, err = json.Marshal(resp)
	}
	if err != nil {
		// Only an invalid id could get here, and ids are validated when parsed.
		panic(fmt.Sprintf("rpcserver: encode response: %v", err))
	}
	return b
}

// joinBatch wraps responses in a JSON array.
func joinBatch(resps [][]byte) []byte {
	n := 2
	for _, r := range resps {
		n += len(r) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, r := range resps {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	return append(out, ']')
}
