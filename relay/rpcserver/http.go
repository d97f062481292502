package rpcserver

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
)

// HTTPHandler serves the same request/response calls over HTTP POST (mount it at /rpc).
// Subscriptions need a websocket. Replies are HTTP 200 with the JSON-RPC response (errors
// included), 204 when every call was a notification, 413 for a body over MaxMessageBytes,
// 429 when the rate limit refused every call, 403 for a foreign Origin, 405/415 for a
// request that is not a JSON POST and 503 during Shutdown; each with a JSON-RPC body.
func (s *Server) HTTPHandler() http.Handler { return http.HandlerFunc(s.serveRPC) }

func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, http.StatusMethodNotAllowed, Errorf(CodeInvalidRequest, "invalid request: use POST with a JSON-RPC body"))
		return
	}
	if s.isClosing() {
		writeHTTPError(w, http.StatusServiceUnavailable, Errorf(CodeUnavailable, "server is shutting down"))
		return
	}
	if !s.originAllowed(r) {
		writeHTTPError(w, http.StatusForbidden, Errorf(CodeInvalidRequest, "origin %q is not allowed", r.Header.Get("Origin")))
		return
	}
	// Requiring application/json also makes a cross-origin browser preflight the request,
	// which this server does not approve.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeHTTPError(w, http.StatusUnsupportedMediaType, Errorf(CodeInvalidRequest, "invalid request: Content-Type must be application/json"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxMessageBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeHTTPError(w, http.StatusRequestEntityTooLarge, Errorf(CodeInvalidRequest, "invalid request: body exceeds %d bytes", s.cfg.MaxMessageBytes))
			return
		}
		writeHTTPError(w, http.StatusBadRequest, Errorf(CodeInvalidRequest, "invalid request: read body: %v", err))
		return
	}
	now := time.Now()
	calls, batch, perr := parseMessage(body, s.cfg.MaxBatch)
	if perr != nil {
		status := http.StatusOK
		if s.httpRate != nil && !s.httpRate.take(r.RemoteAddr, now) {
			status, perr = http.StatusTooManyRequests, errRateLimited()
			s.counters.rateLimited.Add(1)
		}
		writeJSON(w, status, encodeResponse(nil, nil, perr))
		return
	}
	limited := 0
	if s.httpRate != nil {
		for i := range calls {
			if !s.httpRate.take(r.RemoteAddr, now) {
				calls[i].err = errRateLimited()
				limited++
			}
		}
		s.counters.rateLimited.Add(uint64(limited))
	}
	peer := Peer{ID: s.nextPeer.Add(1), Transport: "http", RemoteAddr: r.RemoteAddr}
	reply, _ := s.runCalls(r.Context(), peer, calls, batch, nil)
	switch {
	case reply == nil:
		w.WriteHeader(http.StatusNoContent)
	case limited == len(calls):
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusTooManyRequests, reply)
	default:
		writeJSON(w, http.StatusOK, reply)
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
