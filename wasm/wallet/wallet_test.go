package wallet

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keystore"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/vault"
)

type fastKDF struct{}

func (fastKDF) PBKDF2SHA256(_ context.Context, pw string, salt []byte, _, n int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, pw, salt, 1, n)
}

const (
	acct0     = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
	forwarder = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
	ticket    = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
)

func call(t *testing.T, s *Service, method, params string) map[string]any {
	t.Helper()
	res, err := s.Call(context.Background(), method, []byte(params))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	b, _ := json.Marshal(res)
	var m map[string]any
	json.Unmarshal(b, &m)
	return m
}

func callErr(t *testing.T, s *Service, method, params string) string {
	t.Helper()
	_, err := s.Call(context.Background(), method, []byte(params))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: err = %v, want *Error", method, err)
	}
	return e.Code
}

func newService() *Service {
	s := New(&vault.MemoryStore{}, fastKDF{})
	s.Scrypt = keystore.LightScrypt
	s.Now = func() time.Time { return time.Unix(1_770_000_000, 0) }
	return s
}

func TestFlow(t *testing.T) {
	s := newService()
	r := call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	if r["accounts"].([]any)[0] != acct0 {
		t.Fatalf("restore: %v", r)
	}
	call(t, s, "lock", `{}`)
	if code := callErr(t, s, "signMessage", `{"account":"`+acct0+`","message":"hi"}`); code != "LOCKED" {
		t.Fatalf("sign while locked: %s", code)
	}
	if code := callErr(t, s, "unlock", `{"password":"wrong password"}`); code != "WRONG_PASSWORD" {
		t.Fatalf("wrong password: %s", code)
	}
	call(t, s, "unlock", `{"password":"hunter2hunter2"}`)

	// Forward request: summary first, signature only on approve.
	pend := call(t, s, "signForward", `{"account":"`+acct0+`","chainId":84532,"forwarder":"`+forwarder+`",
		"request":{"to":"`+ticket+`","value":"0","gas":"200000","nonce":0,"deadline":1900000000,"data":"0x01020304"}}`)
	if pend["summary"].(map[string]any)["kind"] != "forward" {
		t.Fatalf("pending: %v", pend)
	}
	res := call(t, s, "approve", `{"id":"`+pend["id"].(string)+`"}`)
	sig, _ := hex.DecodeString(strings.TrimPrefix(res["signature"].(string), "0x"))
	req := &protocol.ForwardRequest{From: ethcrypto.MustParseAddress(acct0), To: ethcrypto.MustParseAddress(ticket),
		Value: big.NewInt(0), Gas: big.NewInt(200000), Nonce: big.NewInt(0), Deadline: 1900000000, Data: []byte{1, 2, 3, 4}}
	if err := protocol.VerifyForwardRequest(req, protocol.ForwarderDomain(84532, ethcrypto.MustParseAddress(forwarder)), sig); err != nil {
		t.Fatal(err)
	}
	if code := callErr(t, s, "approve", `{"id":"`+pend["id"].(string)+`"}`); code != "UNKNOWN_REQUEST" {
		t.Fatalf("second approve: %s", code)
	}
	rej := call(t, s, "signMessage", `{"account":"`+acct0+`","message":"hi"}`)
	call(t, s, "reject", `{"id":"`+rej["id"].(string)+`"}`)
	if code := callErr(t, s, "approve", `{"id":"`+rej["id"].(string)+`"}`); code != "UNKNOWN_REQUEST" {
		t.Fatalf("approve after reject: %s", code)
	}

	// Door pass round trip through the API.
	pass := call(t, s, "makePass", `{"account":"`+acct0+`","chainId":84532,"event":"`+ticket+`","tokenId":"7"}`)
	ver := call(t, s, "verifyPass", `{"payload":"`+pass["payload"].(string)+`","chainId":84532,"events":["`+ticket+`"]}`)
	if ver["holder"] != acct0 || ver["tokenId"] != "7" {
		t.Fatalf("verifyPass: %v", ver)
	}
	s.Now = func() time.Time { return time.Unix(1_770_000_000+60, 0) }
	if code := callErr(t, s, "verifyPass", `{"payload":"`+pass["payload"].(string)+`","chainId":84532,"events":["`+ticket+`"]}`); code != "PASS_EXPIRED" {
		t.Fatalf("late pass: %s", code)
	}

	ks := call(t, s, "exportKeystore", `{"account":"`+acct0+`","password":"hunter2hunter2","exportPassword":"export pw 1"}`)
	k, err := keystore.Decrypt([]byte(ks["keystore"].(string)), "export pw 1")
	if err != nil || k.Address().Hex() != acct0 {
		t.Fatalf("keystore: %v %v", k, err)
	}
	if code := callErr(t, s, "exportKeystore", `{"account":"`+acct0+`","password":"nope nope"}`); code != "WRONG_PASSWORD" {
		t.Fatalf("export wrong password: %s", code)
	}
}

func TestBadParams(t *testing.T) {
	s := newService()
	call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	for name, tc := range map[string]struct{ method, params, code string }{
		"unknown method":     {"eth_sign", `{}`, "UNKNOWN_METHOD"},
		"misspelt field":     {"unlock", `{"pasword":"x"}`, "INVALID_REQUEST"},
		"bad address":        {"signMessage", `{"account":"0x1234","message":"x"}`, "INVALID_REQUEST"},
		"both message kinds": {"signMessage", `{"account":"` + acct0 + `","message":"x","messageHex":"0x00"}`, "INVALID_REQUEST"},
		"other account":      {"signMessage", `{"account":"` + ticket + `","message":"x"}`, "UNKNOWN_ACCOUNT"},
		"negative gas":       {"signForward", `{"account":"` + acct0 + `","chainId":1,"forwarder":"` + forwarder + `","request":{"to":"` + ticket + `","gas":"-1","nonce":0,"deadline":1}}`, "INVALID_REQUEST"},
		"bad mnemonic":       {"restore", `{"mnemonic":"zoo zoo","password":"longenough"}`, "INVALID_MNEMONIC"},
	} {
		t.Run(name, func(t *testing.T) {
			if code := callErr(t, s, tc.method, tc.params); code != tc.code {
				t.Fatalf("code %s, want %s", code, tc.code)
			}
		})
	}
}
