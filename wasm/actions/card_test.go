package actions

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestMarketCalldataMatchesGoEthereum: requestPurchase and buyListed, hand-encoded, equal
// go-ethereum's abi.Pack with the contract's artifact, decode back, and are strict.
func TestMarketCalldataMatchesGoEthereum(t *testing.T) {
	a := eventABI(t)
	pid := protocol.PaymentIDOf("pi_123")
	big1 := new(big.Int).Lsh(big.NewInt(1), 255)
	tests := []struct {
		call   Call
		method string
		args   []any
	}{
		{Call{Sig: SigRequestPurchase, PaymentID: pid, Tier: big.NewInt(1), Qty: big.NewInt(3)}, "requestPurchase", []any{pid, big.NewInt(1), big.NewInt(3)}},
		{Call{Sig: SigBuyListed, TokenID: big.NewInt(4294967297), Price: big.NewInt(54_000_000)}, "buyListed", []any{big.NewInt(4294967297), big.NewInt(54_000_000)}},
		{Call{Sig: SigBuyListed, TokenID: big1, Price: big1}, "buyListed", []any{big1, big1}},
		{Call{Sig: SigRequestResale, PaymentID: pid, TokenID: big.NewInt(4294967297)}, "requestResale", []any{pid, big.NewInt(4294967297)}},
	}
	for _, tt := range tests {
		ours, err := tt.call.Encode()
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := a.Pack(tt.method, tt.args...)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, theirs) {
			t.Fatalf("%s: ours %x\ntheirs %x", tt.method, ours, theirs)
		}
		back, err := Decode(ours)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := back.Encode()
		if !bytes.Equal(again, ours) || back.Sig != tt.call.Sig || back.PaymentID != tt.call.PaymentID {
			t.Fatalf("%s: round trip %+v", tt.method, back)
		}
		if _, err := Decode(append(ours, make([]byte, 32)...)); !errors.Is(err, ErrCalldata) {
			t.Fatalf("%s with an extra word: %v", tt.method, err)
		}
	}
	if _, err := (&Call{Sig: SigRequestPurchase, PaymentID: pid, Tier: big.NewInt(-1), Qty: big.NewInt(1)}).Encode(); err == nil {
		t.Fatal("negative tier encoded")
	}
}

// intent is what the relay's sp_createPayment answers for qty tickets of tier at the demo
// event's price now (before the discount: face value).
func intent(buyer ethcrypto.Address, tier, qty uint64) *protocol.PaymentIntent {
	face := []int64{45_000_000, 120_000_000}[tier]
	units := face * int64(qty)
	return &protocol.PaymentIntent{ID: "pi_test1", PaymentID: protocol.Hex32(protocol.PaymentIDOf("pi_test1")),
		ClientSecret: "pi_test1_secret", CheckoutURL: "/sandbox/checkout/pi_test1?client_secret=pi_test1_secret",
		Amount: units / protocol.CardUnitDivisor, Currency: "usd", Price: big.NewInt(units).String(), ChainID: 1337,
		Event: strings.ToLower(evAddr.Hex()), Buyer: strings.ToLower(buyer.Hex()), Tier: tier, Quantity: qty}
}

// TestCardBuySignsWhatItShows: the summary names the event, tier, quantity, the card charge
// and each party's share; the signed request is exactly the summarised requestPurchase of
// the intent's payment id, and verifies for the buyer.
func TestCardBuySignsWhatItShows(t *testing.T) {
	k := devKey(t)
	a, err := CardBuy(k.Address(), env(), demo(), intent(k.Address(), 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	text := lines(a)
	for _, want := range []string{"Event: Stagepass Live: Opening Night", "Tier: VIP balcony", "Quantity: 2", "Price each: 120 USD",
		"Total: 240 USD", "Card charge: USD 240.00 on the processor's checkout (pi_test1)", "Pays Originator: 120 USD",
		"Pays Venue: 24 USD", "Paid by: card", "Gas: paid by Stagepass", "Function: " + SigRequestPurchase} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(a.Summary.Title, "by card") {
		t.Errorf("title %q", a.Summary.Title)
	}
	sub, err := a.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	req, err := sub.Request.Parse()
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := hex.DecodeString(strings.TrimPrefix(sub.Signature, "0x"))
	if err := protocol.VerifyForwardRequest(req, protocol.ForwarderDomain(1337, forwarder), sig); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req.Data, a.Request.Data) || req.From != k.Address() || req.To != evAddr {
		t.Fatalf("signed %+v, shown %+v", req, a.Request)
	}
	c, _ := Decode(req.Data)
	if c.PaymentID != protocol.PaymentIDOf("pi_test1") || c.Tier.Uint64() != 1 || c.Qty.Uint64() != 2 {
		t.Fatalf("signed call %+v", c)
	}
}

func TestCardBuyChecksTheIntent(t *testing.T) {
	k := devKey(t)
	ev := demo()
	tests := map[string]struct {
		edit func(*protocol.PaymentIntent)
		want error
	}{
		"another buyer":       {func(in *protocol.PaymentIntent) { in.Buyer = strings.ToLower(friend.Hex()) }, ErrBadArgs},
		"another event":       {func(in *protocol.PaymentIntent) { in.Event = strings.ToLower(usd.Hex()) }, ErrBadArgs},
		"another chain":       {func(in *protocol.PaymentIntent) { in.ChainID = 1 }, ErrBadArgs},
		"payment id mismatch": {func(in *protocol.PaymentIntent) { in.PaymentID = protocol.Hex32(protocol.PaymentIDOf("pi_other")) }, ErrBadArgs},
		"overcharged":         {func(in *protocol.PaymentIntent) { in.Amount++ }, ErrBadArgs},
		"price mismatch":      {func(in *protocol.PaymentIntent) { in.Price = "1" }, ErrBadArgs},
		"over the limit":      {func(in *protocol.PaymentIntent) { in.Quantity = 7 }, ErrBadArgs},
		"unknown tier":        {func(in *protocol.PaymentIntent) { in.Tier = 9 }, ErrBadArgs},
		"another currency":    {func(in *protocol.PaymentIntent) { in.Currency = "eur" }, ErrBadArgs},
	}
	for name, tt := range tests {
		in := intent(k.Address(), 0, 1)
		tt.edit(in)
		if _, err := CardBuy(k.Address(), env(), ev, in); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tt.want)
		}
	}
	cancelled := demo()
	cancelled.Cancelled = true
	if _, err := CardBuy(k.Address(), env(), cancelled, intent(k.Address(), 0, 1)); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("cancelled event: %v", err)
	}
}

// TestBuyListedSignsWhatItShows: price, range, what the seller receives and each party's
// share of the markup; buyListed(tokenId, price) signed as shown; the rules.
func TestBuyListedSignsWhatItShows(t *testing.T) {
	k := devKey(t)
	listing := protocol.TicketInfo{Event: strings.ToLower(evAddr.Hex()), TokenID: "1", Owner: strings.ToLower(friend.Hex()), ListingPrice: "54000000"}
	a, err := BuyListed(k.Address(), env(), demo(), token, listing)
	if err != nil {
		t.Fatal(err)
	}
	text := lines(a)
	for _, want := range []string{"Ticket: #1 (General admission)", "Price: 54 TUSD", "Allowed range: 45 TUSD – 54 TUSD",
		"Seller receives: 49.5 TUSD", "Pays Originator: 2.25 TUSD", "Pays Artist: 1.35 TUSD", "Seller: " + friend.Hex(), "Gas: paid by Stagepass"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	sub, err := a.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := sub.Request.Parse()
	c, err := Decode(req.Data)
	if err != nil || c.Sig != SigBuyListed || c.TokenID.Int64() != 1 || c.Price.Int64() != 54_000_000 {
		t.Fatalf("signed %+v, %v", c, err)
	}
	for name, tt := range map[string]struct {
		edit func(*protocol.TicketInfo)
		want error
	}{
		"own listing":   {func(l *protocol.TicketInfo) { l.Owner = strings.ToLower(k.Address().Hex()) }, ErrNotAllowed},
		"not listed":    {func(l *protocol.TicketInfo) { l.ListingPrice = "" }, ErrNotAllowed},
		"above the cap": {func(l *protocol.TicketInfo) { l.ListingPrice = "54000001" }, ErrPriceOutOfRange},
		"other event":   {func(l *protocol.TicketInfo) { l.Event = strings.ToLower(usd.Hex()) }, ErrBadArgs},
		"bad token id":  {func(l *protocol.TicketInfo) { l.TokenID = "x" }, ErrBadArgs},
	} {
		l := listing
		tt.edit(&l)
		if _, err := BuyListed(k.Address(), env(), demo(), token, l); !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tt.want)
		}
	}
}

// TestCardBuyListed: a card resale's summary (price, range, seller's part, each party's
// share, the card charge) and its checks of the relay's intent: the listed token at its
// listing price, quantity 0.
func TestCardBuyListed(t *testing.T) {
	k := devKey(t)
	listing := protocol.TicketInfo{Event: strings.ToLower(evAddr.Hex()), TokenID: "1", Owner: strings.ToLower(friend.Hex()), ListingPrice: "54000000"}
	in := func() *protocol.PaymentIntent {
		in := intent(k.Address(), 0, 1)
		in.Tier, in.Quantity, in.Price, in.Amount = 1, 0, "54000000", 5400
		return in
	}
	a, err := CardBuyListed(k.Address(), env(), demo(), listing, in())
	if err != nil {
		t.Fatal(err)
	}
	text := lines(a)
	for _, want := range []string{"Ticket: #1 (General admission)", "Price: 54 USD", "Allowed range: 45 USD – 54 USD", "Seller receives: 49.5 USD",
		"Pays Originator: 2.25 USD", "Card charge: USD 54.00", "Function: " + SigRequestResale, "Gas: paid by Stagepass"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	c, _ := Decode(a.Request.Data)
	if c.Sig != SigRequestResale || c.TokenID.Int64() != 1 || c.PaymentID != protocol.PaymentIDOf("pi_test1") {
		t.Fatalf("calldata %+v", c)
	}
	for name, edit := range map[string]func(*protocol.PaymentIntent){
		"another token":      func(in *protocol.PaymentIntent) { in.Tier = 2 },
		"a primary purchase": func(in *protocol.PaymentIntent) { in.Quantity = 1 },
		"another price":      func(in *protocol.PaymentIntent) { in.Price, in.Amount = "50000000", 5000 },
		"overcharged":        func(in *protocol.PaymentIntent) { in.Amount = 5401 },
		"another buyer":      func(in *protocol.PaymentIntent) { in.Buyer = strings.ToLower(friend.Hex()) },
	} {
		i := in()
		edit(i)
		if _, err := CardBuyListed(k.Address(), env(), demo(), listing, i); !errors.Is(err, ErrBadArgs) {
			t.Errorf("%s: %v", name, err)
		}
	}
	own := listing
	own.Owner = strings.ToLower(k.Address().Hex())
	if _, err := CardBuyListed(k.Address(), env(), demo(), own, in()); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("own listing: %v", err)
	}
}
