package actions

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

// Sentinel errors the page branches on.
var (
	ErrPriceOutOfRange = errors.New("actions: price outside the allowed resale range")
	ErrNotAllowed      = errors.New("actions: the event's rules do not allow this")
	ErrBadArgs         = errors.New("actions: invalid arguments")
)

// Gas limits of the forward requests: measured costs with a wide margin (the relay
// simulates each request before accepting it, so too little gas is refused, not lost).
const (
	gasBuyBase      = 250_000
	gasBuyPerTicket = 150_000
	gasList         = 150_000
	gasCancel       = 100_000
	gasGift         = 200_000
	gasCheckIn      = 120_000
	gasCheckInEach  = 50_000
	validFor        = time.Hour
	bps             = 10_000
)

// Env is what the relay said about the chain and the signer, just before building.
type Env struct {
	ChainID   uint64
	Forwarder ethcrypto.Address
	Nonce     *big.Int // the signer's next forwarder nonce
	Now       time.Time
}

// Action is a forward request awaiting approval. Its summary was built by decoding the
// request's calldata; Sign signs exactly that request (and, for a purchase, the permit
// whose signature the calldata then carries, every other byte unchanged).
type Action struct {
	Account ethcrypto.Address
	Summary signing.Summary
	Request *protocol.ForwardRequest
	Domain  protocol.Domain
	permit  *eip712.TypedData // purchases: signed first, its v,r,s go into the calldata
}

// Signer signs a 32-byte digest, returning r||s||v with v = 0/1.
type Signer interface {
	Sign(digest []byte) ([]byte, error)
}

// Sign signs the action with the account's key and returns what sp_sendForward takes.
func (a *Action) Sign(k Signer) (protocol.ForwardSubmission, error) {
	req := *a.Request
	if a.permit != nil {
		d, err := a.permit.Digest()
		if err != nil {
			return protocol.ForwardSubmission{}, err
		}
		sig, err := k.Sign(d[:])
		if err != nil {
			return protocol.ForwardSubmission{}, fmt.Errorf("actions: sign permit: %w", err)
		}
		c, err := Decode(req.Data)
		if err != nil {
			return protocol.ForwardSubmission{}, err
		}
		c.Permit.V = sig[64] + 27
		copy(c.Permit.R[:], sig[:32])
		copy(c.Permit.S[:], sig[32:64])
		if req.Data, err = c.Encode(); err != nil {
			return protocol.ForwardSubmission{}, err
		}
	}
	digest, err := req.Digest(a.Domain)
	if err != nil {
		return protocol.ForwardSubmission{}, err
	}
	sig, err := k.Sign(digest[:])
	if err != nil {
		return protocol.ForwardSubmission{}, fmt.Errorf("actions: sign request: %w", err)
	}
	sig = append([]byte(nil), sig...)
	sig[64] += 27
	return protocol.ForwardSubmission{Request: req.JSON(), Signature: "0x" + fmt.Sprintf("%x", sig)}, nil
}

// Money formats amounts of one currency.
type Money struct {
	Symbol   string
	Decimals uint8
}

// MoneyOf is the currency of an event: its token as the relay described it, or the
// chain's native coin for the zero address.
func MoneyOf(ev *protocol.EventInfo, token *protocol.PermitInfo) Money {
	if token != nil && token.Symbol != "" {
		return Money{token.Symbol, token.Decimals}
	}
	if a, err := ethcrypto.ParseAddress(ev.Currency); err == nil && a.IsZero() {
		return Money{"ETH", 18}
	}
	return Money{"units", 0}
}

// Format renders x with the currency's decimals, trailing zeros trimmed ("45.5 TUSD").
func (m Money) Format(x *big.Int) string {
	if x == nil {
		x = new(big.Int)
	}
	unit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(m.Decimals)), nil)
	q, r := new(big.Int).QuoRem(x, unit, new(big.Int))
	s := q.String()
	if r.Sign() != 0 {
		s += "." + strings.TrimRight(fmt.Sprintf("%0*s", int(m.Decimals), r.String()), "0")
	}
	return s + " " + m.Symbol
}

func parseAmount(what, s string) (*big.Int, error) {
	x, ok := new(big.Int).SetString(s, 10)
	if !ok || x.Sign() < 0 {
		return nil, fmt.Errorf("%w: %s %q is not an amount", ErrBadArgs, what, s)
	}
	return x, nil
}

// discountBps is the event's discount at t: the last schedule step already reached.
func discountBps(ev *protocol.EventInfo, t time.Time) int64 {
	var b int64
	for _, d := range ev.Discounts {
		if uint64(t.Unix()) < d.From {
			break
		}
		b = int64(d.MaxDiscountBps)
	}
	return b
}

// Prices are a tier's prices at one time, as EventTicket.prices computes them.
type Prices struct {
	Face, Primary, Floor, Cap *big.Int
}

// TierPrices computes the primary price and the resale range of tier at t.
func TierPrices(ev *protocol.EventInfo, tier uint64, t time.Time) (Prices, error) {
	if tier >= uint64(len(ev.Tiers)) {
		return Prices{}, fmt.Errorf("%w: %s has no tier %d", ErrBadArgs, ev.Name, tier)
	}
	face, err := parseAmount("face value", ev.Tiers[tier].FaceValue)
	if err != nil {
		return Prices{}, err
	}
	floor := new(big.Int).Sub(face, mulDiv(face, discountBps(ev, t)))
	capP := new(big.Int).Add(face, mulDiv(face, int64(ev.MaxResaleMarkupBps)))
	return Prices{Face: face, Primary: floor, Floor: floor, Cap: capP}, nil
}

func mulDiv(x *big.Int, b int64) *big.Int {
	return new(big.Int).Quo(new(big.Int).Mul(x, big.NewInt(b)), big.NewInt(bps))
}

// SplitAmounts divides amount among the event's split parties as the contract does: by
// basis points, the last party taking the rounding remainder.
func SplitAmounts(ev *protocol.EventInfo, amount *big.Int) []*big.Int {
	n := len(ev.Splits)
	parts := make([]*big.Int, n)
	left := new(big.Int).Set(amount)
	for i := 0; i+1 < n; i++ {
		parts[i] = mulDiv(amount, int64(ev.Splits[i].Bps))
		left.Sub(left, parts[i])
	}
	if n > 0 {
		parts[n-1] = left
	}
	return parts
}

// ResaleSellerAmount is what the seller receives of a resale at price (the rest is split).
func ResaleSellerAmount(ev *protocol.EventInfo, face, price *big.Int) *big.Int {
	markup := new(big.Int)
	if price.Cmp(face) > 0 {
		markup.Sub(price, face)
	}
	out := new(big.Int).Sub(price, markup)
	return out.Add(out, mulDiv(markup, int64(ev.SellerMarkupShareBps)))
}

var roles = []string{"Originator", "Artist", "Promoter", "Venue", "Other"}

func roleName(r uint8) string {
	if int(r) < len(roles) {
		return roles[r]
	}
	return fmt.Sprintf("Party (role %d)", r)
}

func tierName(ev *protocol.EventInfo, tier uint64) string {
	if tier < uint64(len(ev.Tiers)) && ev.Tiers[tier].Name != "" {
		return ev.Tiers[tier].Name
	}
	return fmt.Sprintf("tier %d", tier)
}

func addPayees(s *signing.Summary, ev *protocol.EventInfo, m Money, amount *big.Int) {
	for i, part := range SplitAmounts(ev, amount) {
		sp := ev.Splits[i]
		s.Lines = append(s.Lines, signing.Line{Label: "Pays " + roleName(sp.Role),
			Value: fmt.Sprintf("%s (%s, %.2f%%)", m.Format(part), sp.Account, float64(sp.Bps)/100)})
	}
}

func (e *Env) request(from, to ethcrypto.Address, gas uint64, data []byte) *protocol.ForwardRequest {
	return &protocol.ForwardRequest{From: from, To: to, Value: new(big.Int), Gas: new(big.Int).SetUint64(gas),
		Nonce: new(big.Int).Set(e.Nonce), Deadline: uint64(e.Now.Add(validFor).Unix()), Data: data}
}

func (e *Env) check() error {
	if e.Nonce == nil || e.ChainID == 0 || e.Forwarder.IsZero() {
		return fmt.Errorf("%w: chain id, forwarder and nonce are required", ErrBadArgs)
	}
	return nil
}

func eventAddress(ev *protocol.EventInfo) (ethcrypto.Address, error) {
	a, err := ethcrypto.ParseAddress(ev.Address)
	if err != nil || a.IsZero() {
		return a, fmt.Errorf("%w: event address %q", ErrBadArgs, ev.Address)
	}
	return a, nil
}

func open(ev *protocol.EventInfo, now time.Time) error {
	if ev.Cancelled {
		return fmt.Errorf("%w: %s is cancelled", ErrNotAllowed, ev.Name)
	}
	if uint64(now.Unix()) >= ev.ResaleClosesAt {
		return fmt.Errorf("%w: sales and transfers of %s closed at %s", ErrNotAllowed, ev.Name, when(ev.ResaleClosesAt))
	}
	return nil
}

func when(unix uint64) string { return time.Unix(int64(unix), 0).UTC().Format("2006-01-02 15:04 UTC") }

// newAction decodes req's calldata and builds the summary from the decoded call; extra
// lines (what the calldata cannot say, e.g. a card payment's amount) follow its own.
func newAction(account ethcrypto.Address, env *Env, req *protocol.ForwardRequest, ev *protocol.EventInfo, m Money, p *Prices, extra ...signing.Line) (*Action, error) {
	c, err := Decode(req.Data)
	if err != nil {
		return nil, err
	}
	s := signing.Summary{Kind: "forward", Account: account.Hex()}
	add := func(l, v string) { s.Lines = append(s.Lines, signing.Line{Label: l, Value: v}) }
	add("Event", ev.Name)
	if ev.Venue != "" {
		add("Venue", ev.Venue)
	}
	if ev.StartsAt != 0 {
		add("Starts", when(ev.StartsAt))
	}
	switch c.Sig {
	case SigBuyWithPermit:
		tier := c.Tier.Uint64()
		total := new(big.Int).Mul(c.MaxUnit, c.Qty)
		s.Title = fmt.Sprintf("Buy %s × %s", c.Qty, tierName(ev, tier))
		add("Tier", tierName(ev, tier))
		add("Quantity", c.Qty.String())
		add("Price each", m.Format(c.MaxUnit))
		add("Total", m.Format(total))
		add("Pays with", "a permit letting the event contract take up to "+m.Format(total)+" of your "+m.Symbol)
		addPayees(&s, ev, m, total)
	case SigList:
		tier := new(big.Int).Rsh(c.TokenID, 32).Uint64()
		s.Title = "List ticket #" + c.TokenID.String() + " for resale"
		add("Ticket", fmt.Sprintf("#%s (%s)", c.TokenID, tierName(ev, tier)))
		add("Price", m.Format(c.Price))
		add("Allowed range", m.Format(p.Floor)+" – "+m.Format(p.Cap)+" (face value "+m.Format(p.Face)+")")
		seller := ResaleSellerAmount(ev, p.Face, c.Price)
		add("You receive if sold", m.Format(seller))
		addPayees(&s, ev, m, new(big.Int).Sub(c.Price, seller))
		add("Listing open until", when(ev.ResaleClosesAt))
	case SigCancelListing:
		s.Title = "Withdraw ticket #" + c.TokenID.String() + " from resale"
		add("Ticket", "#"+c.TokenID.String())
	case SigTransferFrom:
		tier := new(big.Int).Rsh(c.TokenID, 32).Uint64()
		s.Title = "Give ticket #" + c.TokenID.String() + " away"
		add("Ticket", fmt.Sprintf("#%s (%s)", c.TokenID, tierName(ev, tier)))
		add("From", c.From.Hex())
		add("To", c.To.Hex())
		s.Warnings = append(s.Warnings, "A gift cannot be undone: the ticket becomes the recipient's.")
	case SigCheckIn, SigCheckInBatch:
		ids := c.TokenIDs
		if c.Sig == SigCheckIn {
			ids = []*big.Int{c.TokenID}
		}
		s.Title = fmt.Sprintf("Check in %d ticket(s) at the door", len(ids))
		strs := make([]string, len(ids))
		for i, id := range ids {
			strs[i] = "#" + id.String()
		}
		add("Tickets", strings.Join(strs, ", "))
	case SigRequestPurchase, SigRequestResale, SigBuyListed:
		describeMarket(&s, c, ev, m, p)
	}
	s.Lines = append(s.Lines, extra...)
	tail(&s, req, c)
	return &Action{Account: account, Summary: s, Request: req, Domain: protocol.ForwarderDomain(env.ChainID, env.Forwarder)}, nil
}

// Buy prepares a gasless primary purchase of qty tickets of tier, paid in the event's
// ERC-20 with an EIP-2612 permit for exactly the total, at the price in force now.
func Buy(account ethcrypto.Address, env Env, ev *protocol.EventInfo, token *protocol.PermitInfo, tier, qty uint64) (*Action, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	evAddr, err := eventAddress(ev)
	if err != nil {
		return nil, err
	}
	if err := open(ev, env.Now); err != nil {
		return nil, err
	}
	cur, err := ethcrypto.ParseAddress(ev.Currency)
	if err != nil || cur.IsZero() {
		return nil, fmt.Errorf("%w: %s is paid in the native coin; a gasless purchase needs its ERC-20", ErrNotAllowed, ev.Name)
	}
	if token == nil || !strings.EqualFold(token.Token, ev.Currency) {
		return nil, fmt.Errorf("%w: permit details are for another token", ErrBadArgs)
	}
	if qty == 0 || (ev.MaxPerBuyer != 0 && qty > uint64(ev.MaxPerBuyer)) {
		return nil, fmt.Errorf("%w: quantity %d (at most %d per buyer)", ErrBadArgs, qty, ev.MaxPerBuyer)
	}
	p, err := TierPrices(ev, tier, env.Now)
	if err != nil {
		return nil, err
	}
	if t := ev.Tiers[tier]; uint64(t.Sold)+qty > uint64(t.Supply) {
		return nil, fmt.Errorf("%w: %s has %d left", ErrNotAllowed, tierName(ev, tier), t.Supply-t.Sold)
	}
	nonce, err := parseAmount("permit nonce", token.Nonce)
	if err != nil {
		return nil, err
	}
	deadline := big.NewInt(env.Now.Add(validFor).Unix())
	c := &Call{Sig: SigBuyWithPermit, Tier: new(big.Int).SetUint64(tier), Qty: new(big.Int).SetUint64(qty),
		MaxUnit: p.Primary, Permit: Permit{Deadline: deadline}}
	data, err := c.Encode()
	if err != nil {
		return nil, err
	}
	a, err := newAction(account, &env, env.request(account, evAddr, gasBuyBase+gasBuyPerTicket*qty, data), ev, MoneyOf(ev, token), &p)
	if err != nil {
		return nil, err
	}
	a.permit = PermitTypedData(env.ChainID, token, cur, account, evAddr, new(big.Int).Mul(p.Primary, c.Qty), nonce, deadline)
	return a, nil
}

// PermitTypedData is the EIP-2612 permit owner signs so spender may take value.
func PermitTypedData(chainID uint64, token *protocol.PermitInfo, tokenAddr, owner, spender ethcrypto.Address, value, nonce, deadline *big.Int) *eip712.TypedData {
	return &eip712.TypedData{
		Types: eip712.Types{
			eip712.DomainType: {
				{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
			},
			"Permit": {
				{Name: "owner", Type: "address"}, {Name: "spender", Type: "address"},
				{Name: "value", Type: "uint256"}, {Name: "nonce", Type: "uint256"}, {Name: "deadline", Type: "uint256"},
			},
		},
		PrimaryType: "Permit",
		Domain: map[string]any{"name": token.Name, "version": token.Version,
			"chainId": new(big.Int).SetUint64(chainID), "verifyingContract": tokenAddr},
		Message: map[string]any{"owner": owner, "spender": spender, "value": value, "nonce": nonce, "deadline": deadline},
	}
}

// List prepares listing a ticket the account holds for resale at price, which must lie
// in the event's allowed range now (the summary shows the range).
func List(account ethcrypto.Address, env Env, ev *protocol.EventInfo, token *protocol.PermitInfo, tokenID, price *big.Int) (*Action, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	evAddr, err := eventAddress(ev)
	if err != nil {
		return nil, err
	}
	if err := open(ev, env.Now); err != nil {
		return nil, err
	}
	if err := errors.Join(checkUint("token id", tokenID, 256), checkUint("price", price, 256)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgs, err)
	}
	p, err := TierPrices(ev, new(big.Int).Rsh(tokenID, 32).Uint64(), env.Now)
	if err != nil {
		return nil, err
	}
	m := MoneyOf(ev, token)
	if price.Sign() == 0 || price.Cmp(p.Floor) < 0 || price.Cmp(p.Cap) > 0 {
		return nil, fmt.Errorf("%w: %s is outside %s – %s", ErrPriceOutOfRange, m.Format(price), m.Format(p.Floor), m.Format(p.Cap))
	}
	data, _ := (&Call{Sig: SigList, TokenID: tokenID, Price: price}).Encode()
	return newAction(account, &env, env.request(account, evAddr, gasList, data), ev, m, &p)
}

// CancelListing prepares withdrawing a listing.
func CancelListing(account ethcrypto.Address, env Env, ev *protocol.EventInfo, tokenID *big.Int) (*Action, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	evAddr, err := eventAddress(ev)
	if err != nil {
		return nil, err
	}
	data, err := (&Call{Sig: SigCancelListing, TokenID: tokenID}).Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgs, err)
	}
	return newAction(account, &env, env.request(account, evAddr, gasCancel, data), ev, Money{}, nil)
}

// Gift prepares giving a ticket to another address (transferFrom), if the event allows gifts.
func Gift(account ethcrypto.Address, env Env, ev *protocol.EventInfo, tokenID *big.Int, to ethcrypto.Address) (*Action, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	evAddr, err := eventAddress(ev)
	if err != nil {
		return nil, err
	}
	if !ev.GiftsAllowed {
		return nil, fmt.Errorf("%w: %s does not allow gifts", ErrNotAllowed, ev.Name)
	}
	if err := open(ev, env.Now); err != nil {
		return nil, err
	}
	if to.IsZero() || to == account {
		return nil, fmt.Errorf("%w: recipient %s", ErrBadArgs, to)
	}
	data, err := (&Call{Sig: SigTransferFrom, From: account, To: to, TokenID: tokenID}).Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgs, err)
	}
	return newAction(account, &env, env.request(account, evAddr, gasGift, data), ev, Money{}, nil)
}

// CheckIn prepares a gate's check-in of one ticket (checkIn) or several (checkInBatch).
func CheckIn(gate ethcrypto.Address, env Env, ev *protocol.EventInfo, tokenIDs []*big.Int) (*Action, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	evAddr, err := eventAddress(ev)
	if err != nil {
		return nil, err
	}
	if len(tokenIDs) == 0 {
		return nil, fmt.Errorf("%w: no tickets to check in", ErrBadArgs)
	}
	c := &Call{Sig: SigCheckInBatch, TokenIDs: tokenIDs}
	gas := uint64(gasCheckIn + gasCheckInEach*len(tokenIDs))
	if len(tokenIDs) == 1 {
		c = &Call{Sig: SigCheckIn, TokenID: tokenIDs[0]}
		gas = gasCheckIn
	}
	data, err := c.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArgs, err)
	}
	return newAction(gate, &env, env.request(gate, evAddr, gas, data), ev, Money{}, nil)
}
