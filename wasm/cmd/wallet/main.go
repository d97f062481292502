//go:build js && wasm

// Command wallet is the js/wasm entry of the Stagepass wallet. It only moves
// JSON between JavaScript promises and wallet.Service; keys, mnemonics and
// all logic stay in Go. The page runs it in a Web Worker and talks to it by
// messages; inside the worker the API is globalThis.stagepass.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall/js"

	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
	"github.com/stagepass/stagepass/wasm/wallet"
)

func main() {
	register(js.Global(), "stagepass")
	select {} // keep the Go side alive for callbacks
}

// register installs the API object at global[name] and returns it.
//
//	stagepass.init({
//	  storage?: {load(): Promise<string|null>, save(s: string): Promise<void>},          // the vault record
//	  cache?:   {load(key): Promise<string|null>, save(key, s: string): Promise<void>},  // tickets, scanner
//	  onEvent?: (kind: string, data: object) => void,  // pushes: tickets, request, connection, scanner
//	})
//	stagepass.<method>(params?: object): Promise<object>   for each wallet.Methods
//
// Rejections are Error objects with a .code (e.g. "WRONG_PASSWORD").
func register(global js.Value, name string) js.Value {
	api := js.Global().Get("Object").New()
	var (
		mu  sync.Mutex
		svc *wallet.Service
	)
	newService := func(store vault.Store, cache tickets.Store, onEvent js.Value) {
		mu.Lock()
		defer mu.Unlock()
		if svc != nil {
			svc.Call(context.Background(), "disconnect", nil)
		}
		svc = wallet.New(store, webCryptoKDF{})
		svc.Dial = dialWebSocket
		if cache != nil {
			svc.Cache = cache
		}
		if onEvent.Type() == js.TypeFunction {
			svc.Notify = func(kind string, data any) {
				b, err := json.Marshal(data)
				if err != nil {
					return
				}
				onEvent.Invoke(kind, js.Global().Get("JSON").Call("parse", string(b)))
			}
		}
	}
	service := func() *wallet.Service {
		mu.Lock()
		defer mu.Unlock()
		return svc
	}
	newService(&vault.MemoryStore{}, nil, js.Undefined())

	// init swaps the storage (and with it the vault); await it before
	// other calls.
	api.Set("init", promiseFunc(func(args []js.Value) (any, error) {
		if len(args) > 0 && args[0].Type() == js.TypeObject {
			var store vault.Store = &vault.MemoryStore{}
			if st := args[0].Get("storage"); st.Type() == js.TypeObject {
				store = jsStore{st}
			}
			var cache tickets.Store
			if c := args[0].Get("cache"); c.Type() == js.TypeObject {
				cache = jsCache{c}
			}
			newService(store, cache, args[0].Get("onEvent"))
		}
		return map[string]any{"methods": wallet.Methods}, nil
	}))
	for _, m := range wallet.Methods {
		method := m
		api.Set(method, promiseFunc(func(args []js.Value) (any, error) {
			params := "{}"
			if len(args) > 0 && args[0].Type() == js.TypeObject {
				params = js.Global().Get("JSON").Call("stringify", args[0]).String()
			}
			return service().Call(context.Background(), method, []byte(params))
		}))
	}
	global.Set(name, api)
	return api
}

// promiseFunc wraps fn as a JS function returning a Promise. fn runs on its
// own goroutine: it may block on other promises (WebCrypto, storage), which
// would deadlock if done inside the callback itself.
func promiseFunc(fn func(args []js.Value) (any, error)) js.Func {
	return js.FuncOf(func(this js.Value, args []js.Value) any {
		args = append([]js.Value(nil), args...)
		var executor js.Func
		executor = js.FuncOf(func(this js.Value, pargs []js.Value) any {
			resolve, reject := pargs[0], pargs[1]
			executor.Release()
			go func() {
				res, err := fn(args)
				if err != nil {
					reject.Invoke(jsError(err))
					return
				}
				b, err := json.Marshal(res)
				if err != nil {
					reject.Invoke(jsError(err))
					return
				}
				resolve.Invoke(js.Global().Get("JSON").Call("parse", string(b)))
			}()
			return nil
		})
		return js.Global().Get("Promise").New(executor)
	})
}

func jsError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	var we *wallet.Error
	if errors.As(err, &we) {
		e.Set("code", we.Code)
		e.Set("message", we.Message)
	} else {
		e.Set("code", "INTERNAL")
	}
	return e
}

// await blocks the calling goroutine until p settles.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var onOK, onErr js.Func
	onOK = js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{v: arg0(a)}
		return nil
	})
	onErr = js.FuncOf(func(_ js.Value, a []js.Value) any {
		ch <- result{err: fmt.Errorf("%s", js.Global().Get("String").Invoke(arg0(a)).String())}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	js.Global().Get("Promise").Call("resolve", p).Call("then", onOK, onErr)
	r := <-ch
	return r.v, r.err
}

func arg0(a []js.Value) js.Value {
	if len(a) == 0 {
		return js.Undefined()
	}
	return a[0]
}

// jsStore adapts a JS {load, save} object (IndexedDB in the page) to
// vault.Store. Only the encrypted record passes through it.
type jsStore struct{ obj js.Value }

func (s jsStore) Load(ctx context.Context) ([]byte, error) {
	v, err := await(s.obj.Call("load"))
	if err != nil {
		return nil, fmt.Errorf("storage load: %w", err)
	}
	if v.IsNull() || v.IsUndefined() {
		return nil, vault.ErrNoVault
	}
	return []byte(v.String()), nil
}

func (s jsStore) Save(ctx context.Context, b []byte) error {
	if _, err := await(s.obj.Call("save", string(b))); err != nil {
		return fmt.Errorf("storage save: %w", err)
	}
	return nil
}

// jsCache adapts a JS key-value {load(key), save(key, value)} (IndexedDB in the page) to
// tickets.Store: ticket lists and scanner state, public data kept for offline use.
type jsCache struct{ obj js.Value }

func (s jsCache) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := await(s.obj.Call("load", key))
	if err != nil {
		return nil, fmt.Errorf("cache load %s: %w", key, err)
	}
	if v.IsNull() || v.IsUndefined() {
		return nil, nil
	}
	return []byte(v.String()), nil
}

func (s jsCache) Save(ctx context.Context, key string, b []byte) error {
	if _, err := await(s.obj.Call("save", key, string(b))); err != nil {
		return fmt.Errorf("cache save %s: %w", key, err)
	}
	return nil
}

// webCryptoKDF runs PBKDF2 in the browser's native WebCrypto: 600,000
// iterations take a fraction of a second there but several seconds in Go
// compiled to wasm. The password is passed to WebCrypto as bytes; it is
// JavaScript's own input, so no secret leaves Go that JS did not already
// have.
type webCryptoKDF struct{}

func (webCryptoKDF) PBKDF2SHA256(ctx context.Context, password string, salt []byte, iterations, keyLen int) ([]byte, error) {
	subtle := js.Global().Get("crypto").Get("subtle")
	if subtle.IsUndefined() {
		return vault.GoKDF{}.PBKDF2SHA256(ctx, password, salt, iterations, keyLen)
	}
	pw := toUint8Array([]byte(password))
	key, err := await(subtle.Call("importKey", "raw", pw, "PBKDF2", false, js.ValueOf([]any{"deriveBits"})))
	if err != nil {
		return nil, fmt.Errorf("webcrypto importKey: %w", err)
	}
	alg := js.Global().Get("Object").New()
	alg.Set("name", "PBKDF2")
	alg.Set("hash", "SHA-256")
	alg.Set("salt", toUint8Array(salt))
	alg.Set("iterations", iterations)
	bits, err := await(subtle.Call("deriveBits", alg, key, keyLen*8))
	if err != nil {
		return nil, fmt.Errorf("webcrypto deriveBits: %w", err)
	}
	u8 := js.Global().Get("Uint8Array").New(bits)
	out := make([]byte, u8.Get("length").Int())
	js.CopyBytesToGo(out, u8)
	return out, nil
}

func toUint8Array(b []byte) js.Value {
	u := js.Global().Get("Uint8Array").New(len(b))
	js.CopyBytesToJS(u, b)
	return u
}
