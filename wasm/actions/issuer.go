package actions

// An issuer's gasless actions: EventFactory.createEvent(EventConfig) and
// EventTicket.setGate(gate, allowed). The EventConfig tuple is encoded by hand (the wasm has
// no go-ethereum) and decoded strictly: the summary is built from the decoded calldata, the
// same bytes that are signed; the tests check both against go-ethereum's abi package.

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

// The issuer's calls (contracts/src/EventFactory.sol, EventTicket.sol).
const (
	SigCreateEvent = "createEvent((string,string,string,uint40,uint40,address,address,(string,uint88,uint32)[]," +
		"(uint16,uint16,uint16,bool,uint40,(uint40,uint16)[],uint16[5],uint40,uint40),(address,uint16,uint8)[],address[]))"
	SigSetGate = "setGate(address,bool)"
)

// EventFactory._validate's limits (contracts/src/EventTypes.sol).
const (
	MaxTiers       = 8
	MaxSplits      = 9
	MaxDiscounts   = 4
	maxTotalSupply = 1<<24 - 1
	gasCreateBase  = 700_000
	gasCreateEach  = 60_000 // per tier, split, discount and gate
	gasSetGate     = 80_000
)

// ErrInvalidConfig is an event configuration EventFactory would refuse.
var ErrInvalidConfig = errors.New("actions: invalid event configuration")

// EventConfig is what an issuer gives createEvent, in the shape the relay describes events
// (protocol.EventInfo: the page previews it with the fan app's own code), plus the two fields
// only creation has. Address, issuer, sold counts, cancelled and created are ignored.
type EventConfig struct {
	protocol.EventInfo
	CategoryRegistry string   `json:"categoryRegistry,omitempty"`
	Gates            []string `json:"gates,omitempty"`
}

// abiVal is one ABI-encoded value: its bytes and whether it is dynamic (goes in the tail).
type abiVal struct {
	b   []byte
	dyn bool
}

func uintVal(x uint64) abiVal            { return abiVal{b: word(new(big.Int).SetUint64(x))} }
func addrVal(a ethcrypto.Address) abiVal { return abiVal{b: addrWord(a)} }
func boolVal(v bool) abiVal {
	if v {
		return uintVal(1)
	}
	return uintVal(0)
}

func strVal(s string) abiVal {
	b := append(word(big.NewInt(int64(len(s)))), s...)
	return abiVal{b: append(b, make([]byte, (32-len(s)%32)%32)...), dyn: true}
}

// tupleVal encodes a tuple (or a fixed array): static parts inline, dynamic parts as
// offsets into the tail.
func tupleVal(vs ...abiVal) abiVal {
	head, dyn := 0, false
	for _, v := range vs {
		if v.dyn {
			head += 32
			dyn = true
		} else {
			head += len(v.b)
		}
	}
	var h, tail []byte
	for _, v := range vs {
		if v.dyn {
			h = append(h, word(big.NewInt(int64(head+len(tail))))...)
			tail = append(tail, v.b...)
		} else {
			h = append(h, v.b...)
		}
	}
	return abiVal{b: append(h, tail...), dyn: dyn}
}

// arrayVal encodes a dynamic-length array T[].
func arrayVal(vs ...abiVal) abiVal {
	return abiVal{b: append(word(big.NewInt(int64(len(vs)))), tupleVal(vs...).b...), dyn: true}
}

func parseAddr(what, s string) (ethcrypto.Address, error) {
	if s == "" {
		return ethcrypto.Address{}, nil
	}
	a, err := ethcrypto.ParseAddress(s)
	if err != nil {
		return a, fmt.Errorf("%w: %s %q is not an address", ErrInvalidConfig, what, s)
	}
	return a, nil
}

func checkBits(what string, x uint64, bits uint) error {
	if x>>bits != 0 {
		return fmt.Errorf("%w: %s %d does not fit in uint%d", ErrInvalidConfig, what, x, bits)
	}
	return nil
}

// Validate applies EventFactory._validate's rules (the contract enforces them again) and
// the ABI's integer widths, so a bad configuration is refused with a clear error before
// anything is signed.
func (c *EventConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, a...)...)
	}
	if c.Name == "" {
		return bad("the event needs a name")
	}
	for _, f := range []struct {
		n string
		x uint64
	}{{"starts at", c.StartsAt}, {"doors open at", c.DoorsOpenAt}, {"resale closes at", c.ResaleClosesAt},
		{"presale ends at", c.PresaleEndsAt}, {"superfan presale ends at", c.SuperfanPresaleEndsAt}} {
		if err := checkBits(f.n, f.x, 40); err != nil {
			return err
		}
	}
	if c.DoorsOpenAt > c.StartsAt {
		return bad("doors open after the start")
	}
	if c.ResaleClosesAt == 0 || c.ResaleClosesAt > c.StartsAt {
		return bad("resale must close at or before the start")
	}
	if c.MaxPerBuyer == 0 {
		return bad("the per-buyer limit must be at least 1")
	}
	if c.SellerMarkupShareBps > bps {
		return bad("the seller's share of the markup is over 100%%")
	}
	if len(c.Tiers) == 0 || len(c.Tiers) > MaxTiers {
		return bad("an event has 1 to %d tiers, not %d", MaxTiers, len(c.Tiers))
	}
	var total uint64
	for i, t := range c.Tiers {
		if t.Supply == 0 {
			return bad("tier %d (%s) has no tickets", i+1, t.Name)
		}
		face, ok := new(big.Int).SetString(t.FaceValue, 10)
		if !ok || face.Sign() < 0 || face.BitLen() > 88 {
			return bad("tier %d (%s): face value %q is not an amount", i+1, t.Name, t.FaceValue)
		}
		total += uint64(t.Supply)
	}
	if total > maxTotalSupply {
		return bad("%d tickets in all; at most %d", total, maxTotalSupply)
	}
	if len(c.Splits) == 0 || len(c.Splits) > MaxSplits {
		return bad("1 to %d parties get paid, not %d", MaxSplits, len(c.Splits))
	}
	var sum uint64
	for i, s := range c.Splits {
		a, err := parseAddr(fmt.Sprintf("party %d", i+1), s.Account)
		if err != nil {
			return err
		}
		if a.IsZero() {
			return bad("party %d has no account", i+1)
		}
		sum += uint64(s.Bps)
	}
	if sum != bps {
		return bad("the parties' shares add up to %s%%, not 100%%", pctString(sum))
	}
	if len(c.Discounts) > MaxDiscounts {
		return bad("at most %d discount steps", MaxDiscounts)
	}
	var last uint64
	for i, d := range c.Discounts {
		if err := checkBits("discount start", d.From, 40); err != nil {
			return err
		}
		if d.MaxDiscountBps > bps {
			return bad("discount step %d is over 100%%", i+1)
		}
		if d.From == 0 && d.MaxDiscountBps == 0 {
			return bad("discount step %d is empty", i+1)
		}
		if i > 0 && d.From <= last {
			return bad("discount steps must be in time order")
		}
		last = d.From
	}
	for i, q := range c.CategoryQuotaBps {
		if q > bps {
			return bad("category %d quota is over 100%%", i)
		}
	}
	if c.SuperfanPresaleEndsAt > c.PresaleEndsAt || c.PresaleEndsAt >= c.ResaleClosesAt {
		return bad("the superfan presale must end no later than the fan presale, and both before resale closes")
	}
	if _, err := parseAddr("currency", c.Currency); err != nil {
		return err
	}
	if _, err := parseAddr("category registry", c.CategoryRegistry); err != nil {
		return err
	}
	for i, g := range c.Gates {
		if a, err := parseAddr(fmt.Sprintf("gate %d", i+1), g); err != nil || a.IsZero() {
			return bad("gate %d %q is not an account", i+1, g)
		}
	}
	return nil
}

func pctString(b uint64) string {
	s := fmt.Sprintf("%.2f", float64(b)/100)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// EncodeCreateEvent validates c and returns the createEvent calldata.
func EncodeCreateEvent(c *EventConfig) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cur, _ := parseAddr("currency", c.Currency)
	reg, _ := parseAddr("category registry", c.CategoryRegistry)
	tiers := make([]abiVal, len(c.Tiers))
	for i, t := range c.Tiers {
		face, _ := new(big.Int).SetString(t.FaceValue, 10)
		tiers[i] = tupleVal(strVal(t.Name), abiVal{b: word(face)}, uintVal(uint64(t.Supply)))
	}
	discounts := make([]abiVal, len(c.Discounts))
	for i, d := range c.Discounts {
		discounts[i] = tupleVal(uintVal(d.From), uintVal(uint64(d.MaxDiscountBps)))
	}
	quotas := make([]abiVal, len(c.CategoryQuotaBps))
	for i, q := range c.CategoryQuotaBps {
		quotas[i] = uintVal(uint64(q))
	}
	rules := tupleVal(uintVal(uint64(c.MaxPerBuyer)), uintVal(uint64(c.MaxResaleMarkupBps)),
		uintVal(uint64(c.SellerMarkupShareBps)), boolVal(c.GiftsAllowed), uintVal(c.ResaleClosesAt),
		arrayVal(discounts...), tupleVal(quotas...), uintVal(c.PresaleEndsAt), uintVal(c.SuperfanPresaleEndsAt))
	splits := make([]abiVal, len(c.Splits))
	for i, s := range c.Splits {
		a, _ := parseAddr("party", s.Account)
		splits[i] = tupleVal(addrVal(a), uintVal(uint64(s.Bps)), uintVal(uint64(s.Role)))
	}
	gates := make([]abiVal, len(c.Gates))
	for i, g := range c.Gates {
		a, _ := parseAddr("gate", g)
		gates[i] = addrVal(a)
	}
	cfg := tupleVal(strVal(c.Name), strVal(c.Venue), strVal(c.BaseURI), uintVal(c.StartsAt), uintVal(c.DoorsOpenAt),
		addrVal(cur), addrVal(reg), arrayVal(tiers...), rules, arrayVal(splits...), arrayVal(gates...))
	sel := selector(SigCreateEvent)
	return append(sel[:], tupleVal(cfg).b...), nil
}

// abiReader reads ABI data leniently; DecodeCreateEvent then re-encodes what it read and
// demands the very same bytes, which makes the decoding strict (canonical offsets, padding
// and integer widths, nothing extra).
type abiReader struct {
	data []byte
	err  error
}

func (r *abiReader) word(off int) *big.Int {
	if r.err != nil || off < 0 || off+32 > len(r.data) {
		r.fail("word at %d", off)
		return new(big.Int)
	}
	return new(big.Int).SetBytes(r.data[off : off+32])
}

func (r *abiReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: createEvent "+format+" is out of bounds", append([]any{ErrCalldata}, a...)...)
	}
}

func (r *abiReader) uint(off int) uint64 {
	w := r.word(off)
	if !w.IsUint64() {
		r.fail("integer at %d", off)
		return 0
	}
	return w.Uint64()
}

// ptr follows the offset stored at off, relative to base.
func (r *abiReader) ptr(base, off int) int {
	p := r.uint(off)
	if p > uint64(len(r.data)) {
		r.fail("offset at %d", off)
		return 0
	}
	return base + int(p)
}

// addr reads an address word (its zero padding is checked by the round trip).
func (r *abiReader) addr(off int) string {
	if r.word(off); r.err != nil {
		return ""
	}
	return ethcrypto.Address(r.data[off+12 : off+32]).Hex()
}

func (r *abiReader) str(off int) string {
	n := r.uint(off)
	if r.err != nil || n > uint64(len(r.data)) || off+32+int(n) > len(r.data) {
		r.fail("string at %d", off)
		return ""
	}
	return string(r.data[off+32 : off+32+int(n)])
}

// array returns the element count and the start of the elements of the array at off.
func (r *abiReader) array(off int) (int, int) {
	n := r.uint(off)
	if r.err != nil || n > uint64(len(r.data))/32 {
		r.fail("array at %d", off)
		return 0, 0
	}
	return int(n), off + 32
}

// DecodeCreateEvent parses createEvent calldata strictly.
func DecodeCreateEvent(data []byte) (*EventConfig, error) {
	sel := selector(SigCreateEvent)
	if len(data) < 4 || !bytes.Equal(data[:4], sel[:]) {
		return nil, fmt.Errorf("%w: not createEvent", ErrCalldata)
	}
	r := &abiReader{data: data[4:]}
	t := r.ptr(0, 0) // the config tuple
	c := &EventConfig{}
	c.Name, c.Venue, c.BaseURI = r.str(r.ptr(t, t)), r.str(r.ptr(t, t+32)), r.str(r.ptr(t, t+64))
	c.StartsAt, c.DoorsOpenAt = r.uint(t+96), r.uint(t+128)
	c.Currency = r.addr(t + 160)
	if reg := r.addr(t + 192); reg != (ethcrypto.Address{}).Hex() {
		c.CategoryRegistry = reg
	}
	n, at := r.array(r.ptr(t, t+224))
	for i := 0; i < n && r.err == nil; i++ {
		e := r.ptr(at, at+32*i)
		c.Tiers = append(c.Tiers, protocol.TierInfo{Name: r.str(r.ptr(e, e)), FaceValue: r.word(e + 32).String(), Supply: uint32(r.uint(e + 64))})
	}
	ru := r.ptr(t, t+256)
	c.MaxPerBuyer, c.MaxResaleMarkupBps, c.SellerMarkupShareBps = uint16(r.uint(ru)), uint16(r.uint(ru+32)), uint16(r.uint(ru+64))
	c.GiftsAllowed = r.uint(ru+96) == 1
	c.ResaleClosesAt = r.uint(ru + 128)
	n, at = r.array(r.ptr(ru, ru+160))
	for i := 0; i < n && r.err == nil; i++ {
		c.Discounts = append(c.Discounts, protocol.Discount{From: r.uint(at + 64*i), MaxDiscountBps: uint16(r.uint(at + 64*i + 32))})
	}
	for i := range c.CategoryQuotaBps {
		c.CategoryQuotaBps[i] = uint16(r.uint(ru + 192 + 32*i))
	}
	c.PresaleEndsAt, c.SuperfanPresaleEndsAt = r.uint(ru+352), r.uint(ru+384)
	n, at = r.array(r.ptr(t, t+288))
	for i := 0; i < n && r.err == nil; i++ {
		c.Splits = append(c.Splits, protocol.SplitInfo{Account: r.addr(at + 96*i), Bps: uint16(r.uint(at + 96*i + 32)), Role: uint8(r.uint(at + 96*i + 64))})
	}
	n, at = r.array(r.ptr(t, t+320))
	for i := 0; i < n && r.err == nil; i++ {
		c.Gates = append(c.Gates, r.addr(at+32*i))
	}
	if r.err != nil {
		return nil, r.err
	}
	again, err := EncodeCreateEvent(c)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, data) {
		return nil, fmt.Errorf("%w: createEvent calldata is not canonical", ErrCalldata)
	}
	return c, nil
}

// CreateEventSummary says in words everything a fan will see of the event.
func CreateEventSummary(c *EventConfig, m Money) signing.Summary {
	s := signing.Summary{Kind: "forward", Title: "Create the event " + c.Name}
	add := func(l, v string) { s.Lines = append(s.Lines, signing.Line{Label: l, Value: v}) }
	add("Event", c.Name)
	if c.Venue != "" {
		add("Venue", c.Venue)
	}
	add("Starts", when(c.StartsAt))
	add("Doors open", when(c.DoorsOpenAt))
	add("Paid in", m.Symbol)
	for i, t := range c.Tiers {
		face, _ := new(big.Int).SetString(t.FaceValue, 10)
		add(fmt.Sprintf("Tier %d", i+1), fmt.Sprintf("%s: face value %s, %d tickets", t.Name, m.Format(face), t.Supply))
	}
	if c.MaxResaleMarkupBps > 0 {
		caps := make([]string, len(c.Tiers))
		for i := range c.Tiers {
			face, _ := new(big.Int).SetString(c.Tiers[i].FaceValue, 10)
			caps[i] = m.Format(new(big.Int).Add(face, mulDiv(face, int64(c.MaxResaleMarkupBps)))) + " for " + c.Tiers[i].Name
		}
		add("Resale cap", fmt.Sprintf("up to %s%% above face value (at most %s)", pctString(uint64(c.MaxResaleMarkupBps)), strings.Join(caps, ", ")))
	} else {
		add("Resale cap", "at face value or less")
	}
	add("Seller keeps", pctString(uint64(c.SellerMarkupShareBps))+"% of a resale markup; the parties below share the rest")
	add("Resale closes", when(c.ResaleClosesAt))
	add("Per-buyer limit", fmt.Sprintf("%d ticket(s)", c.MaxPerBuyer))
	if c.GiftsAllowed {
		add("Gifts", "allowed")
	} else {
		add("Gifts", "not allowed")
	}
	for _, sp := range c.Splits {
		add("Pays "+roleName(sp.Role), fmt.Sprintf("%s%% to %s", pctString(uint64(sp.Bps)), sp.Account))
	}
	if len(c.Discounts) == 0 {
		add("Discounts", "none: the price never drops below face value")
	}
	for _, d := range c.Discounts {
		add("Discount", fmt.Sprintf("from %s the price may drop up to %s%% below face value", when(d.From), pctString(uint64(d.MaxDiscountBps))))
	}
	names := []string{"unclassified", "fans", "superfans", "scalpers", "bots"}
	var quotas []string
	for i, q := range c.CategoryQuotaBps {
		if q < bps {
			quotas = append(quotas, fmt.Sprintf("%s at most %s%% of tickets", names[i], pctString(uint64(q))))
		}
	}
	if len(quotas) > 0 {
		add("Buyer categories", strings.Join(quotas, "; "))
	}
	if c.SuperfanPresaleEndsAt > 0 {
		add("Superfan presale", "until "+when(c.SuperfanPresaleEndsAt)+" only the artist's superfans may buy")
	}
	if c.PresaleEndsAt > 0 {
		add("Fan presale", "until "+when(c.PresaleEndsAt)+" only the artist's fans and superfans may buy")
	}
	if c.CategoryRegistry != "" {
		add("Category registry", c.CategoryRegistry)
	}
	if len(c.Gates) > 0 {
		add("Door scanners", strings.Join(c.Gates, ", "))
	}
	s.Warnings = append(s.Warnings, "These rules are fixed once the event exists: fans rely on what they saw.")
	return s
}

// CreateEvent prepares EventFactory.createEvent(c) as a gasless request; the account becomes
// the event's issuer. token describes the currency (nil: the native coin).
func CreateEvent(account ethcrypto.Address, env Env, factory ethcrypto.Address, c *EventConfig, token *protocol.PermitInfo) (*Action, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	if factory.IsZero() {
		return nil, fmt.Errorf("%w: no factory address", ErrBadArgs)
	}
	data, err := EncodeCreateEvent(c)
	if err != nil {
		return nil, err
	}
	gas := gasCreateBase + gasCreateEach*uint64(len(c.Tiers)+len(c.Splits)+len(c.Discounts)+len(c.Gates))
	req := env.request(account, factory, gas, data)
	// The summary comes from the bytes about to be signed, decoded again.
	dec, err := DecodeCreateEvent(req.Data)
	if err != nil {
		return nil, err
	}
	s := CreateEventSummary(dec, MoneyOf(&dec.EventInfo, token))
	s.Account = account.Hex()
	finish(&s, req, "createEvent(EventConfig)")
	return &Action{Account: account, Summary: s, Request: req, Domain: protocol.ForwarderDomain(env.ChainID, env.Forwarder)}, nil
}

// SetGate prepares EventTicket.setGate(gate, allowed): a door scanner's account admitted
// (or removed). Only the event's issuer may; the relay's simulation refuses anyone else.
func SetGate(account ethcrypto.Address, env Env, ev *protocol.EventInfo, gate ethcrypto.Address, allowed bool) (*Action, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	evAddr, err := eventAddress(ev)
	if err != nil {
		return nil, err
	}
	if gate.IsZero() {
		return nil, fmt.Errorf("%w: gate account", ErrBadArgs)
	}
	if iss, err := ethcrypto.ParseAddress(ev.Issuer); err == nil && iss != account {
		return nil, fmt.Errorf("%w: only the issuer %s manages the door scanners of %s", ErrNotAllowed, iss, ev.Name)
	}
	data := encode(SigSetGate, addrWord(gate), boolVal(allowed).b)
	req := env.request(account, evAddr, gasSetGate, data)
	// Decoded back for the summary: the gate word and the flag.
	g, flag := req.Data[4+12:4+32], req.Data[4+63]
	s := signing.Summary{Kind: "forward", Account: account.Hex(), Title: "Remove a door scanner"}
	if flag == 1 {
		s.Title = "Add a door scanner"
	}
	s.Lines = append(s.Lines, signing.Line{Label: "Event", Value: ev.Name},
		signing.Line{Label: "Scanner account", Value: ethcrypto.Address(g).Hex()},
		signing.Line{Label: "May check tickets in", Value: map[byte]string{0: "no", 1: "yes"}[flag]})
	finish(&s, req, SigSetGate)
	return &Action{Account: account, Summary: s, Request: req, Domain: protocol.ForwarderDomain(env.ChainID, env.Forwarder)}, nil
}

// finish adds the lines every forward request's summary ends with.
func finish(s *signing.Summary, req *protocol.ForwardRequest, fn string) {
	s.Lines = append(s.Lines, signing.Line{Label: "Contract", Value: req.To.Hex()}, signing.Line{Label: "Function", Value: fn},
		signing.Line{Label: "Gas", Value: "paid by Stagepass"},
		signing.Line{Label: "Valid until", Value: when(req.Deadline)})
}
