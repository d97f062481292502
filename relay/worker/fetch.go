//go:build js && wasm

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall/js"
)

// jsFetch is an http.RoundTripper over a JavaScript fetch: the global one (the chain's
// JSON-RPC endpoint) or a Durable Object stub's. Bodies cross as whole Uint8Arrays — the
// relay's messages are small — rather than as streams.
type jsFetch struct {
	target js.Value // globalThis, or a Durable Object stub
}

func (t jsFetch) RoundTrip(r *http.Request) (*http.Response, error) {
	init := js.Global().Get("Object").New()
	init.Set("method", r.Method)
	headers := js.Global().Get("Headers").New()
	for k, vs := range r.Header {
		for _, v := range vs {
			headers.Call("append", k, v)
		}
	}
	init.Set("headers", headers)
	if r.Body != nil && r.Method != http.MethodGet && r.Method != http.MethodHead {
		body, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		arr := js.Global().Get("Uint8Array").New(len(body))
		js.CopyBytesToJS(arr, body)
		init.Set("body", arr)
	}
	if ctx := r.Context(); ctx.Done() != nil {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
	}
	resp, err := await(t.target.Call("fetch", r.URL.String(), init))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", r.URL.Redacted(), err)
	}
	buf, err := await(resp.Call("arrayBuffer"))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: read body: %w", r.URL.Redacted(), err)
	}
	data := make([]byte, buf.Get("byteLength").Int())
	js.CopyBytesToGo(data, js.Global().Get("Uint8Array").New(buf))
	out := &http.Response{
		StatusCode: resp.Get("status").Int(), Status: resp.Get("statusText").String(),
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(data)),
		ContentLength: int64(len(data)), Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if ct := resp.Get("headers").Call("get", "content-type"); ct.Type() == js.TypeString {
		out.Header.Set("Content-Type", ct.String())
	}
	return out, nil
}

// await waits for a JavaScript promise.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var then, catch js.Func
	then = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: args[0]}
		return nil
	})
	catch = js.FuncOf(func(_ js.Value, args []js.Value) any {
		msg := "promise rejected"
		if len(args) > 0 {
			msg = args[0].Call("toString").String()
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	r := <-ch
	return r.v, r.err
}
