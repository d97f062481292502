package wallet

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/wasm/internal/fakerelay"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// TestCategoryAndIssuerAgainstRealRelay: against `stagepass dev --identity-http`, a new
// account's category is unclassified with the fact that says why; the demo event's issuer
// (development account 1) has the wallet make its stagepass.json (the summary says plainly
// what it proves; the signature is the issuer's EIP-191 signature of IssuerClaim, checked with
// go-ethereum), serves it from a local server, asks the oracles with
// requestIssuerVerification, and the event then shows the verified domain. A domain with a
// path is refused before anything is signed.
func TestCategoryAndIssuerAgainstRealRelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts stagepass dev")
	}
	addr := startRealRelay(t, "--identity-http")
	s := New(&vault.MemoryStore{}, fastKDF{})
	s.Dial, s.Cache = fakerelay.Dial, &tickets.MemoryStore{}
	t.Cleanup(s.disconnect)
	call(t, s, "restore", `{"mnemonic":"test test test test test test test test test test test junk","password":"hunter2hunter2"}`)
	issuer := call(t, s, "addAccount", `{}`)["address"].(string)
	var fresh string
	for range 3 {
		fresh = call(t, s, "addAccount", `{}`)["address"].(string) // account 4: no history on the dev chain
	}
	call(t, s, "connect", `{"url":"ws://`+addr+`/ws"}`)

	v := call(t, s, "category", `{"account":"`+fresh+`"}`)
	computed := v["computed"].(map[string]any)
	if computed["name"] != "unclassified" || len(computed["facts"].([]any)) == 0 || !strings.EqualFold(v["buyer"].(string), fresh) {
		t.Fatalf("a new account's category: %v", v)
	}

	site := httptest.NewServer(nil)
	defer site.Close()
	domain := strings.TrimPrefix(site.URL, "http://")
	if code := callErr(t, s, "prepareIssuerFile", `{"account":"`+issuer+`","domain":"`+domain+`/tickets"}`); code != "INVALID_REQUEST" {
		t.Fatalf("a domain with a path: %s", code)
	}
	p := call(t, s, "prepareIssuerFile", `{"account":"`+issuer+`","domain":"`+domain+`"}`)
	for _, want := range []string{"Prove you publish tickets for " + domain, "This proves that " + common.HexToAddress(issuer).Hex() + " publishes Stagepass tickets for " + domain,
		strings.ReplaceAll(protocol.IssuerClaim(issuer, domain), "\n", `\n`)} {
		if !strings.Contains(summaryText(p), want) {
			t.Errorf("summary lacks %q: %s", want, summaryText(p))
		}
	}
	signed := call(t, s, "approve", `{"id":"`+p["id"].(string)+`"}`)
	raw, _ := json.Marshal(signed["file"])
	var file protocol.IssuerFile
	if err := json.Unmarshal(raw, &file); err != nil || !strings.EqualFold(file.Address, issuer) || file.Domain != domain {
		t.Fatalf("file: %s (%v)", raw, err)
	}
	sig, err := hexutil.Decode(file.Signature)
	if err != nil || len(sig) != 65 {
		t.Fatalf("signature %q", file.Signature)
	}
	sig[64] -= 27
	pub, err := crypto.SigToPub(accounts.TextHash([]byte(protocol.IssuerClaim(issuer, domain))), sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != common.HexToAddress(issuer) {
		t.Fatalf("the file's signature is not the issuer's: %v", err)
	}
	site.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/stagepass.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(raw)
			return
		}
		http.NotFound(w, r)
	})

	rq := call(t, s, "requestIssuerVerification", `{"account":"`+issuer+`","domain":"`+domain+`"}`)
	if rq["domain"] != domain || !strings.EqualFold(rq["issuer"].(string), issuer) {
		t.Fatalf("request: %v", rq)
	}
	waitLong(t, "the demo event's issuer verified", func() bool {
		var evs []protocol.EventInfo
		res, err := s.Call(t.Context(), "events", []byte(`{}`))
		if err != nil {
			return false
		}
		b, _ := json.Marshal(res)
		json.Unmarshal(b, &evs)
		for _, ev := range evs {
			if strings.EqualFold(ev.Issuer, issuer) && ev.IssuerDomain == domain {
				return true
			}
		}
		return false
	})
}
