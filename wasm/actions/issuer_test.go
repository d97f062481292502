package actions

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var factory = ethcrypto.MustParseAddress("0xCf7Ed3AccA5a467e9e704C703E8D87F634fB0Fc9")

// demoConfig is the devnet's demo event as an issuer would create it, with a gate.
func demoConfig() *EventConfig {
	ev := *demo()
	ev.Address = ""
	ev.CategoryQuotaBps = [5]uint16{10000, 10000, 10000, 1000, 0}
	return &EventConfig{EventInfo: ev, Gates: []string{"0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"}}
}

// gethConfig is the same configuration as go-ethereum's binding takes it.
func gethConfig(c *EventConfig) events.EventConfig {
	out := events.EventConfig{Name: c.Name, Venue: c.Venue, BaseURI: c.BaseURI,
		StartsAt: new(big.Int).SetUint64(c.StartsAt), DoorsOpenAt: new(big.Int).SetUint64(c.DoorsOpenAt),
		Currency: common.HexToAddress(c.Currency), CategoryRegistry: common.HexToAddress(c.CategoryRegistry),
		Rules: events.Rules{MaxPerBuyer: c.MaxPerBuyer, MaxResaleMarkupBps: c.MaxResaleMarkupBps,
			SellerMarkupShareBps: c.SellerMarkupShareBps, GiftsAllowed: c.GiftsAllowed,
			ResaleClosesAt: new(big.Int).SetUint64(c.ResaleClosesAt), Discounts: []events.Discount{},
			CategoryQuotaBps: c.CategoryQuotaBps,
			PresaleEndsAt:    new(big.Int).SetUint64(c.PresaleEndsAt), SuperfanPresaleEndsAt: new(big.Int).SetUint64(c.SuperfanPresaleEndsAt)},
		Tiers: []events.TierConfig{}, Splits: []events.Split{}, Gates: []common.Address{}}
	for _, t := range c.Tiers {
		face, _ := new(big.Int).SetString(t.FaceValue, 10)
		out.Tiers = append(out.Tiers, events.TierConfig{Name: t.Name, FaceValue: face, Supply: t.Supply})
	}
	for _, d := range c.Discounts {
		out.Rules.Discounts = append(out.Rules.Discounts, events.Discount{From: new(big.Int).SetUint64(d.From), MaxDiscountBps: d.MaxDiscountBps})
	}
	for _, s := range c.Splits {
		out.Splits = append(out.Splits, events.Split{Account: common.HexToAddress(s.Account), Bps: s.Bps, Role: s.Role})
	}
	for _, g := range c.Gates {
		out.Gates = append(out.Gates, common.HexToAddress(g))
	}
	return out
}

func configVariants() map[string]*EventConfig {
	plain := demoConfig()
	plain.Discounts, plain.Gates, plain.Venue = nil, nil, ""
	plain.Tiers = plain.Tiers[:1]
	plain.Splits = plain.Splits[:1]
	plain.Splits[0].Bps = 10000
	long := demoConfig()
	long.Name = strings.Repeat("Ω", 16) // exactly 32 bytes
	long.Venue = strings.Repeat("v", 33)
	long.BaseURI = "https://stagepass.example/meta/"
	long.CategoryRegistry = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
	for len(long.Tiers) < MaxTiers {
		long.Tiers = append(long.Tiers, protocol.TierInfo{Name: "Tier " + strings.Repeat("x", len(long.Tiers)*7), FaceValue: "309485009821345068724781055", Supply: 1})
	}
	long.Discounts = append(long.Discounts, protocol.Discount{From: long.Discounts[0].From + 60, MaxDiscountBps: 10000})
	return map[string]*EventConfig{"demo": demoConfig(), "plain": plain, "long": long}
}

// TestCreateEventCalldataMatchesGoEthereum: the hand encoding is go-ethereum's abi.Pack of
// the contract's own binding, byte for byte, and decodes back to the same configuration.
func TestCreateEventCalldataMatchesGoEthereum(t *testing.T) {
	for name, c := range configVariants() {
		got, err := EncodeCreateEvent(c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := events.NewEventFactory().PackCreateEvent(gethConfig(c))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: calldata differs from go-ethereum\n got %x\nwant %x", name, got, want)
		}
		back, err := DecodeCreateEvent(want)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		again, _ := EncodeCreateEvent(back)
		if !bytes.Equal(again, want) || back.Name != c.Name || len(back.Tiers) != len(c.Tiers) {
			t.Fatalf("%s: round trip %+v", name, back)
		}
	}
	if SigCreateEvent != mustMethodSig(t) {
		t.Fatalf("signature %s", SigCreateEvent)
	}
	data := events.NewEventTicket().PackSetGate(common.HexToAddress(friend.Hex()), true)
	a, err := SetGate(friend, env(), &protocol.EventInfo{Address: evAddr.Hex(), Name: "X", Issuer: friend.Hex()}, friend, true)
	if err != nil || !bytes.Equal(a.Request.Data, data) {
		t.Fatalf("setGate %x, %v; want %x", a.Request.Data, err, data)
	}
}

func mustMethodSig(t *testing.T) string {
	parsed, err := events.EventFactoryMetaData.ParseABI()
	if err != nil {
		t.Fatal(err)
	}
	return parsed.Methods["createEvent"].Sig
}

// TestDecodeCreateEventStrict: truncations, extra bytes and altered offsets are refused.
func TestDecodeCreateEventStrict(t *testing.T) {
	good, err := EncodeCreateEvent(demoConfig())
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"truncated":   good[:len(good)-32],
		"extra word":  append(append([]byte{}, good...), make([]byte, 32)...),
		"no selector": good[:3],
	}
	shifted := append([]byte{}, good...)
	shifted[4+31] = 0x40 // the config's offset
	bad["offset"] = shifted
	dirty := append([]byte{}, good...)
	dirty[4+32+160+4] = 1 // the currency word's padding
	bad["address padding"] = dirty
	huge := append([]byte{}, good...)
	huge[4+32+224+10] = 0xff // the tiers' offset points far away
	bad["far offset"] = huge
	for name, b := range bad {
		if _, err := DecodeCreateEvent(b); !errors.Is(err, ErrCalldata) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCreateEventValidationMatchesContract: every configuration the wallet refuses, the
// real EventFactory refuses too (InvalidConfig), and the valid ones create events.
func TestCreateEventValidationMatchesContract(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the contracts on a simulated chain")
	}
	chain, err := devchain.New(devchain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	now := chain.Now()
	base := func() *EventConfig {
		c := demoConfig()
		c.StartsAt, c.DoorsOpenAt, c.ResaleClosesAt = now+30*86400, now+30*86400-7200, now+30*86400-3*3600
		c.Discounts[0].From = now + 28*86400
		c.Currency = chain.USD.Hex()
		return c
	}
	cases := map[string]func(c *EventConfig){
		"no name":            func(c *EventConfig) { c.Name = "" },
		"doors after start":  func(c *EventConfig) { c.DoorsOpenAt = c.StartsAt + 1 },
		"resale after start": func(c *EventConfig) { c.ResaleClosesAt = c.StartsAt + 1 },
		"resale zero":        func(c *EventConfig) { c.ResaleClosesAt = 0 },
		"per buyer zero":     func(c *EventConfig) { c.MaxPerBuyer = 0 },
		"seller share":       func(c *EventConfig) { c.SellerMarkupShareBps = 10001 },
		"no tiers":           func(c *EventConfig) { c.Tiers = nil },
		"nine tiers": func(c *EventConfig) {
			for len(c.Tiers) <= MaxTiers {
				c.Tiers = append(c.Tiers, c.Tiers[0])
			}
		},
		"empty tier":     func(c *EventConfig) { c.Tiers[1].Supply = 0 },
		"total supply":   func(c *EventConfig) { c.Tiers[0].Supply, c.Tiers[1].Supply = 1<<23, 1<<23 },
		"no splits":      func(c *EventConfig) { c.Splits = nil },
		"split zero":     func(c *EventConfig) { c.Splits[2].Account = "0x0000000000000000000000000000000000000000" },
		"split sum":      func(c *EventConfig) { c.Splits[0].Bps = 4999 },
		"five discounts": func(c *EventConfig) { c.Discounts = make([]protocol.Discount, 5) },
		"discount over":  func(c *EventConfig) { c.Discounts[0].MaxDiscountBps = 10001 },
		"empty discount": func(c *EventConfig) { c.Discounts[0] = protocol.Discount{} },
		"discount order": func(c *EventConfig) { c.Discounts = append(c.Discounts, c.Discounts[0]) },
		"category quota": func(c *EventConfig) { c.CategoryQuotaBps[3] = 10001 },
		"":               func(*EventConfig) {}, // valid
	}
	issuer := chain.Accounts[1]
	for name, mutate := range cases {
		c := base()
		mutate(c)
		werr := c.Validate()
		_, cerr := chain.Transact(issuer, chain.Factory, events.NewEventFactory().PackCreateEvent(gethConfig(c)), nil)
		if name == "" {
			if werr != nil || cerr != nil {
				t.Fatalf("valid config: wallet %v, contract %v", werr, cerr)
			}
			continue
		}
		parsed, _ := events.EventFactoryMetaData.ParseABI()
		if !errors.Is(werr, ErrInvalidConfig) || devchain.ErrorName(parsed, cerr) != "InvalidConfig" {
			t.Errorf("%s: wallet %v; contract %v", name, werr, cerr)
		} else {
			t.Logf("%-18s wallet: %v | contract: %v", name, werr, devchain.ErrorArgs(parsed, cerr))
		}
	}
	// The wallet's own calldata creates the event on the real factory.
	data, err := EncodeCreateEvent(base())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chain.Transact(issuer, chain.Factory, data, nil); err != nil {
		t.Fatal(err)
	}
}

// TestCreateEventSignsWhatItShows: the summary says every rule in words, from the decoded
// calldata; the signed request carries exactly that calldata to the factory.
func TestCreateEventSignsWhatItShows(t *testing.T) {
	k := devKey(t)
	c := demoConfig()
	a, err := CreateEvent(k.Address(), env(), factory, c, token)
	if err != nil {
		t.Fatal(err)
	}
	text := lines(a)
	for _, want := range []string{
		"Event: Stagepass Live: Opening Night", "Venue: Harbour Hall, Main Stage", "Paid in: TUSD",
		"Tier 1: General admission: face value 45 TUSD, 2000 tickets", "Tier 2: VIP balcony: face value 120 TUSD, 150 tickets",
		"Resale cap: up to 20% above face value (at most 54 TUSD for General admission, 144 TUSD for VIP balcony)",
		"Seller keeps: 50% of a resale markup", "Per-buyer limit: 6 ticket(s)", "Gifts: allowed",
		"Pays Originator: 50% to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "Pays Artist: 30% to", "Pays Venue: 10% to",
		"Discount: from ", "the price may drop up to 20% below face value", "Resale closes: ",
		"Buyer categories: scalpers at most 10% of tickets; bots at most 0% of tickets",
		"Door scanners: 0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "Gas: paid by Stagepass", "Function: createEvent(EventConfig)",
	} {
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
	want := events.NewEventFactory().PackCreateEvent(gethConfig(c))
	if req.To != factory || !bytes.Equal(req.Data, want) {
		t.Fatalf("signed request to %s with other calldata", req.To)
	}
	// Refused before signing, with the rule in words.
	c.Splits[0].Bps = 4000
	if _, err := CreateEvent(k.Address(), env(), factory, c, token); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "add up to 90%") {
		t.Fatalf("bad splits: %v", err)
	}
	// Only the issuer manages gates.
	if _, err := SetGate(k.Address(), env(), &protocol.EventInfo{Address: evAddr.Hex(), Name: "X", Issuer: friend.Hex()}, friend, true); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("setGate by a stranger: %v", err)
	}
	g, err := SetGate(k.Address(), env(), &protocol.EventInfo{Address: evAddr.Hex(), Name: "X", Issuer: k.Address().Hex()}, friend, true)
	if err != nil || !strings.Contains(lines(g), "Scanner account: "+friend.Hex()) || !strings.Contains(lines(g), "May check tickets in: yes") {
		t.Fatalf("setGate summary %v:\n%s", err, lines(g))
	}
}
