package actions

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

var (
	evAddr    = ethcrypto.MustParseAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	usd       = ethcrypto.MustParseAddress("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
	forwarder = ethcrypto.MustParseAddress("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
	friend    = ethcrypto.MustParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	now       = time.Unix(1_800_000_000, 0)
)

func devKey(t testing.TB) *ethcrypto.PrivateKey {
	m, err := keys.FromMnemonic(keys.DevMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Account(0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// demo mirrors relay/devnet's demo event.
func demo() *protocol.EventInfo {
	day := uint64(86400)
	starts := uint64(now.Unix()) + 30*day
	return &protocol.EventInfo{
		Address: strings.ToLower(evAddr.Hex()), Name: "Stagepass Live: Opening Night", Venue: "Harbour Hall, Main Stage",
		StartsAt: starts, DoorsOpenAt: starts - 7200, ResaleClosesAt: starts - 3*3600, Currency: strings.ToLower(usd.Hex()),
		MaxPerBuyer: 6, MaxResaleMarkupBps: 2000, SellerMarkupShareBps: 5000, GiftsAllowed: true,
		Tiers: []protocol.TierInfo{{Name: "General admission", FaceValue: "45000000", Supply: 2000},
			{Name: "VIP balcony", FaceValue: "120000000", Supply: 150}},
		Splits: []protocol.SplitInfo{{Account: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", Bps: 5000, Role: 0},
			{Account: "0x90f79bf6eb2c4f870365e785982e1f101e93b906", Bps: 3000, Role: 1},
			{Account: "0x15d34aaf54267db7d7c367839aaf71a00a2c6a65", Bps: 1000, Role: 2},
			{Account: "0x9965507d1a55bcc2695c58ba16fb37d819b0a4dc", Bps: 1000, Role: 3}},
		Discounts: []protocol.Discount{{From: starts - 2*day, MaxDiscountBps: 2000}},
	}
}

var token = &protocol.PermitInfo{Token: strings.ToLower(usd.Hex()), Name: "Test USD", Version: "1", Symbol: "TUSD", Decimals: 6, Nonce: "3"}

func env() Env { return Env{ChainID: 1337, Forwarder: forwarder, Nonce: big.NewInt(4), Now: now} }

func eventABI(t *testing.T) abi.ABI {
	b, err := os.ReadFile("../../contracts/artifacts/EventTicket.json")
	if err != nil {
		t.Fatal(err)
	}
	var art struct {
		ABI json.RawMessage `json:"abi"`
	}
	if json.Unmarshal(b, &art) != nil || len(art.ABI) == 0 {
		art.ABI = b
	}
	a, err := abi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestCalldataMatchesGoEthereum: each hand-encoded call equals go-ethereum's abi.Pack with
// the contract's own ABI artifact, and decodes back to the same values.
func TestCalldataMatchesGoEthereum(t *testing.T) {
	a := eventABI(t)
	big1 := new(big.Int).Lsh(big.NewInt(1), 255)
	r, s := [32]byte{1, 2, 3}, [32]byte{31: 9}
	tests := []struct {
		name   string
		call   Call
		method string
		args   []any
	}{
		{"buyWithPermit", Call{Sig: SigBuyWithPermit, Tier: big.NewInt(1), Qty: big.NewInt(2), MaxUnit: big.NewInt(45_000_000),
			Permit: Permit{Deadline: big.NewInt(1_900_000_000), V: 28, R: r, S: s}},
			"buyWithPermit", []any{big.NewInt(1), big.NewInt(2), big.NewInt(45_000_000), big.NewInt(1_900_000_000), uint8(28), r, s}},
		{"list", Call{Sig: SigList, TokenID: big.NewInt(4294967297), Price: big.NewInt(50_000_000)}, "list", []any{big.NewInt(4294967297), big.NewInt(50_000_000)}},
		{"list huge id", Call{Sig: SigList, TokenID: big1, Price: big.NewInt(1)}, "list", []any{big1, big.NewInt(1)}},
		{"cancelListing", Call{Sig: SigCancelListing, TokenID: big.NewInt(7)}, "cancelListing", []any{big.NewInt(7)}},
		{"transferFrom", Call{Sig: SigTransferFrom, From: devKey(t).Address(), To: friend, TokenID: big.NewInt(3)},
			"transferFrom", []any{common.Address(devKey(t).Address()), common.Address(friend), big.NewInt(3)}},
		{"checkIn", Call{Sig: SigCheckIn, TokenID: big.NewInt(12)}, "checkIn", []any{big.NewInt(12)}},
		{"checkInBatch", Call{Sig: SigCheckInBatch, TokenIDs: []*big.Int{big.NewInt(1), big.NewInt(2), big1}}, "checkInBatch", []any{[]*big.Int{big.NewInt(1), big.NewInt(2), big1}}},
		{"checkInBatch empty", Call{Sig: SigCheckInBatch}, "checkInBatch", []any{[]*big.Int{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ours, err := tt.call.Encode()
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := a.Pack(tt.method, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, theirs) {
				t.Fatalf("ours   %x\ntheirs %x", ours, theirs)
			}
			if a.Methods[tt.method].Sig != tt.call.Sig {
				t.Fatalf("signature %s, ABI has %s", tt.call.Sig, a.Methods[tt.method].Sig)
			}
			back, err := Decode(ours)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := back.Encode()
			if !bytes.Equal(again, ours) {
				t.Fatalf("decode/encode round trip differs")
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := (&Call{Sig: SigTransferFrom, From: friend, To: friend, TokenID: big.NewInt(1)}).Encode()
	batch, _ := (&Call{Sig: SigCheckInBatch, TokenIDs: []*big.Int{big.NewInt(1)}}).Encode()
	dirty := append([]byte(nil), good...)
	dirty[4] = 1 // high bytes of an address word
	badLen := append([]byte(nil), batch...)
	badLen[4+63] = 2
	for name, data := range map[string][]byte{
		"short": {1, 2}, "unknown selector": {0xa9, 0x05, 0x9c, 0xbb}, "truncated": good[:len(good)-1],
		"extra word": append(append([]byte(nil), good...), make([]byte, 32)...), "dirty address": dirty, "batch length": badLen,
	} {
		if _, err := Decode(data); !errors.Is(err, ErrCalldata) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestPermitMatchesGoEthereum(t *testing.T) {
	td := PermitTypedData(1337, token, usd, devKey(t).Address(), evAddr, big.NewInt(90_000_000), big.NewInt(3), big.NewInt(1_900_000_000))
	ours, err := td.Digest()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(td)
	var g apitypes.TypedData
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	theirs, _, err := apitypes.TypedDataAndHash(g)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours[:], theirs) {
		t.Fatalf("permit digest %x, go-ethereum %x", ours, theirs)
	}
}

func TestPricesAndSplits(t *testing.T) {
	ev := demo()
	before, _ := TierPrices(ev, 0, now)
	discounted, _ := TierPrices(ev, 0, time.Unix(int64(ev.Discounts[0].From), 0))
	for _, c := range []struct {
		name string
		got  *big.Int
		want int64
	}{
		{"primary before the discount", before.Primary, 45_000_000},
		{"cap +20%", before.Cap, 54_000_000},
		{"floor with 20% discount", discounted.Floor, 36_000_000},
		{"seller of a 54 resale keeps 45 + half of 9", ResaleSellerAmount(ev, before.Face, big.NewInt(54_000_000)), 49_500_000},
		{"seller below face keeps it all", ResaleSellerAmount(ev, before.Face, big.NewInt(40_000_000)), 40_000_000},
	} {
		if c.got.Int64() != c.want {
			t.Errorf("%s: %s, want %d", c.name, c.got, c.want)
		}
	}
	parts := SplitAmounts(ev, big.NewInt(1_000_003))
	sum := new(big.Int)
	for _, p := range parts {
		sum.Add(sum, p)
	}
	if sum.Int64() != 1_000_003 || parts[0].Int64() != 500_001 || parts[3].Int64() != 100_002 {
		t.Fatalf("parts %v", parts)
	}
	if got := (Money{"TUSD", 6}).Format(big.NewInt(45_500_000)); got != "45.5 TUSD" {
		t.Fatalf("format %s", got)
	}
}

func lines(a *Action) string {
	var b strings.Builder
	for _, l := range a.Summary.Lines {
		b.WriteString(l.Label + ": " + l.Value + "\n")
	}
	return b.String()
}

// TestBuySignsWhatItShows: the summary names the event, tier, quantity, price and payees;
// the signed request carries the same calldata except the permit signature, which
// recovers to the buyer over a permit for exactly the total; the request verifies.
func TestBuySignsWhatItShows(t *testing.T) {
	k := devKey(t)
	a, err := Buy(k.Address(), env(), demo(), token, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	text := lines(a)
	for _, want := range []string{"Event: Stagepass Live: Opening Night", "Tier: VIP balcony", "Quantity: 2", "Price each: 120 TUSD",
		"Total: 240 TUSD", "Pays Originator: 120 TUSD (0x70997970c51812dc3a010c7d01b50e0d17dc79c8, 50.00%)", "Pays Venue: 24 TUSD", "Gas: paid by Stagepass"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
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
	if req.Nonce.Int64() != 4 || req.To != evAddr || req.Deadline != uint64(now.Add(time.Hour).Unix()) {
		t.Fatalf("request %+v", req)
	}
	signed, err := Decode(req.Data)
	if err != nil {
		t.Fatal(err)
	}
	shown, _ := Decode(a.Request.Data)
	if signed.Tier.Cmp(shown.Tier) != 0 || signed.Qty.Cmp(shown.Qty) != 0 || signed.MaxUnit.Cmp(shown.MaxUnit) != 0 || signed.Permit.Deadline.Cmp(shown.Permit.Deadline) != 0 {
		t.Fatalf("signed %+v, shown %+v", signed, shown)
	}
	pd, _ := PermitTypedData(1337, token, usd, k.Address(), evAddr, big.NewInt(240_000_000), big.NewInt(3), signed.Permit.Deadline).Digest()
	psig := append(append(append([]byte{}, signed.Permit.R[:]...), signed.Permit.S[:]...), signed.Permit.V-27)
	if who, err := ethcrypto.Recover(pd[:], psig); err != nil || who != k.Address() {
		t.Fatalf("permit recovers to %s, %v", who, err)
	}
}

func TestActionRules(t *testing.T) {
	k := devKey(t)
	ev := demo()
	native := demo()
	native.Currency = "0x0000000000000000000000000000000000000000"
	noGifts := demo()
	noGifts.GiftsAllowed = false
	closed := demo()
	closed.ResaleClosesAt = uint64(now.Unix())
	cancelled := demo()
	cancelled.Cancelled = true
	tests := []struct {
		name string
		do   func() (*Action, error)
		want error
	}{
		{"list at the cap", func() (*Action, error) {
			return List(k.Address(), env(), ev, token, big.NewInt(1), big.NewInt(54_000_000))
		}, nil},
		{"list above the cap", func() (*Action, error) {
			return List(k.Address(), env(), ev, token, big.NewInt(1), big.NewInt(54_000_001))
		}, ErrPriceOutOfRange},
		{"list below face before the discount", func() (*Action, error) {
			return List(k.Address(), env(), ev, token, big.NewInt(1), big.NewInt(44_999_999))
		}, ErrPriceOutOfRange},
		{"list after resale closed", func() (*Action, error) {
			return List(k.Address(), env(), closed, token, big.NewInt(1), big.NewInt(45_000_000))
		}, ErrNotAllowed},
		{"gift", func() (*Action, error) { return Gift(k.Address(), env(), ev, big.NewInt(1), friend) }, nil},
		{"gift not allowed", func() (*Action, error) { return Gift(k.Address(), env(), noGifts, big.NewInt(1), friend) }, ErrNotAllowed},
		{"gift to self", func() (*Action, error) { return Gift(k.Address(), env(), ev, big.NewInt(1), k.Address()) }, ErrBadArgs},
		{"buy native-coin event", func() (*Action, error) { return Buy(k.Address(), env(), native, token, 0, 1) }, ErrNotAllowed},
		{"buy over the per-buyer limit", func() (*Action, error) { return Buy(k.Address(), env(), ev, token, 0, 7) }, ErrBadArgs},
		{"buy unknown tier", func() (*Action, error) { return Buy(k.Address(), env(), ev, token, 5, 1) }, ErrBadArgs},
		{"buy cancelled event", func() (*Action, error) { return Buy(k.Address(), env(), cancelled, token, 0, 1) }, ErrNotAllowed},
		{"check in none", func() (*Action, error) { return CheckIn(k.Address(), env(), ev, nil) }, ErrBadArgs},
		{"no nonce", func() (*Action, error) {
			e := env()
			e.Nonce = nil
			return Gift(k.Address(), e, ev, big.NewInt(1), friend)
		}, ErrBadArgs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.do(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	a, _ := List(k.Address(), env(), ev, token, big.NewInt(1), big.NewInt(54_000_000))
	text := lines(a)
	for _, want := range []string{"Allowed range: 45 TUSD – 54 TUSD (face value 45 TUSD)", "You receive if sold: 49.5 TUSD", "Pays Originator: 2.25 TUSD"} {
		if !strings.Contains(text, want) {
			t.Errorf("list summary lacks %q:\n%s", want, text)
		}
	}
	b, _ := CheckIn(k.Address(), env(), ev, []*big.Int{big.NewInt(1), big.NewInt(2)})
	if c, _ := Decode(b.Request.Data); c.Sig != SigCheckInBatch || !strings.Contains(lines(b), "#1, #2") {
		t.Fatalf("batch check-in %s\n%s", c.Sig, lines(b))
	}
}

func TestRawForwardSummaryNamesStagepassCalls(t *testing.T) {
	data, _ := (&Call{Sig: SigList, TokenID: big.NewInt(5), Price: big.NewInt(50_000_000)}).Encode()
	req := &protocol.ForwardRequest{From: devKey(t).Address(), To: evAddr, Value: new(big.Int), Gas: big.NewInt(1), Nonce: big.NewInt(0), Deadline: 1, Data: data}
	p, err := signing.Forward(req.From, req, protocol.ForwarderDomain(1337, forwarder))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p.Summary)
	if !strings.Contains(string(b), "List a ticket for resale") || !strings.Contains(string(b), "50000000") || len(p.Summary.Warnings) != 0 {
		t.Fatalf("summary %s", b)
	}
}
