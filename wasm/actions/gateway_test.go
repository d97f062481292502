package actions

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	gateway = ethcrypto.MustParseAddress("0xa513E6E4b8f2a923D98304ec87F64353C4D5C853")
	spUSD   = ethcrypto.MustParseAddress("0x2279B7A0a67DB372996a5FaB50D91eAA73d2eBe6")
	bridged = &protocol.ChainInfo{ChainID: 1337, Forwarder: forwarder.Hex(), Gateway: gateway.Hex(),
		BridgedCurrency: strings.ToLower(spUSD.Hex()), MainChainID: 1338, ExitDelay: 86400}
	spToken = &protocol.PermitInfo{Token: strings.ToLower(spUSD.Hex()), Name: "Stagepass Bridged USD", Version: "1",
		Symbol: "spUSD", Decimals: 6, Nonce: "0", Balance: "25000000"}
)

// TestGatewayCalldataMatchesBindings: withdraw and exitTicket, hand-encoded, equal the
// sidechain bindings' Pack (go-ethereum's abi over ChildGateway's artifact), decode back,
// and are strict.
func TestGatewayCalldataMatchesBindings(t *testing.T) {
	gw := sidechain.NewChildGateway()
	me := devKey(t).Address()
	huge := new(big.Int).Lsh(big.NewInt(1), 255)
	for _, tt := range []struct {
		call   Call
		theirs []byte
	}{
		{Call{Sig: SigWithdraw, To: friend, Amount: big.NewInt(12_500_000)}, gw.PackWithdraw(common.Address(friend), big.NewInt(12_500_000))},
		{Call{Sig: SigWithdraw, To: me, Amount: huge}, gw.PackWithdraw(common.Address(me), huge)},
		{Call{Sig: SigExitTicket, Event: evAddr, TokenID: big.NewInt(4294967297), To: me},
			gw.PackExitTicket(common.Address(evAddr), big.NewInt(4294967297), common.Address(me))},
	} {
		ours, err := tt.call.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, tt.theirs) {
			t.Fatalf("%s: ours %x\ntheirs %x", tt.call.Sig, ours, tt.theirs)
		}
		back, err := Decode(ours)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := back.Encode(); !bytes.Equal(again, ours) || back.To != tt.call.To || back.Event != tt.call.Event {
			t.Fatalf("%s: round trip %+v", tt.call.Sig, back)
		}
		if _, err := Decode(append(ours, make([]byte, 32)...)); !errors.Is(err, ErrCalldata) {
			t.Fatalf("%s with an extra word: %v", tt.call.Sig, err)
		}
		dirty := append([]byte(nil), ours...)
		dirty[len(dirty)-32] = 1 // the high bytes of exitTicket's recipient / withdraw's amount
		if _, err := Decode(dirty); tt.call.Sig == SigExitTicket && !errors.Is(err, ErrCalldata) {
			t.Fatalf("exitTicket with a dirty address: %v", err)
		}
		dirty = append([]byte(nil), ours...)
		dirty[4] = 1 // the high bytes of the first address
		if _, err := Decode(dirty); !errors.Is(err, ErrCalldata) {
			t.Fatalf("%s with a dirty address: %v", tt.call.Sig, err)
		}
	}
	if _, err := (&Call{Sig: SigWithdraw, To: friend}).Encode(); err == nil {
		t.Fatal("withdraw without an amount encoded")
	}
}

// TestWithdrawSignsWhatItShows: the summary of a withdrawal is the signed calldata's
// (amount, recipient on the main chain, balance after), to ChildGateway, and every refusal
// comes before anything is signed.
func TestWithdrawSignsWhatItShows(t *testing.T) {
	k := devKey(t)
	me := k.Address()
	a, err := Gateway(me, env(), bridged, Call{Sig: SigWithdraw, Amount: big.NewInt(12_500_000)}, spToken, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(a.Request.Data)
	if err != nil {
		t.Fatal(err)
	}
	if a.Request.To != gateway || c.Sig != SigWithdraw || c.To != me || c.Amount.Int64() != 12_500_000 || a.Request.From != me {
		t.Fatalf("request to %s: %+v", a.Request.To, c)
	}
	text := summaryString(a)
	for _, want := range []string{"Withdraw 12.5 spUSD to the main chain", "Amount", "12.5 spUSD",
		me.Hex() + " on the main chain (id 1338)", "Balance after", "Function", SigWithdraw, "paid by Stagepass"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	sub, err := a.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := sub.Request.Parse()
	sig, _ := hex.DecodeString(strings.TrimPrefix(sub.Signature, "0x"))
	if err := protocol.VerifyForwardRequest(req, protocol.ForwarderDomain(1337, forwarder), sig); err != nil || !bytes.Equal(req.Data, a.Request.Data) {
		t.Fatalf("signed request: %v", err)
	}

	// To someone else; the whole balance.
	a, err = Gateway(me, env(), bridged, Call{Sig: SigWithdraw, To: friend, Amount: big.NewInt(25_000_000)}, spToken, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := Decode(a.Request.Data); c.To != friend || !strings.Contains(summaryString(a), "0 spUSD") {
		t.Fatalf("withdraw to a friend: %+v\n%s", c, summaryString(a))
	}

	noGateway := *bridged
	noGateway.Gateway = ""
	otherToken := *spToken
	otherToken.Token = strings.ToLower(usd.Hex())
	for name, tc := range map[string]struct {
		ci     *protocol.ChainInfo
		tok    *protocol.PermitInfo
		amount *big.Int
		want   error
	}{
		"zero":              {bridged, spToken, big.NewInt(0), ErrBadArgs},
		"no amount":         {bridged, spToken, nil, ErrBadArgs},
		"over the balance":  {bridged, spToken, big.NewInt(25_000_001), ErrInsufficientBalance},
		"no gateway":        {&noGateway, spToken, big.NewInt(1), ErrNoGateway},
		"another token":     {bridged, &otherToken, big.NewInt(1), ErrBadArgs},
		"no token read":     {bridged, nil, big.NewInt(1), ErrBadArgs},
		"balance not known": {bridged, &protocol.PermitInfo{Token: spToken.Token}, big.NewInt(1), ErrBadArgs},
	} {
		if _, err := Gateway(me, env(), tc.ci, Call{Sig: SigWithdraw, Amount: tc.amount}, tc.tok, nil, false); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	if _, err := Gateway(me, env(), bridged, Call{Sig: SigWithdraw, Amount: big.NewInt(25_000_001)}, spToken, nil, false); err == nil ||
		!strings.Contains(err.Error(), "25.000001 spUSD asked, 25 spUSD held") {
		t.Errorf("over the balance says %v", err)
	}
}

// TestExitTicket: refused until EXIT_DELAY after the later of start and resale close (the
// error says when), then summarised as the signed exitTicket, a souvenir when checked in.
func TestExitTicket(t *testing.T) {
	k := devKey(t)
	me := k.Address()
	ev := demo()
	id := big.NewInt(4294967297) // VIP balcony #1
	opens := ev.StartsAt + 86400
	_, err := Gateway(me, env(), bridged, Call{Sig: SigExitTicket, TokenID: id}, nil, ev, true)
	if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), when(opens)) {
		t.Fatalf("before the event: %v (want the time %s)", err, when(opens))
	}
	late := env()
	late.Now = time.Unix(int64(opens)-1, 0)
	if _, err := Gateway(me, late, bridged, Call{Sig: SigExitTicket, TokenID: id}, nil, ev, true); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("a second early: %v", err)
	}
	late.Now = time.Unix(int64(opens), 0)
	a, err := Gateway(me, late, bridged, Call{Sig: SigExitTicket, TokenID: id}, nil, ev, true)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := Decode(a.Request.Data)
	if a.Request.To != gateway || c.Sig != SigExitTicket || c.Event != evAddr || c.TokenID.Cmp(id) != 0 || c.To != me {
		t.Fatalf("exit request: %+v", c)
	}
	text := summaryString(a)
	for _, want := range []string{"Keep as a souvenir ticket #4294967297 on the main chain", ev.Name, "#4294967297 (VIP balcony)",
		me.Hex() + " on the main chain (id 1338)", "cannot come back", SigExitTicket} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if _, err := a.Sign(k); err != nil {
		t.Fatal(err)
	}
	a, _ = Gateway(me, late, bridged, Call{Sig: SigExitTicket, TokenID: id, To: friend}, nil, ev, false)
	if c, _ := Decode(a.Request.Data); c.To != friend || strings.Contains(a.Summary.Title, "souvenir") {
		t.Fatalf("exit to a friend: %+v %q", c, a.Summary.Title)
	}
	// The later of start and resale close counts.
	ev.ResaleClosesAt = ev.StartsAt + 7200
	if _, err := Gateway(me, late, bridged, Call{Sig: SigExitTicket, TokenID: id}, nil, ev, false); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("resale closing after the start: %v", err)
	}
	ev = demo()
	ev.Cancelled = true
	if _, err := Gateway(me, late, bridged, Call{Sig: SigExitTicket, TokenID: id}, nil, ev, false); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("cancelled: %v", err)
	}
	noGateway := *bridged
	noGateway.Gateway = "0x0000000000000000000000000000000000000000"
	if _, err := Gateway(me, late, &noGateway, Call{Sig: SigExitTicket, TokenID: id}, nil, demo(), false); !errors.Is(err, ErrNoGateway) {
		t.Fatalf("no gateway: %v", err)
	}
}

func summaryString(a *Action) string {
	var b strings.Builder
	b.WriteString(a.Summary.Title + "\n")
	for _, l := range a.Summary.Lines {
		b.WriteString(l.Label + ": " + l.Value + "\n")
	}
	b.WriteString(strings.Join(a.Summary.Warnings, "\n"))
	return b.String()
}

// TestGatewayDepositPermit: a deposit's permit is for RootGateway on the main chain, of
// exactly the amount, signed by the account; zero, below the relay's minimum, above the
// main-chain balance or without a gateway refused.
func TestGatewayDepositPermit(t *testing.T) {
	k := devKey(t)
	root := ethcrypto.MustParseAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	info := &protocol.MainPermitInfo{ChainID: 1338, Gateway: root.Hex(), Confirmations: 6, MinAmount: "1000000",
		Token: protocol.PermitInfo{Token: strings.ToLower(usd.Hex()), Name: "Test USD", Version: "1", Symbol: "tUSD", Decimals: 6, Nonce: "4", Balance: "40000000"}}
	for _, tc := range []struct {
		amount *big.Int
		want   error
	}{{big.NewInt(0), ErrBadArgs}, {big.NewInt(999_999), ErrBelowMinimum}, {big.NewInt(40_000_001), ErrInsufficientBalance}} {
		if _, err := Deposit(k.Address(), info, tc.amount, now); !errors.Is(err, tc.want) {
			t.Errorf("amount %v: %v, want %v", tc.amount, err, tc.want)
		}
	}
	if _, err := Deposit(k.Address(), &protocol.MainPermitInfo{Token: info.Token}, big.NewInt(1), now); !errors.Is(err, ErrNoGateway) {
		t.Errorf("no gateway: %v", err)
	}
	if _, err := Deposit(k.Address(), info, big.NewInt(999_999), now); err == nil || !strings.Contains(err.Error(), "at least 1 tUSD over for you; 0.999999 tUSD is less") {
		t.Errorf("below the minimum: %v", err)
	}
	a, err := Deposit(k.Address(), info, big.NewInt(12_500_000), now)
	if err != nil {
		t.Fatal(err)
	}
	if a.Summary.Title != "Bring 12.5 tUSD from the main chain to Stagepass" {
		t.Fatalf("title %q", a.Summary.Title)
	}
	p, err := a.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	if p.Owner != k.Address().Hex() || p.Amount != "12500000" || p.Deadline != uint64(now.Add(time.Hour).Unix()) {
		t.Fatalf("permit %+v", p)
	}
	want, _ := PermitTypedData(1338, &info.Token, usd, k.Address(), root, big.NewInt(12_500_000), big.NewInt(4), new(big.Int).SetUint64(p.Deadline)).Digest()
	r, _ := hex.DecodeString(p.R[2:])
	s, _ := hex.DecodeString(p.S[2:])
	signer, err := ethcrypto.Recover(want[:], append(append(r, s...), p.V-27))
	if err != nil || signer != k.Address() {
		t.Fatalf("signed by %s (%v), want %s", signer.Hex(), err, k.Address().Hex())
	}
}
