//go:build js && wasm

package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"math/big"
	"strings"
	"syscall/js"
	"testing"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keystore"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/vault"
)

const (
	acct0     = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	forwarder = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
	ticket    = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
)

// jsObject builds a JS value from JSON text, as the page would pass it.
func jsObject(t *testing.T, s string) js.Value {
	t.Helper()
	return js.Global().Get("JSON").Call("parse", s)
}

// invoke calls stagepass[method](params) and awaits the promise.
func invoke(t *testing.T, api js.Value, method, params string) (js.Value, error) {
	t.Helper()
	p := api.Call(method, jsObject(t, params))
	if p.Get("then").Type() != js.TypeFunction {
		t.Fatalf("%s did not return a Promise", method)
	}
	return await(p)
}

func mustInvoke(t *testing.T, api js.Value, method, params string) js.Value {
	t.Helper()
	v, err := invoke(t, api, method, params)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return v
}

// errorCode awaits a promise expected to reject and returns err.code.
func errorCode(t *testing.T, api js.Value, method, params string) string {
	t.Helper()
	ch := make(chan string, 1)
	ok := js.FuncOf(func(js.Value, []js.Value) any { ch <- "<resolved>"; return nil })
	bad := js.FuncOf(func(_ js.Value, a []js.Value) any { ch <- a[0].Get("code").String(); return nil })
	defer ok.Release()
	defer bad.Release()
	api.Call(method, jsObject(t, params)).Call("then", ok, bad)
	return <-ch
}

func newAPI(t *testing.T) (js.Value, js.Value) {
	t.Helper()
	// A storage adapter written in JavaScript, shaped like the page's
	// IndexedDB one, so the Go<->JS storage path is exercised.
	store := js.Global().Get("Function").New(`let v = null; return {
		load: async () => v, save: async (s) => { v = s }, peek: () => v };`).Invoke()
	global := js.Global().Get("Object").New()
	api := register(global, "stagepass")
	if !global.Get("stagepass").Equal(api) {
		t.Fatal("API not installed on the global")
	}
	mustInvoke(t, api, "init", `{}`)
	if _, err := await(api.Call("init", js.ValueOf(map[string]any{"storage": store}))); err != nil {
		t.Fatal(err)
	}
	return api, store
}

func TestWebCryptoKDFMatchesGo(t *testing.T) {
	ctx := context.Background()
	salt := []byte("0123456789abcdef")
	got, err := webCryptoKDF{}.PBKDF2SHA256(ctx, "pässword", salt, 600_000, 64)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := vault.GoKDF{}.PBKDF2SHA256(ctx, "pässword", salt, 600_000, 64)
	if !bytes.Equal(got, want) {
		t.Fatalf("WebCrypto %x, Go %x", got, want)
	}
}

func TestAPIUnderNode(t *testing.T) {
	api, store := newAPI(t)
	for _, m := range []string{"create", "restore", "unlock", "lock", "accounts", "signForward", "signTypedData", "makePass", "verifyPass", "exportKeystore"} {
		if api.Get(m).Type() != js.TypeFunction {
			t.Fatalf("stagepass.%s missing", m)
		}
	}
	res := mustInvoke(t, api, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	if got := res.Get("accounts").Index(0).String(); got != acct0 {
		t.Fatalf("account 0 = %s", got)
	}
	// Only ciphertext reached JavaScript's storage.
	stored := store.Call("peek").String()
	if strings.Contains(stored, "junk") || !strings.Contains(stored, "ciphertext") {
		t.Fatalf("stored record: %s", stored)
	}

	mustInvoke(t, api, "lock", `{}`)
	if code := errorCode(t, api, "unlock", `{"password":"wrong password"}`); code != "WRONG_PASSWORD" {
		t.Fatalf("wrong password code = %s", code)
	}
	mustInvoke(t, api, "unlock", `{"password":"hunter2hunter2"}`)
	accts := mustInvoke(t, api, "accounts", `{}`)
	if !accts.Get("unlocked").Bool() {
		t.Fatal("not unlocked")
	}

	pend := mustInvoke(t, api, "signForward", `{"account":"`+acct0+`","chainId":84532,"forwarder":"`+forwarder+`",
		"request":{"to":"`+ticket+`","value":"0","gas":"200000","nonce":1,"deadline":1900000000,"data":"0x"}}`)
	if pend.Get("summary").Get("lines").Length() == 0 {
		t.Fatal("no summary lines")
	}
	signed := mustInvoke(t, api, "approve", `{"id":"`+pend.Get("id").String()+`"}`)
	sig, _ := hex.DecodeString(strings.TrimPrefix(signed.Get("signature").String(), "0x"))
	req := &protocol.ForwardRequest{From: ethcrypto.MustParseAddress(acct0), To: ethcrypto.MustParseAddress(ticket),
		Value: big.NewInt(0), Gas: big.NewInt(200000), Nonce: big.NewInt(1), Deadline: 1900000000, Data: []byte{}}
	if err := protocol.VerifyForwardRequest(req, protocol.ForwarderDomain(84532, ethcrypto.MustParseAddress(forwarder)), sig); err != nil {
		t.Fatal(err)
	}

	td := mustInvoke(t, api, "signTypedData", `{"account":"`+acct0+`","typedData":{"types":{"Mail":[{"name":"contents","type":"string"}]},
		"primaryType":"Mail","domain":{"name":"Ether Mail","chainId":1},"message":{"contents":"Hello"}}}`)
	if !strings.Contains(js.Global().Get("JSON").Call("stringify", td.Get("summary")).String(), "Hello") {
		t.Fatal("typed-data summary lacks the message")
	}

	pass := mustInvoke(t, api, "makePass", `{"account":"`+acct0+`","chainId":84532,"event":"`+ticket+`","tokenId":7}`)
	payload := pass.Get("payload").String()
	ver := mustInvoke(t, api, "verifyPass", `{"payload":"`+payload+`","chainId":84532,"events":["`+ticket+`"]}`)
	if ver.Get("holder").String() != acct0 || ver.Get("tokenId").String() != "7" {
		t.Fatalf("verifyPass holder %s", ver.Get("holder").String())
	}
	if code := errorCode(t, api, "verifyPass", `{"payload":"`+payload+`","chainId":1,"events":["`+ticket+`"]}`); code != "PASS_WRONG_CHAIN" {
		t.Fatalf("wrong chain code = %s", code)
	}

	if code := errorCode(t, api, "exportKeystore", `{"account":"`+acct0+`","password":"not the password"}`); code != "WRONG_PASSWORD" {
		t.Fatalf("export wrong password code = %s", code)
	}
}

// Passkey unlock and keystore import through the JS API: the page passes the PRF
// output (base64url, as from a WebAuthn ArrayBuffer) and gets the salt it asks for.
func TestPasskeyAndImportUnderNode(t *testing.T) {
	api, store := newAPI(t)
	mustInvoke(t, api, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	info := mustInvoke(t, api, "passkeys", `{}`)
	if salt := info.Get("salt").String(); len(salt) != 66 || info.Get("passkeys").Length() != 0 {
		t.Fatalf("passkeys: salt %q, %d passkeys", salt, info.Get("passkeys").Length())
	}
	prf := strings.Repeat("q", 43) // 32 bytes, base64url without padding
	if code := errorCode(t, api, "enablePasskey", `{"password":"nope nope","credentialId":"cred1","prfOutput":"`+prf+`"}`); code != "WRONG_PASSWORD" {
		t.Fatalf("enable with wrong password: %s", code)
	}
	info = mustInvoke(t, api, "enablePasskey", `{"password":"hunter2hunter2","credentialId":"cred1","prfOutput":"`+prf+`"}`)
	if info.Get("passkeys").Index(0).Get("id").String() != "cred1" {
		t.Fatal("passkey not listed")
	}
	if stored := store.Call("peek").String(); strings.Contains(stored, prf) || !strings.Contains(stored, `"version":2`) {
		t.Fatalf("stored record: %s", stored)
	}
	mustInvoke(t, api, "lock", `{}`)
	if code := errorCode(t, api, "unlockWithPasskey", `{"credentialId":"cred1","prfOutput":"`+strings.Repeat("r", 43)+`"}`); code != "WRONG_PASSKEY" {
		t.Fatalf("wrong passkey: %s", code)
	}
	res := mustInvoke(t, api, "unlockWithPasskey", `{"credentialId":"cred1","prfOutput":"`+prf+`"}`)
	if !res.Get("unlocked").Bool() || res.Get("accounts").Index(0).String() != acct0 {
		t.Fatal("passkey unlock failed")
	}

	k, _ := ethcrypto.PrivateKeyFromBytes(bytes.Repeat([]byte{0x11}, 32))
	file, err := keystore.Encrypt(k, "file password", keystore.LightScrypt)
	if err != nil {
		t.Fatal(err)
	}
	fileStr := js.Global().Get("JSON").Call("stringify", string(file)).String()
	if code := errorCode(t, api, "importKeystore", `{"keystore":`+fileStr+`,"keystorePassword":"wrong","password":"hunter2hunter2"}`); code != "WRONG_KEYSTORE_PASSWORD" {
		t.Fatalf("wrong keystore password: %s", code)
	}
	res = mustInvoke(t, api, "importKeystore", `{"keystore":`+fileStr+`,"keystorePassword":"file password","password":"hunter2hunter2"}`)
	if res.Get("address").String() != k.Address().Hex() || res.Get("accounts").Length() != 2 {
		t.Fatalf("import: %s", js.Global().Get("JSON").Call("stringify", res).String())
	}
	mustInvoke(t, api, "removePasskey", `{"credentialId":"cred1"}`)
	mustInvoke(t, api, "lock", `{}`)
	if code := errorCode(t, api, "unlockWithPasskey", `{"credentialId":"cred1","prfOutput":"`+prf+`"}`); code != "UNKNOWN_PASSKEY" {
		t.Fatalf("removed passkey: %s", code)
	}
	if res = mustInvoke(t, api, "unlock", `{"password":"hunter2hunter2"}`); res.Get("accounts").Index(1).String() != k.Address().Hex() {
		t.Fatal("imported account missing after a password unlock")
	}
}

// Names and removal through the JS API, with the storage adapter written in JavaScript: a
// name survives a new wallet over the same storage (a reload); removing is refused for an
// HD account and with a wrong password, then takes the imported account out.
func TestAccountsUnderNode(t *testing.T) {
	api, store := newAPI(t)
	mustInvoke(t, api, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	if code := errorCode(t, api, "renameAccount", `{"account":"`+acct0+`","name":"bad\u0007name"}`); code != "INVALID_NAME" {
		t.Fatalf("a control character: %s", code)
	}
	mustInvoke(t, api, "renameAccount", `{"account":"`+acct0+`","name":" Concerts "}`)
	k, _ := ethcrypto.PrivateKeyFromBytes(bytes.Repeat([]byte{0x22}, 32))
	file, _ := keystore.Encrypt(k, "file password", keystore.LightScrypt)
	fileStr := js.Global().Get("JSON").Call("stringify", string(file)).String()
	mustInvoke(t, api, "importKeystore", `{"keystore":`+fileStr+`,"keystorePassword":"file password","password":"hunter2hunter2"}`)

	reloaded := register(js.Global().Get("Object").New(), "stagepass")
	if _, err := await(reloaded.Call("init", js.ValueOf(map[string]any{"storage": store}))); err != nil {
		t.Fatal(err)
	}
	acc := mustInvoke(t, reloaded, "accounts", `{}`)
	if acc.Get("names").Get(acct0).String() != "Concerts" || acc.Get("imported").Length() != 1 {
		t.Fatalf("after a reload: %s", js.Global().Get("JSON").Call("stringify", acc).String())
	}
	mustInvoke(t, reloaded, "unlock", `{"password":"hunter2hunter2"}`)
	if code := errorCode(t, reloaded, "removeAccount", `{"account":"`+acct0+`","password":"hunter2hunter2"}`); code != "NOT_IMPORTED" {
		t.Fatalf("removing account 0: %s", code)
	}
	if code := errorCode(t, reloaded, "removeAccount", `{"account":"`+k.Address().Hex()+`","password":"wrong password"}`); code != "WRONG_PASSWORD" {
		t.Fatalf("removing with a wrong password: %s", code)
	}
	res := mustInvoke(t, reloaded, "removeAccount", `{"account":"`+k.Address().Hex()+`","password":"hunter2hunter2"}`)
	if res.Get("accounts").Length() != 1 || res.Get("imported").Length() != 0 || res.Get("names").Get(acct0).String() != "Concerts" {
		t.Fatalf("removeAccount: %s", js.Global().Get("JSON").Call("stringify", res).String())
	}
	if stored := store.Call("peek").String(); strings.Contains(stored, strings.ToLower(k.Address().Hex()[2:])) || strings.Contains(stored, k.Address().Hex()) {
		t.Fatalf("the removed account is still in the stored record: %s", stored)
	}
}
