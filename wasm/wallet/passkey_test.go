package wallet

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/keystore"
	"github.com/stagepass/stagepass/wasm/vault"
)

func TestPasskeyMethods(t *testing.T) {
	store := &vault.MemoryStore{}
	s := New(store, fastKDF{})
	call(t, s, "restore", `{"mnemonic":"`+keys.DevMnemonic+`","password":"hunter2hunter2"}`)
	pk := call(t, s, "passkeys", `{}`)
	if salt, _ := pk["salt"].(string); len(salt) != 66 || len(pk["passkeys"].([]any)) != 0 {
		t.Fatalf("passkeys = %v", pk)
	}
	prf := bytes.Repeat([]byte{7}, 32)
	b64 := base64.RawURLEncoding.EncodeToString(prf)
	hexPRF := fmt.Sprintf("0x%x", prf)
	if c := callErr(t, s, "enablePasskey", `{"password":"wrong password","credentialId":"AQID","prfOutput":"`+b64+`"}`); c != "WRONG_PASSWORD" {
		t.Fatalf("wrong password: %s", c)
	}
	if c := callErr(t, s, "enablePasskey", `{"password":"hunter2hunter2","credentialId":"AQID","prfOutput":"not base64!"}`); c != "INVALID_REQUEST" {
		t.Fatalf("bad prf: %s", c)
	}
	res := call(t, s, "enablePasskey", `{"password":"hunter2hunter2","credentialId":"AQID","prfOutput":"`+b64+`"}`)
	if list := res["passkeys"].([]any); len(list) != 1 || list[0].(map[string]any)["id"] != "AQID" {
		t.Fatalf("after enable: %v", res)
	}
	call(t, s, "lock", `{}`)
	s = New(store, fastKDF{}) // page reload
	if c := callErr(t, s, "unlockWithPasskey", `{"credentialId":"AQID","prfOutput":"0x`+strings.Repeat("08", 32)+`"}`); c != "WRONG_PASSKEY" {
		t.Fatalf("wrong PRF: %s", c)
	}
	if c := callErr(t, s, "unlockWithPasskey", `{"credentialId":"other","prfOutput":"`+hexPRF+`"}`); c != "UNKNOWN_PASSKEY" {
		t.Fatalf("unknown passkey: %s", c)
	}
	// hex, base64url and standard base64 name the same bytes
	for _, enc := range []string{hexPRF, b64, base64.StdEncoding.EncodeToString(prf)} {
		res = call(t, s, "unlockWithPasskey", `{"credentialId":"AQID","prfOutput":"`+enc+`"}`)
		if res["unlocked"] != true || res["accounts"].([]any)[0] != acct0 {
			t.Fatalf("unlock with %s: %v", enc, res)
		}
		call(t, s, "lock", `{}`)
	}
	if c := callErr(t, s, "removePasskey", `{"credentialId":"AQID"}`); c != "LOCKED" {
		t.Fatalf("remove while locked: %s", c)
	}
	call(t, s, "unlock", `{"password":"hunter2hunter2"}`)
	if res = call(t, s, "removePasskey", `{"credentialId":"AQID"}`); len(res["passkeys"].([]any)) != 0 {
		t.Fatalf("after remove: %v", res)
	}
	if c := callErr(t, s, "unlockWithPasskey", `{"credentialId":"AQID","prfOutput":"`+b64+`"}`); c != "UNKNOWN_PASSKEY" {
		t.Fatalf("removed passkey: %s", c)
	}
}

func TestImportKeystoreMethod(t *testing.T) {
	s := newService()
	call(t, s, "create", `{"password":"hunter2hunter2"}`)
	k, _ := keys.DevAccount(5)
	file, err := keystore.Encrypt(k, "file password", keystore.LightScrypt)
	if err != nil {
		t.Fatal(err)
	}
	asString, _ := json.Marshal(string(file))
	for _, c := range []struct{ params, want string }{
		{`{"keystore":` + string(file) + `,"keystorePassword":"nope","password":"hunter2hunter2"}`, "WRONG_KEYSTORE_PASSWORD"},
		{`{"keystore":` + string(file) + `,"keystorePassword":"file password","password":"wrong password"}`, "WRONG_PASSWORD"},
		{`{"keystore":"{}","keystorePassword":"file password","password":"hunter2hunter2"}`, "INVALID_KEYSTORE"},
	} {
		if got := callErr(t, s, "importKeystore", c.params); got != c.want {
			t.Fatalf("%s: %s, want %s", c.params[:40], got, c.want)
		}
	}
	// The file's text as a string (what a file input gives) or the parsed object.
	res := call(t, s, "importKeystore", `{"keystore":`+string(asString)+`,"keystorePassword":"file password","password":"hunter2hunter2"}`)
	if res["address"] != k.Address().Hex() || len(res["accounts"].([]any)) != 2 || res["accounts"].([]any)[1] != k.Address().Hex() {
		t.Fatalf("import = %v", res)
	}
	// "accounts" tells the imported one apart (the fan app marks it).
	if acc := call(t, s, "accounts", `{}`); len(acc["imported"].([]any)) != 1 || acc["imported"].([]any)[0] != k.Address().Hex() {
		t.Fatalf("accounts = %v", acc)
	}
	if c := callErr(t, s, "importKeystore", `{"keystore":`+string(file)+`,"keystorePassword":"file password","password":"hunter2hunter2"}`); c != "ACCOUNT_EXISTS" {
		t.Fatalf("second import: %s", c)
	}
	// It signs and exports like any account.
	sig := call(t, s, "signMessage", `{"account":"`+k.Address().Hex()+`","message":"hi"}`)
	if out := call(t, s, "approve", `{"id":"`+sig["id"].(string)+`"}`); out["signature"] == nil {
		t.Fatalf("approve = %v", out)
	}
	ks := call(t, s, "exportKeystore", `{"account":"`+k.Address().Hex()+`","password":"hunter2hunter2","exportPassword":"another password"}`)
	back, err := keystore.Decrypt([]byte(ks["keystore"].(string)), "another password")
	if err != nil || back.Address() != k.Address() {
		t.Fatalf("export of the imported account: %v, %v", back, err)
	}
}
