package actions

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

// The market purchases beyond buyWithPermit: primary and resale purchases paid by card
// (requestPurchase, requestResale: the oracle network verifies the payment, the hub mints
// or moves the ticket) and a resale purchase paid in the event's ERC-20 (buyListed).
const (
	SigRequestPurchase = "requestPurchase(bytes32,uint256,uint256)"
	SigRequestResale   = "requestResale(bytes32,uint256)"
	SigBuyListed       = "buyListed(uint256,uint256)"
)

const (
	gasRequestPurchase = 300_000
	gasRequestResale   = 300_000
	gasBuyListed       = 350_000
)

// cardMoney formats the event's 6-decimal stablecoin base units as the card's dollars.
var cardMoney = Money{Symbol: strings.ToUpper(protocol.CardCurrency), Decimals: 6}

// CardAmount renders card minor units of currency: "USD 45.00".
func CardAmount(cents int64, currency string) string {
	return fmt.Sprintf("%s %d.%02d", strings.ToUpper(currency), cents/100, cents%100)
}

// describeMarket adds the lines of a decoded requestPurchase or buyListed.
func describeMarket(s *signing.Summary, c *Call, ev *protocol.EventInfo, m Money, p *Prices) {
	add := func(l, v string) { s.Lines = append(s.Lines, signing.Line{Label: l, Value: v}) }
	switch c.Sig {
	case SigRequestPurchase:
		tier := c.Tier.Uint64()
		total := new(big.Int).Mul(p.Primary, c.Qty)
		s.Title = fmt.Sprintf("Buy %s × %s by card", c.Qty, tierName(ev, tier))
		add("Tier", tierName(ev, tier))
		add("Quantity", c.Qty.String())
		add("Price each", m.Format(p.Primary))
		add("Total", m.Format(total))
		add("Card payment id", protocol.Hex32(c.PaymentID))
		addPayees(s, ev, m, total)
	case SigRequestResale:
		tier := new(big.Int).Rsh(c.TokenID, 32).Uint64()
		s.Title = "Buy resale ticket #" + c.TokenID.String() + " by card"
		add("Ticket", fmt.Sprintf("#%s (%s)", c.TokenID, tierName(ev, tier)))
		add("Card payment id", protocol.Hex32(c.PaymentID))
	case SigBuyListed:
		tier := new(big.Int).Rsh(c.TokenID, 32).Uint64()
		s.Title = "Buy resale ticket #" + c.TokenID.String()
		add("Ticket", fmt.Sprintf("#%s (%s)", c.TokenID, tierName(ev, tier)))
		add("Price", m.Format(c.Price))
		add("Allowed range", m.Format(p.Floor)+" – "+m.Format(p.Cap)+" (face value "+m.Format(p.Face)+")")
		seller := ResaleSellerAmount(ev, p.Face, c.Price)
		add("Seller receives", m.Format(seller))
		addPayees(s, ev, m, new(big.Int).Sub(c.Price, seller))
	}
}

// CardBuy prepares the gasless requestPurchase of a card payment intent the relay made
// (sp_createPayment). The intent must be for this chain, event, buyer, tier and quantity,
// its payment id the keccak256 of its processor id, and its amount the event's primary
// price now: the wallet does not take the relay's word for what the fan pays.
func CardBuy(account ethcrypto.Address, env Env, ev *protocol.EventInfo, in *protocol.PaymentIntent) (*Action, error) {
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
	pid, err := checkIntent(account, env, evAddr, in)
	if err != nil {
		return nil, err
	}
	tier, qty := in.Tier, in.Quantity
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
	total := new(big.Int).Mul(p.Primary, new(big.Int).SetUint64(qty))
	cents, err := protocol.CardMinorUnits(total)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	if in.Price != total.String() || in.Amount != cents {
		return nil, fmt.Errorf("%w: the payment asks %s (%s units), the event's price is %s",
			ErrBadArgs, CardAmount(in.Amount, in.Currency), in.Price, CardAmount(cents, in.Currency))
	}
	data, err := (&Call{Sig: SigRequestPurchase, PaymentID: pid, Tier: new(big.Int).SetUint64(tier), Qty: new(big.Int).SetUint64(qty)}).Encode()
	if err != nil {
		return nil, err
	}
	return newAction(account, &env, env.request(account, evAddr, gasRequestPurchase, data), ev, cardMoney, &p,
		signing.Line{Label: "Card charge", Value: CardAmount(in.Amount, in.Currency) + " on the processor's checkout (" + in.ID + ")"},
		signing.Line{Label: "Paid by", Value: "card; tickets are minted when the oracle network confirms the payment"})
}

// checkIntent checks that a payment intent is for this chain, event and buyer, that its
// payment id is keccak256 of its processor id, and that it is in the card currency.
func checkIntent(account ethcrypto.Address, env Env, evAddr ethcrypto.Address, in *protocol.PaymentIntent) ([32]byte, error) {
	if in == nil {
		return [32]byte{}, fmt.Errorf("%w: no payment intent", ErrBadArgs)
	}
	inEvent, err1 := ethcrypto.ParseAddress(in.Event)
	inBuyer, err2 := ethcrypto.ParseAddress(in.Buyer)
	pid, err3 := protocol.ParseHash32("paymentId", in.PaymentID)
	switch {
	case err1 != nil || err2 != nil || err3 != nil:
		return pid, fmt.Errorf("%w: malformed payment intent", ErrBadArgs)
	case in.ChainID != env.ChainID || inEvent != evAddr || inBuyer != account:
		return pid, fmt.Errorf("%w: the payment intent is for another chain, event or buyer", ErrBadArgs)
	case pid != protocol.PaymentIDOf(in.ID):
		return pid, fmt.Errorf("%w: payment id %s is not keccak256(%q)", ErrBadArgs, in.PaymentID, in.ID)
	case !strings.EqualFold(in.Currency, protocol.CardCurrency):
		return pid, fmt.Errorf("%w: card currency %q", ErrBadArgs, in.Currency)
	}
	return pid, nil
}

// resale is a listing the account may buy now.
type resale struct {
	event         ethcrypto.Address
	id, price     *big.Int
	seller        ethcrypto.Address
	prices        Prices
	sellerAmount  *big.Int
	partiesAmount *big.Int
}

// checkResale checks a listing from the relay: of this event, listed and not checked in,
// not the account's own, its price in the event's allowed range now.
func checkResale(account ethcrypto.Address, env Env, ev *protocol.EventInfo, m Money, listing protocol.TicketInfo) (*resale, error) {
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
	id, ok := new(big.Int).SetString(listing.TokenID, 10)
	if !ok || checkUint("token id", id, 256) != nil {
		return nil, fmt.Errorf("%w: token id %q", ErrBadArgs, listing.TokenID)
	}
	if a, err := ethcrypto.ParseAddress(listing.Event); err != nil || a != evAddr {
		return nil, fmt.Errorf("%w: ticket #%s is not of %s", ErrBadArgs, id, ev.Name)
	}
	seller, err := ethcrypto.ParseAddress(listing.Owner)
	if err != nil {
		return nil, fmt.Errorf("%w: seller %q", ErrBadArgs, listing.Owner)
	}
	if seller == account {
		return nil, fmt.Errorf("%w: ticket #%s is your own listing", ErrNotAllowed, id)
	}
	if listing.ListingPrice == "" || listing.CheckedIn {
		return nil, fmt.Errorf("%w: ticket #%s is not for sale", ErrNotAllowed, id)
	}
	price, err := parseAmount("listing price", listing.ListingPrice)
	if err != nil {
		return nil, err
	}
	p, err := TierPrices(ev, new(big.Int).Rsh(id, 32).Uint64(), env.Now)
	if err != nil {
		return nil, err
	}
	if price.Sign() == 0 || price.Cmp(p.Floor) < 0 || price.Cmp(p.Cap) > 0 {
		return nil, fmt.Errorf("%w: listed at %s, outside %s – %s", ErrPriceOutOfRange, m.Format(price), m.Format(p.Floor), m.Format(p.Cap))
	}
	sellerAmount := ResaleSellerAmount(ev, p.Face, price)
	return &resale{event: evAddr, id: id, price: price, seller: seller, prices: p,
		sellerAmount: sellerAmount, partiesAmount: new(big.Int).Sub(price, sellerAmount)}, nil
}

// BuyListed prepares the gasless purchase of a listed resale ticket at its listing price,
// paid in the event's ERC-20 from the allowance the buyer gave the event contract. The
// price must lie in the event's allowed range now, and the buyer must not be the seller.
func BuyListed(account ethcrypto.Address, env Env, ev *protocol.EventInfo, token *protocol.PermitInfo, listing protocol.TicketInfo) (*Action, error) {
	if cur, err := ethcrypto.ParseAddress(ev.Currency); err != nil || cur.IsZero() {
		return nil, fmt.Errorf("%w: %s is paid in the native coin; a gasless purchase needs its ERC-20", ErrNotAllowed, ev.Name)
	}
	m := MoneyOf(ev, token)
	r, err := checkResale(account, env, ev, m, listing)
	if err != nil {
		return nil, err
	}
	data, _ := (&Call{Sig: SigBuyListed, TokenID: r.id, Price: r.price}).Encode()
	return newAction(account, &env, env.request(account, r.event, gasBuyListed, data), ev, m, &r.prices,
		signing.Line{Label: "Seller", Value: r.seller.Hex()},
		signing.Line{Label: "Pays with", Value: "your " + m.Symbol + " allowance to the event contract (at most " + m.Format(r.price) + ")"})
}

// CardBuyListed prepares the gasless requestResale of a listed ticket with a card payment
// intent the relay made for it (sp_createResalePayment): the intent must be bound to this
// chain, event, buyer and token (its tier, quantity 0) at exactly the listing price.
func CardBuyListed(account ethcrypto.Address, env Env, ev *protocol.EventInfo, listing protocol.TicketInfo, in *protocol.PaymentIntent) (*Action, error) {
	r, err := checkResale(account, env, ev, cardMoney, listing)
	if err != nil {
		return nil, err
	}
	pid, err := checkIntent(account, env, r.event, in)
	if err != nil {
		return nil, err
	}
	cents, err := protocol.CardMinorUnits(r.price)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	if in.Quantity != 0 || new(big.Int).SetUint64(in.Tier).Cmp(r.id) != 0 || in.Price != r.price.String() || in.Amount != cents {
		return nil, fmt.Errorf("%w: the payment (%s for token %d × %d) is not ticket #%s at its listing price %s",
			ErrBadArgs, CardAmount(in.Amount, in.Currency), in.Tier, in.Quantity, r.id, CardAmount(cents, protocol.CardCurrency))
	}
	data, err := (&Call{Sig: SigRequestResale, PaymentID: pid, TokenID: r.id}).Encode()
	if err != nil {
		return nil, err
	}
	// requestResale's calldata names the token; the price is the listing's, which the
	// contract records at request time and checks again at fulfilment.
	var split signing.Summary
	addPayees(&split, ev, cardMoney, r.partiesAmount)
	lines := append([]signing.Line{
		{Label: "Price", Value: cardMoney.Format(r.price)},
		{Label: "Allowed range", Value: cardMoney.Format(r.prices.Floor) + " – " + cardMoney.Format(r.prices.Cap) + " (face value " + cardMoney.Format(r.prices.Face) + ")"},
		{Label: "Seller", Value: r.seller.Hex()},
		{Label: "Seller receives", Value: cardMoney.Format(r.sellerAmount)},
	}, split.Lines...)
	lines = append(lines,
		signing.Line{Label: "Card charge", Value: CardAmount(in.Amount, in.Currency) + " on the processor's checkout (" + in.ID + ")"},
		signing.Line{Label: "Paid by", Value: "card; the ticket moves to you when the oracle network confirms the payment"})
	return newAction(account, &env, env.request(account, r.event, gasRequestResale, data), ev, cardMoney, &r.prices, lines...)
}
