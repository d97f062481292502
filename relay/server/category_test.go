package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/category"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// hubCategory reads OracleHub.categoryFor(buyer, artist).
func (e *cardEnv) hubCategory(buyer, artist common.Address) uint8 {
	e.t.Helper()
	out, err := e.chain.Call(e.chain.Hub, devchain.Hub.PackCategoryFor(buyer, artist))
	if err != nil {
		e.t.Fatal(err)
	}
	c, err := devchain.Hub.UnpackCategoryFor(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return c.Category
}

func wantRevert(t *testing.T, err error, name string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), name) && devchain.ErrorName(ticketParsed, err) != name {
		t.Fatalf("got %v, want revert %s", err, name)
	}
}

var ticketParsed = func() *abi.ABI {
	a, err := events.EventTicketMetaData.ParseABI()
	if err != nil {
		panic(err)
	}
	return a
}()

// TestCategoryOnsale (claims 5, 17-19): real histories on the chain — a superfan and a fan
// of artist A (check-ins), a scalper (resales at the cap across events), a farm of wallets
// paying with one card — are classified by each oracle node on its own, attested by 2 of 3
// on the hub, and an onsale of A's next event with presale windows and quotas admits
// superfans first, then fans, then everyone, within each category's quota. sp_category says
// why. An issuer proves its domain with a stagepass.json the nodes read themselves.
func TestCategoryOnsale(t *testing.T) {
	rules := category.DefaultRules()
	rules.CountTestCards = true // every sandbox card is a test card
	site := httptest.NewServer(nil)
	defer site.Close()
	e := newCardEnvWith(t, cardOptions{attest: oracle.AttestConfig{Rules: rules, Every: 200 * time.Millisecond, Epoch: 40, Scheme: "http", HTTP: site.Client()}})
	c := e.chain
	issuer, gate, artist := c.Accounts[1], c.Accounts[2], c.Accounts[3]
	superfan, fan, scalper, collector, nobody := devchain.NewAccount("superfan", 0), devchain.NewAccount("fan", 0), devchain.NewAccount("scalper", 0), devchain.NewAccount("collector", 0), devchain.NewAccount("nobody", 0)
	people := []*devchain.Account{superfan, fan, scalper, collector, nobody}
	for _, p := range people {
		c.MustTransact(c.Accounts[9], p.Address, nil, new(big.Int).Mul(big.NewInt(1e18), big.NewInt(1)))
	}
	newEvent := func(name string, edit func(*events.EventConfig)) common.Address {
		cfg := c.DefaultConfig(issuer.Address, artist.Address, c.Accounts[4].Address)
		now := c.Now()
		cfg.Name = name
		cfg.DoorsOpenAt, cfg.StartsAt = new(big.Int).SetUint64(now), new(big.Int).SetUint64(now+86400)
		cfg.Rules.ResaleClosesAt = new(big.Int).SetUint64(now + 43200)
		cfg.Gates = []common.Address{gate.Address}
		if edit != nil {
			edit(&cfg)
		}
		ev, err := c.CreateEvent(issuer, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.FundUSD(ev, devchain.USDC(1000), people...)
		return ev
	}
	buy := func(who *devchain.Account, ev common.Address, qty int64) *big.Int {
		r := c.MustTransact(who, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(qty), devchain.USDC(100)), nil)
		for _, l := range r.Logs {
			if p, err := devchain.Ticket.UnpackPurchasedEvent(l); err == nil {
				return p.FirstTokenId
			}
		}
		t.Fatal("no Purchased")
		return nil
	}

	// History: three past events of artist A.
	var past []common.Address
	for i := range 3 {
		past = append(past, newEvent("A on tour, night "+string(rune('1'+i)), nil))
	}
	for _, ev := range past {
		id := buy(superfan, ev, 1)
		c.MustTransact(gate, ev, devchain.Ticket.PackCheckIn(id), nil)
	}
	id := buy(fan, past[0], 1)
	c.MustTransact(gate, past[0], devchain.Ticket.PackCheckIn(id), nil)
	for _, ev := range past[1:] {
		first := buy(scalper, ev, 2)
		for j := int64(0); j < 2; j++ {
			tok := new(big.Int).Add(first, big.NewInt(j))
			c.MustTransact(scalper, ev, devchain.Ticket.PackList(tok, devchain.USDC(60)), nil) // the cap: 50 + 20%
			c.MustTransact(collector, ev, devchain.Ticket.PackBuyListed(tok, devchain.USDC(60)), nil)
		}
	}
	// A card farm: five wallets, one card (on a past event, which reads no categories, so
	// the last one is not refused by the bot quota it brings about).
	waitFor(t, "the relay to index the past events", func() bool {
		return e.call(protocol.MethodEvent, []any{past[2].Hex()}).Error == nil
	})
	var bots []*devchain.Account
	for i := range 5 {
		b := devchain.NewAccount("card farm", i)
		bots = append(bots, b)
		var in protocol.PaymentIntent
		e.result(protocol.MethodCreatePayment, []any{past[2].Hex(), 0, 1, b.Address.Hex()}, &in)
		if _, err := e.api.Confirm(context.Background(), in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}); err != nil {
			t.Fatal(err)
		}
		pid, _ := protocol.ParseHash32("paymentId", in.PaymentID)
		req, sig := c.SignForward(b, past[2], devchain.Ticket.PackRequestPurchase(pid, big.NewInt(0), big.NewInt(1)), 400_000, c.Now()+3600)
		var st protocol.RequestStatus
		e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}}, &st)
		e.waitState(in.ID, protocol.PaymentMinted)
	}

	// Each node classifies on its own; 2 of 3 attest.
	for _, x := range []struct {
		who    *devchain.Account
		artist common.Address
		want   uint8
	}{
		{superfan, artist.Address, category.Superfan}, {fan, artist.Address, category.Fan},
		{scalper, common.Address{}, category.Scalper}, {bots[0], common.Address{}, category.Bot}, {bots[4], common.Address{}, category.Bot},
	} {
		waitFor(t, "the "+category.Names[x.want]+" attestation", func() bool { return e.hubCategory(x.who.Address, x.artist) == x.want })
	}
	if got := e.hubCategory(nobody.Address, common.Address{}); got != category.Unclassified {
		t.Fatalf("nobody attested %d", got)
	}

	// The buyer can ask why.
	var view protocol.CategoryView
	e.result(protocol.MethodCategory, []any{scalper.Address.Hex()}, &view)
	if view.Computed.Name != "scalper" || !strings.Contains(strings.Join(view.Computed.Facts, " "), "resold 4 of 4") || len(view.Attested) == 0 || view.Attested[0].Name != "scalper" {
		t.Fatalf("sp_category for the scalper: %+v", view)
	}
	e.result(protocol.MethodCategory, []any{superfan.Address.Hex()}, &view)
	if len(view.PerArtist) != 1 || view.PerArtist[0].Name != "superfan" || !strings.Contains(view.PerArtist[0].Facts[0], "checked in at 3") {
		t.Fatalf("sp_category for the superfan: %+v", view)
	}

	// The onsale: superfans, then fans, then everyone; scalpers hold one ticket, bots none.
	// (sp_chainInfo names the hub: the category registry the issuer console puts in events.)
	var ci protocol.ChainInfo
	if e.result(protocol.MethodChainInfo, []any{}, &ci); !strings.EqualFold(ci.Hub, c.Hub.Hex()) {
		t.Fatalf("sp_chainInfo hub %q, want %s", ci.Hub, c.Hub.Hex())
	}
	now := c.Now()
	superEnd, fanEnd := now+120, now+240
	onsale := newEvent("A: the big one", func(cfg *events.EventConfig) {
		cfg.CategoryRegistry = c.Hub
		cfg.Rules.PresaleEndsAt, cfg.Rules.SuperfanPresaleEndsAt = new(big.Int).SetUint64(fanEnd), new(big.Int).SetUint64(superEnd)
		cfg.Rules.CategoryQuotaBps = [5]uint16{10000, 10000, 10000, 10, 0} // 0.1% of 1,000: one ticket
	})
	waitFor(t, "the relay to register the event's artist with the hub", func() bool {
		out, err := c.Call(c.Hub, devchain.Hub.PackEventArtist(onsale))
		a, _ := devchain.Hub.UnpackEventArtist(out)
		return err == nil && a == artist.Address
	})
	try := func(who *devchain.Account) error {
		_, err := c.Transact(who, onsale, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(100)), nil)
		return err
	}
	if err := try(superfan); err != nil {
		t.Fatalf("superfan in the superfan presale: %v", err)
	}
	wantRevert(t, try(fan), "PresaleOnly")
	wantRevert(t, try(nobody), "PresaleOnly")
	waitFor(t, "the fan presale", func() bool { return c.Now() >= superEnd })
	if err := try(fan); err != nil {
		t.Fatalf("fan in the fan presale: %v", err)
	}
	wantRevert(t, try(scalper), "PresaleOnly")
	waitFor(t, "the public sale", func() bool { return c.Now() >= fanEnd })
	if err := try(nobody); err != nil {
		t.Fatalf("public sale: %v", err)
	}
	if err := try(scalper); err != nil {
		t.Fatalf("the scalper's one ticket: %v", err)
	}
	wantRevert(t, try(scalper), "CategoryQuotaReached")
	c.MustTransact(c.Accounts[9], bots[0].Address, nil, new(big.Int).Mul(big.NewInt(1e18), big.NewInt(1)))
	c.FundUSD(onsale, devchain.USDC(100), bots[0])
	wantRevert(t, try(bots[0]), "CategoryQuotaReached")
	// The issuer sees the category mix of the sales (live tickets by holder category).
	waitFor(t, "the onsale's category mix in sp_eventStats", func() bool {
		var st protocol.EventStats
		e.result(protocol.MethodEventStats, []any{onsale.Hex()}, &st)
		return st.Sold == 4 && st.Categories == [5]uint64{1, 1, 1, 1, 0}
	})

	// Issuer identity: the issuer serves a signed stagepass.json; the nodes read it and 2 of
	// 3 attest; events show the verified domain. A file naming someone else is refused.
	domain := strings.TrimPrefix(site.URL, "http://")
	claim := protocol.IssuerClaim(issuer.Address.Hex(), domain)
	sig, err := crypto.Sign(accounts.TextHash([]byte(claim)), issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	file := protocol.IssuerFile{Address: issuer.Address.Hex(), Domain: domain, Signature: "0x" + common.Bytes2Hex(sig)}
	site.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/stagepass.json" {
			http.NotFound(w, r)
			return
		}
		writeJSONFile(w, file)
	})
	var rq protocol.IssuerRequest
	e.result(protocol.MethodRequestIssuerVerification, []any{c.Accounts[5].Address.Hex(), domain}, &rq) // not the issuer the file names
	e.result(protocol.MethodRequestIssuerVerification, []any{issuer.Address.Hex(), domain}, &rq)
	waitFor(t, "the issuer's domain on the hub", func() bool {
		var ev protocol.EventInfo
		e.result(protocol.MethodEvent, []any{onsale.Hex()}, &ev)
		return ev.IssuerDomain == domain
	})
	var mine []protocol.EventInfo // the issuer console's list shows it too
	if e.result(protocol.MethodIssuerEvents, []any{issuer.Address.Hex()}, &mine); len(mine) == 0 || mine[len(mine)-1].IssuerDomain != domain {
		t.Fatalf("sp_issuerEvents without the verified domain: %+v", mine)
	}
	out, _ := c.Call(c.Hub, devchain.Hub.PackIssuerDomain(c.Accounts[5].Address))
	if d, _ := devchain.Hub.UnpackIssuerDomain(out); d.Domain != "" {
		t.Fatalf("an address the file does not name was verified for %q", d.Domain)
	}
}

func writeJSONFile(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
