package wallet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/keystore"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

const acct1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

// names is the accounts result's names, by address as the wallet spells it.
func names(t *testing.T, s *Service) map[string]any {
	t.Helper()
	n, ok := call(t, s, "accounts", `{}`)["names"].(map[string]any)
	if !ok {
		t.Fatal("accounts has no names object")
	}
	return n
}

// Naming accounts: the names are stored with the vault's record, so they survive lock,
// unlock and a new Service over the same storage (a reload); bad names are refused with
// INVALID_NAME and change nothing; a restore from the phrase starts with no names.
func TestRenameAccountMethod(t *testing.T) {
	store := &vault.MemoryStore{}
	s := New(store, fastKDF{})
	call(t, s, "restore", `{"mnemonic":"`+keys.DevMnemonic+`","password":"hunter2hunter2"}`)
	if n := names(t, s); len(n) != 0 {
		t.Fatalf("names of a restored wallet: %v", n)
	}
	call(t, s, "addAccount", `{}`)
	res := call(t, s, "renameAccount", `{"account":"`+strings.ToLower(acct0)+`","name":"  Concerts "}`)
	if res["names"].(map[string]any)[acct0] != "Concerts" || len(res["accounts"].([]any)) != 2 {
		t.Fatalf("renameAccount = %v", res)
	}
	call(t, s, "renameAccount", `{"account":"`+acct1+`","name":"Work"}`)
	for _, c := range []struct{ params, want string }{
		{`{"account":"` + acct1 + `","name":""}`, "INVALID_NAME"},
		{`{"account":"` + acct1 + `","name":"   "}`, "INVALID_NAME"},
		{`{"account":"` + acct1 + `","name":"` + strings.Repeat("x", 33) + `"}`, "INVALID_NAME"},
		{`{"account":"` + acct1 + `","name":"two\nlines"}`, "INVALID_NAME"},
		{`{"account":"` + acct1 + `","name":"\u202eevil"}`, "INVALID_NAME"},
		{`{"account":"0x90F79bf6EB2c4f870365E785982E1f101E93b906","name":"Not mine"}`, "UNKNOWN_ACCOUNT"},
		{`{"account":"` + acct1 + `","nmae":"Typo"}`, "INVALID_REQUEST"},
	} {
		if got := callErr(t, s, "renameAccount", c.params); got != c.want {
			t.Errorf("renameAccount %s: %s, want %s", c.params, got, c.want)
		}
	}
	want := map[string]any{acct0: "Concerts", acct1: "Work"}
	check := func(s *Service, when string) {
		t.Helper()
		if n := names(t, s); fmt.Sprint(n) != fmt.Sprint(want) {
			t.Fatalf("%s: names %v, want %v", when, n, want)
		}
	}
	check(s, "unlocked")
	call(t, s, "lock", `{}`)
	if got := callErr(t, s, "renameAccount", `{"account":"`+acct1+`","name":"Later"}`); got != "LOCKED" {
		t.Fatalf("rename while locked: %s", got)
	}
	check(s, "locked")
	call(t, s, "unlock", `{"password":"hunter2hunter2"}`)
	check(s, "unlocked again")
	reloaded := New(store, fastKDF{})
	check(reloaded, "a new service on the same store, locked")
	call(t, reloaded, "unlock", `{"password":"hunter2hunter2"}`)
	check(reloaded, "a new service on the same store, unlocked")
}

// Removing an imported account: HD accounts are refused (NOT_IMPORTED), a wrong password is
// WRONG_PASSWORD and removes nothing; with the password the key is gone (it no longer signs,
// its pending requests are dropped, a new Service on the same store agrees) and its name too.
func TestRemoveAccountMethod(t *testing.T) {
	store := &vault.MemoryStore{}
	s := New(store, fastKDF{})
	s.Scrypt = keystore.LightScrypt
	call(t, s, "restore", `{"mnemonic":"`+keys.DevMnemonic+`","password":"hunter2hunter2"}`)
	k, _ := keys.DevAccount(5)
	file, _ := keystore.Encrypt(k, "file password", keystore.LightScrypt)
	imp := k.Address().Hex()
	call(t, s, "importKeystore", `{"keystore":`+string(file)+`,"keystorePassword":"file password","password":"hunter2hunter2"}`)
	call(t, s, "renameAccount", `{"account":"`+imp+`","name":"Old phone"}`)
	pending := call(t, s, "signMessage", `{"account":"`+imp+`","message":"hi"}`)["id"].(string)

	for _, c := range []struct{ params, want string }{
		{`{"account":"` + acct0 + `","password":"hunter2hunter2"}`, "NOT_IMPORTED"},
		{`{"account":"` + imp + `","password":"wrong password"}`, "WRONG_PASSWORD"},
		{`{"account":"0x90F79bf6EB2c4f870365E785982E1f101E93b906","password":"hunter2hunter2"}`, "UNKNOWN_ACCOUNT"},
	} {
		if got := callErr(t, s, "removeAccount", c.params); got != c.want {
			t.Fatalf("removeAccount %s: %s, want %s", c.params, got, c.want)
		}
	}
	if acc := call(t, s, "accounts", `{}`); len(acc["imported"].([]any)) != 1 || names(t, s)[imp] != "Old phone" {
		t.Fatalf("a refused removal changed the accounts: %v", acc)
	}

	res := call(t, s, "removeAccount", `{"account":"`+strings.ToLower(imp)+`","password":"hunter2hunter2"}`)
	if len(res["accounts"].([]any)) != 1 || len(res["imported"].([]any)) != 0 || len(res["names"].(map[string]any)) != 0 {
		t.Fatalf("removeAccount = %v", res)
	}
	if got := callErr(t, s, "approve", `{"id":"`+pending+`"}`); got != "UNKNOWN_REQUEST" {
		t.Fatalf("a request of the removed account: %s", got)
	}
	for _, svc := range []*Service{s, New(store, fastKDF{})} {
		if !svc.Vault.Unlocked() {
			call(t, svc, "unlock", `{"password":"hunter2hunter2"}`)
		}
		if acc := call(t, svc, "accounts", `{}`); len(acc["accounts"].([]any)) != 1 || len(acc["imported"].([]any)) != 0 {
			t.Fatalf("accounts after removal: %v", acc)
		}
		if got := callErr(t, svc, "signMessage", `{"account":"`+imp+`","message":"hi"}`); got != "UNKNOWN_ACCOUNT" {
			t.Fatalf("the removed account signs: %s", got)
		}
		if got := callErr(t, svc, "exportKeystore", `{"account":"`+imp+`","password":"hunter2hunter2","exportPassword":"export password"}`); got != "UNKNOWN_ACCOUNT" {
			t.Fatalf("the removed account exports: %s", got)
		}
	}
	// Imported again from the file, it is back (unnamed).
	call(t, s, "importKeystore", `{"keystore":`+string(file)+`,"keystorePassword":"file password","password":"hunter2hunter2"}`)
	if n := names(t, s); len(n) != 0 {
		t.Fatalf("names after importing again: %v", n)
	}
}

// followAccounts keeps one ticket feed for each account the page still shows and ends the
// others on the relay; quick switching back and forth never leaves two feeds for one
// account, and a feed started again resumes from its cached cursor.
func TestFollowOnlyShownAccounts(t *testing.T) {
	c := newFakeChain(t)
	cache := &tickets.MemoryStore{}
	s, ev, _ := onlineService(t, c, cache)
	r := c.relay
	call(t, s, "addAccount", `{}`)
	feeds := func(a string) int { return r.Active(protocol.TopicTickets, a) }

	ticketStates(t, s, acct0)
	ticketStates(t, s, acct1)
	waitUntil(t, "a feed for each account viewed", func() bool { return feeds(acct0) == 1 && feeds(acct1) == 1 })
	c.relay.Publish(protocol.Activity{Kind: protocol.KindTransfer, Event: demoEvent, TokenID: "7",
		From: "0x0000000000000000000000000000000000000000", To: strings.ToLower(acct0), Cursor: protocol.Cursor{Block: 11}}, acct0)
	waitUntil(t, "account 0's ticket", func() bool { return ticketStates(t, s, acct0)["7"] == "valid" })

	res := call(t, s, "followAccounts", `{"accounts":["`+acct1+`"]}`)
	if fmt.Sprint(res["following"]) != "["+strings.ToLower(acct1)+"]" {
		t.Fatalf("followAccounts = %v", res)
	}
	if feeds(acct0) != 0 || feeds(acct1) != 1 {
		t.Fatalf("after following account 1 only: %d feeds of account 0, %d of account 1", feeds(acct0), feeds(acct1))
	}
	// Account 0's pushes no longer reach the page.
	before := ev.count("tickets")
	c.relay.Publish(protocol.Activity{Kind: protocol.KindListed, Event: demoEvent, TokenID: "7", Account: strings.ToLower(acct0),
		Price: "50000000", Cursor: protocol.Cursor{Block: 12}}, acct0)
	c.relay.Publish(protocol.Activity{Kind: protocol.KindTransfer, Event: demoEvent, TokenID: "8",
		From: "0x0000000000000000000000000000000000000000", To: strings.ToLower(acct1), Cursor: protocol.Cursor{Block: 13}}, acct1)
	waitUntil(t, "account 1's push", func() bool { return ev.count("tickets") > before })
	ev.mu.Lock()
	owner := ev.last["tickets"].(tickets.View).Owner
	ev.mu.Unlock()
	if owner != strings.ToLower(acct1) {
		t.Fatalf("a tickets push for %s after it was dropped", owner)
	}

	// Back to account 0: one feed again, resumed after block 11 (what its cache holds).
	call(t, s, "followAccounts", `{"accounts":["`+acct0+`"]}`)
	if st := ticketStates(t, s, acct0); st["7"] != "valid" && st["7"] != "listed" {
		t.Fatalf("account 0 from its cache: %v", st)
	}
	waitUntil(t, "account 0's listing, caught up", func() bool { return ticketStates(t, s, acct0)["7"] == "listed" })
	subs := r.Subscribes()
	for len(subs) > 1 && !strings.Contains(string(subs[len(subs)-1]), `"owner"`) {
		subs = subs[:len(subs)-1] // the bridge feed's (bridgefeed.go), not a ticket feed's
	}
	if last := string(subs[len(subs)-1]); !strings.Contains(last, `"block":11`) {
		t.Fatalf("account 0 resumed with %s, want from block 11", last)
	}

	// The fan app switching quickly, its calls overlapping: never two feeds for one account.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		a := []string{acct0, acct1}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Call(context.Background(), "followAccounts", []byte(`{"accounts":["`+a+`"]}`))
			s.Call(context.Background(), "tickets", []byte(`{"account":"`+a+`"}`))
		}()
	}
	wg.Wait()
	call(t, s, "followAccounts", `{"accounts":["`+acct1+`","`+acct0+`"]}`)
	waitUntil(t, "one feed each", func() bool { return feeds(acct0) == 1 && feeds(acct1) == 1 })
	call(t, s, "followAccounts", `{"accounts":[]}`)
	waitUntil(t, "none", func() bool { return feeds(acct0) == 0 && feeds(acct1) == 0 })
	if s.on.trackers == nil || len(s.on.trackers) != 0 {
		t.Fatalf("trackers left: %v", s.on.trackers)
	}

	// A removed imported account's feed ends with it.
	k, _ := keys.DevAccount(5)
	file, _ := keystore.Encrypt(k, "file password", keystore.LightScrypt)
	imp := k.Address().Hex()
	call(t, s, "importKeystore", `{"keystore":`+string(file)+`,"keystorePassword":"file password","password":"hunter2hunter2"}`)
	ticketStates(t, s, imp)
	waitUntil(t, "the imported account's feed", func() bool { return feeds(imp) == 1 })
	call(t, s, "removeAccount", `{"account":"`+imp+`","password":"hunter2hunter2"}`)
	if feeds(imp) != 0 {
		t.Fatal("the removed account is still followed")
	}
	if b, _ := cache.Load(context.Background(), tickets.CacheKey(imp)); len(b) != 0 {
		t.Fatalf("the removed account's tickets still cached: %s", b)
	}
}
