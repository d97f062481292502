package contracts_test

import (
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	bt "github.com/stagepass/stagepass/contracts/bindings/testing"
	"github.com/stagepass/stagepass/contracts/devchain"
)

var (
	ticketABI  = mustABI(events.EventTicketMetaData.ABI)
	factoryABI = mustABI(events.EventFactoryMetaData.ABI)
	ticket     = devchain.Ticket
	registryB  = bt.NewTestCategoryRegistry()
	hostileB   = bt.NewHostileToken()
	receiverB  = bt.NewRejectingReceiver()
	zero       = new(big.Int)
	maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
)

func mustABI(s string) *abi.ABI {
	a, err := abi.JSON(strings.NewReader(s))
	if err != nil {
		panic(err)
	}
	return &a
}

func u(n int64) *big.Int { return big.NewInt(n) }

// env is one chain with one event and named accounts.
type env struct {
	t                           *testing.T
	c                           *devchain.Chain
	issuer, artist, venue, gate *devchain.Account
	fans                        []*devchain.Account
	ev                          common.Address
	cfg                         events.EventConfig
}

// newEnv creates a chain and an event from DefaultConfig changed by `edit`, with a gate,
// and funds the fans with TestUSD approved to the event.
func newEnv(t *testing.T, edit func(e *env, cfg *events.EventConfig)) *env {
	t.Helper()
	c, err := devchain.New(devchain.Options{Accounts: 12, Seed: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	e := &env{t: t, c: c, issuer: c.Accounts[0], artist: c.Accounts[1], venue: c.Accounts[2], gate: c.Accounts[3], fans: c.Accounts[4:]}
	cfg := c.DefaultConfig(e.issuer.Address, e.artist.Address, e.venue.Address)
	cfg.Gates = []common.Address{e.gate.Address}
	if edit != nil {
		edit(e, &cfg)
	}
	e.cfg = cfg
	if e.ev, err = c.CreateEvent(e.issuer, cfg); err != nil {
		t.Fatalf("create event: %v", err)
	}
	if cfg.Currency == c.USD {
		c.FundUSD(e.ev, devchain.USDC(10_000), e.fans...)
	}
	return e
}

func (e *env) tx(from *devchain.Account, data []byte, value *big.Int) error {
	_, err := e.c.Transact(from, e.ev, data, value)
	return err
}

func (e *env) ok(from *devchain.Account, data []byte, value *big.Int) {
	e.t.Helper()
	if err := e.tx(from, data, value); err != nil {
		e.t.Fatalf("unexpected revert %s: %v", devchain.ErrorName(ticketABI, err), err)
	}
}

// buy buys qty tickets of tier 0 at the current price and returns the first id.
func (e *env) buy(f *devchain.Account, qty int64) *big.Int {
	e.t.Helper()
	var value *big.Int
	if e.cfg.Currency == (common.Address{}) {
		p, _, _ := e.prices(0)
		value = new(big.Int).Mul(p, u(qty))
	}
	r, err := e.c.Transact(f, e.ev, ticket.PackBuy(zero, u(qty), u(1e18)), value)
	if err != nil {
		e.t.Fatalf("buy: %s %v", devchain.ErrorName(ticketABI, err), err)
	}
	for _, l := range r.Logs {
		if p, err := ticket.UnpackPurchasedEvent(l); err == nil {
			return p.FirstTokenId
		}
	}
	e.t.Fatal("buy: no Purchased event")
	return nil
}

func (e *env) prices(tier int64) (primary, floor, cap *big.Int) {
	out, err := e.c.Call(e.ev, ticket.PackPrices(u(tier)))
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := ticket.UnpackPrices(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return p.Primary, p.Floor, p.Cap
}

func (e *env) ticketOf(id *big.Int) events.EventTicketTicket {
	out, err := e.c.Call(e.ev, ticket.PackTicket(id))
	if err != nil {
		e.t.Fatal(err)
	}
	tk, err := ticket.UnpackTicket(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return tk
}

func (e *env) view(data []byte) []byte {
	out, err := e.c.Call(e.ev, data)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func wantErr(t *testing.T, err error, name string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want revert %s", name)
	}
	if got := devchain.ErrorName(ticketABI, err); got != name {
		t.Fatalf("reverted with %q (%v), want %s", got, err, name)
	}
}

// openDoors moves time to when doors open (DefaultConfig: start in 7 days, doors 2 h before).
func (e *env) openDoors() { e.c.Warp(7*24*time.Hour - 2*time.Hour) }

func TestCreateEventValidation(t *testing.T) {
	base := newEnv(t, nil)
	cases := []struct {
		name   string
		edit   func(cfg *events.EventConfig)
		reason string
	}{
		{"no name", func(c *events.EventConfig) { c.Name = "" }, "name"},
		{"doors after start", func(c *events.EventConfig) { c.DoorsOpenAt = new(big.Int).Add(c.StartsAt, u(1)) }, "doors open after start"},
		{"resale closes after start", func(c *events.EventConfig) { c.Rules.ResaleClosesAt = new(big.Int).Add(c.StartsAt, u(1)) }, "resaleClosesAt"},
		{"no buyer limit", func(c *events.EventConfig) { c.Rules.MaxPerBuyer = 0 }, "maxPerBuyer"},
		{"seller share over 100%", func(c *events.EventConfig) { c.Rules.SellerMarkupShareBps = 10001 }, "sellerMarkupShareBps"},
		{"no tiers", func(c *events.EventConfig) { c.Tiers = nil }, "tiers"},
		{"empty tier", func(c *events.EventConfig) { c.Tiers[0].Supply = 0 }, "tier supply"},
		{"no splits", func(c *events.EventConfig) { c.Splits = nil }, "splits"},
		{"split bps short", func(c *events.EventConfig) { c.Splits[0].Bps = 6999 }, "split bps must sum to 10000"},
		{"split to zero", func(c *events.EventConfig) { c.Splits[1].Account = common.Address{} }, "split account"},
		{"discount over 100%", func(c *events.EventConfig) {
			c.Rules.Discounts = []events.Discount{{From: u(1), MaxDiscountBps: 10001}}
		}, "discount bps"},
		{"discounts out of order", func(c *events.EventConfig) {
			c.Rules.Discounts = []events.Discount{{From: u(10), MaxDiscountBps: 100}, {From: u(5), MaxDiscountBps: 200}}
		}, "discounts must ascend"},
		{"quota over 100%", func(c *events.EventConfig) { c.Rules.CategoryQuotaBps[2] = 10001 }, "category quota"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base.cfg
			cfg.Tiers = append([]events.TierConfig(nil), base.cfg.Tiers...)
			cfg.Splits = append([]events.Split(nil), base.cfg.Splits...)
			tc.edit(&cfg)
			_, err := base.c.CreateEvent(base.issuer, cfg)
			// The factory validates the configuration (EventTicket.initialize only stores it).
			if got := devchain.ErrorName(factoryABI, err); got != "InvalidConfig" {
				t.Fatalf("reverted with %q (%v), want InvalidConfig", got, err)
			}
			if args := devchain.ErrorArgs(factoryABI, err); len(args) != 1 || args[0] != tc.reason {
				t.Fatalf("reason %v, want %q", args, tc.reason)
			}
		})
	}
}

func TestPrimaryRules(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *events.EventConfig) {
		cfg.Tiers = append(cfg.Tiers, events.TierConfig{Name: "VIP", FaceValue: devchain.USDC(120), Supply: 3})
		cfg.Rules.MaxPerBuyer = 3
	})
	f := e.fans
	cases := []struct {
		name                string
		from                *devchain.Account
		tier, qty, maxPrice *big.Int
		value               *big.Int
		want                string
	}{
		{"unknown tier", f[0], u(2), u(1), devchain.USDC(200), nil, "UnknownTier"},
		{"zero quantity", f[0], u(0), u(0), devchain.USDC(200), nil, "ZeroQuantity"},
		{"price above buyer's max", f[0], u(1), u(1), devchain.USDC(119), nil, "PriceAboveMax"},
		{"more than the tier holds", f[0], u(1), u(4), devchain.USDC(200), nil, "SoldOut"},
		{"more than one buyer may have", f[0], u(0), u(4), devchain.USDC(200), nil, "BuyerLimitReached"},
		{"native coin to an ERC-20 event", f[0], u(0), u(1), devchain.USDC(200), u(1), "NativeNotAccepted"},
		{"buy within the rules", f[0], u(1), u(3), devchain.USDC(200), nil, ""},
		{"VIP now sold out", f[1], u(1), u(1), devchain.USDC(200), nil, "SoldOut"},
		{"limit counts earlier purchases", f[0], u(0), u(1), devchain.USDC(200), nil, "BuyerLimitReached"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := e.tx(tc.from, ticket.PackBuy(tc.tier, tc.qty, tc.maxPrice), tc.value)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected revert %s: %v", devchain.ErrorName(ticketABI, err), err)
				}
				return
			}
			wantErr(t, err, tc.want)
		})
	}
	// Sales stop when resale closes.
	e.c.Warp(7*24*time.Hour - 3*time.Hour)
	wantErr(t, e.tx(f[2], ticket.PackBuy(zero, u(1), devchain.USDC(50)), nil), "SalesClosed")
}

func TestPrimarySplitsSumToPrice(t *testing.T) {
	// Face values that do not divide evenly by the basis points, to exercise rounding.
	for _, face := range []int64{1, 7, 33_333_333, 49_999_999} {
		e := newEnv(t, func(e *env, cfg *events.EventConfig) {
			cfg.Tiers[0].FaceValue = u(face)
			cfg.Splits = []events.Split{
				{Account: e.issuer.Address, Bps: 3333},
				{Account: e.artist.Address, Bps: 3333},
				{Account: e.venue.Address, Bps: 3334},
			}
		})
		payees := []common.Address{e.issuer.Address, e.artist.Address, e.venue.Address}
		before := balances(e, payees)
		e.buy(e.fans[0], 3)
		after := balances(e, payees)
		total := new(big.Int)
		var parts []*big.Int
		for i := range payees {
			d := new(big.Int).Sub(after[i], before[i])
			parts = append(parts, d)
			total.Add(total, d)
		}
		price := u(3 * face)
		if total.Cmp(price) != 0 {
			t.Fatalf("face %d: parts %v sum to %s, want %s", face, parts, total, price)
		}
		// Each party but the last gets exactly floor(price*bps/10000); the last the rest.
		for i, bps := range []int64{3333, 3333} {
			want := new(big.Int).Div(new(big.Int).Mul(price, u(bps)), u(10000))
			if parts[i].Cmp(want) != 0 {
				t.Fatalf("face %d: party %d got %s, want %s", face, i, parts[i], want)
			}
		}
		// The view the site shows agrees with what was paid.
		shown, err := ticket.UnpackSplitAmounts(e.view(ticket.PackSplitAmounts(price)))
		if err != nil {
			t.Fatal(err)
		}
		for i := range parts {
			if shown[i].Cmp(parts[i]) != 0 {
				t.Fatalf("splitAmounts %v, paid %v", shown, parts)
			}
		}
	}
}

func balances(e *env, who []common.Address) []*big.Int {
	out := make([]*big.Int, len(who))
	for i, a := range who {
		if e.cfg.Currency == (common.Address{}) {
			out[i] = e.c.Balance(a)
		} else {
			out[i] = e.c.USDBalance(a)
		}
	}
	return out
}

func TestDiscountSchedule(t *testing.T) {
	var now uint64
	e := newEnv(t, func(e *env, cfg *events.EventConfig) {
		now = e.c.Now()
		cfg.Rules.Discounts = []events.Discount{
			{From: u(int64(now + 86400)), MaxDiscountBps: 1000},   // from day 1: up to 10% off
			{From: u(int64(now + 3*86400)), MaxDiscountBps: 3000}, // from day 3: up to 30% off
		}
	})
	face := devchain.USDC(50)
	cap := devchain.USDC(60) // 20% markup
	steps := []struct {
		warp  time.Duration
		floor *big.Int
	}{
		{0, face},
		{24 * time.Hour, devchain.USDC(45)},
		{2 * 24 * time.Hour, devchain.USDC(35)},
	}
	for _, s := range steps {
		e.c.Warp(s.warp)
		primary, floor, c := e.prices(0)
		if primary.Cmp(s.floor) != 0 || floor.Cmp(s.floor) != 0 || c.Cmp(cap) != 0 {
			t.Fatalf("after %v: primary %s floor %s cap %s; want %s %s %s", s.warp, primary, floor, c, s.floor, s.floor, cap)
		}
	}
	// The primary sale charges the discounted price.
	before := e.c.USDBalance(e.fans[0].Address)
	e.buy(e.fans[0], 1)
	if paid := new(big.Int).Sub(before, e.c.USDBalance(e.fans[0].Address)); paid.Cmp(devchain.USDC(35)) != 0 {
		t.Fatalf("paid %s, want 35 USD", paid)
	}
}

func TestResaleRulesAndSplit(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *events.EventConfig) { cfg.Rules.MaxPerBuyer = 1 })
	seller, buyer, other := e.fans[0], e.fans[1], e.fans[2]
	id := e.buy(seller, 1)
	e.buy(other, 1)

	wantErr(t, e.tx(buyer, ticket.PackList(id, devchain.USDC(55)), nil), "NotTicketOwner")
	wantErr(t, e.tx(seller, ticket.PackList(id, devchain.USDC(61)), nil), "PriceOutOfRange")
	wantErr(t, e.tx(seller, ticket.PackList(id, devchain.USDC(49)), nil), "PriceOutOfRange")
	wantErr(t, e.tx(buyer, ticket.PackBuyListed(id, devchain.USDC(60)), nil), "NotListed")
	wantErr(t, e.tx(seller, ticket.PackCancelListing(id), nil), "NotListed")

	price := devchain.USDC(60) // the cap: face 50 + 20%
	e.ok(seller, ticket.PackList(id, price), nil)
	if tk := e.ticketOf(id); tk.ListingPrice.Cmp(price) != 0 {
		t.Fatalf("listing price %s", tk.ListingPrice)
	}
	wantErr(t, e.tx(seller, ticket.PackBuyListed(id, price), nil), "SelfTransfer")
	wantErr(t, e.tx(buyer, ticket.PackBuyListed(id, devchain.USDC(59)), nil), "PriceAboveMax")
	wantErr(t, e.tx(other, ticket.PackBuyListed(id, price), nil), "BuyerLimitReached")

	payees := []common.Address{seller.Address, e.issuer.Address, e.artist.Address, e.venue.Address}
	before := balances(e, payees)
	buyerBefore := e.c.USDBalance(buyer.Address)
	e.ok(buyer, ticket.PackBuyListed(id, price), nil)
	after := balances(e, payees)

	// Markup 10 USD; the seller keeps 50 + 50% of 10 = 55; the other 5 split 70/20/10.
	want := []*big.Int{devchain.USDC(55), u(3_500_000), u(1_000_000), u(500_000)}
	for i := range payees {
		if d := new(big.Int).Sub(after[i], before[i]); d.Cmp(want[i]) != 0 {
			t.Fatalf("payee %d got %s, want %s", i, d, want[i])
		}
	}
	if spent := new(big.Int).Sub(buyerBefore, e.c.USDBalance(buyer.Address)); spent.Cmp(price) != 0 {
		t.Fatalf("buyer spent %s, want %s", spent, price)
	}
	tk := e.ticketOf(id)
	if tk.Owner != buyer.Address || tk.ListingPrice.Sign() != 0 || tk.Paid.Cmp(price) != 0 {
		t.Fatalf("after resale: %+v", tk)
	}
	// ERC-2981 reports the originator's due on the same sale.
	ri, err := ticket.UnpackRoyaltyInfo(e.view(ticket.PackRoyaltyInfo(id, price)))
	if err != nil {
		t.Fatal(err)
	}
	if ri.Receiver != e.issuer.Address || ri.RoyaltyAmount.Cmp(devchain.USDC(5)) != 0 {
		t.Fatalf("royaltyInfo %+v", ri)
	}
}

func TestResaleFloorMovesWithSchedule(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *events.EventConfig) {
		cfg.Rules.Discounts = []events.Discount{{From: u(int64(e.c.Now() + 86400)), MaxDiscountBps: 2000}}
	})
	id := e.buy(e.fans[0], 1)
	wantErr(t, e.tx(e.fans[0], ticket.PackList(id, devchain.USDC(40)), nil), "PriceOutOfRange")
	e.c.Warp(24 * time.Hour)
	e.ok(e.fans[0], ticket.PackList(id, devchain.USDC(40)), nil)
	e.ok(e.fans[1], ticket.PackBuyListed(id, devchain.USDC(40)), nil)
	// Below face value there is no markup: the seller gets the whole price.
}

func TestGiftsAndTheChokePoint(t *testing.T) {
	t.Run("gifts not allowed", func(t *testing.T) {
		e := newEnv(t, func(e *env, cfg *events.EventConfig) { cfg.Rules.GiftsAllowed = false })
		id := e.buy(e.fans[0], 1)
		wantErr(t, e.tx(e.fans[0], ticket.PackTransferFrom(e.fans[0].Address, e.fans[1].Address, id), nil), "GiftsNotAllowed")
		e.ok(e.fans[0], ticket.PackApprove(e.fans[1].Address, id), nil)
		wantErr(t, e.tx(e.fans[1], ticket.PackTransferFrom(e.fans[0].Address, e.fans[1].Address, id), nil), "GiftsNotAllowed")
		// The marketplace still works.
		e.ok(e.fans[0], ticket.PackList(id, devchain.USDC(50)), nil)
		e.ok(e.fans[1], ticket.PackBuyListed(id, devchain.USDC(50)), nil)
	})
	t.Run("gifts clear listings and count toward the limit", func(t *testing.T) {
		e := newEnv(t, func(e *env, cfg *events.EventConfig) { cfg.Rules.MaxPerBuyer = 1 })
		a, b := e.fans[0], e.fans[1]
		id := e.buy(a, 1)
		e.ok(a, ticket.PackList(id, devchain.USDC(55)), nil)
		e.ok(a, ticket.PackTransferFrom(a.Address, b.Address, id), nil)
		if tk := e.ticketOf(id); tk.Owner != b.Address || tk.ListingPrice.Sign() != 0 {
			t.Fatalf("after gift: %+v", tk)
		}
		wantErr(t, e.tx(e.fans[2], ticket.PackBuyListed(id, devchain.USDC(55)), nil), "NotListed")
		wantErr(t, e.tx(b, ticket.PackBuy(zero, u(1), devchain.USDC(50)), nil), "BuyerLimitReached")
		wantErr(t, e.tx(b, ticket.PackTransferFrom(b.Address, b.Address, id), nil), "SelfTransfer")
		c := e.fans[3]
		wantErr(t, e.tx(c, ticket.PackTransferFrom(b.Address, c.Address, id), nil), "NotOwnerNorApproved")
	})
	t.Run("nothing moves after resale closes", func(t *testing.T) {
		e := newEnv(t, nil)
		id := e.buy(e.fans[0], 1)
		e.ok(e.fans[0], ticket.PackList(id, devchain.USDC(55)), nil)
		e.c.Warp(7*24*time.Hour - 3*time.Hour)
		wantErr(t, e.tx(e.fans[0], ticket.PackTransferFrom(e.fans[0].Address, e.fans[1].Address, id), nil), "SalesClosed")
		wantErr(t, e.tx(e.fans[1], ticket.PackBuyListed(id, devchain.USDC(55)), nil), "SalesClosed")
		wantErr(t, e.tx(e.fans[0], ticket.PackList(id, devchain.USDC(55)), nil), "SalesClosed")
	})
}

func TestCategoryQuotas(t *testing.T) {
	var registry common.Address
	e := newEnv(t, func(e *env, cfg *events.EventConfig) {
		var err error
		if registry, err = e.c.Deploy(e.c.Deployer, &bt.TestCategoryRegistryMetaData, nil); err != nil {
			t.Fatal(err)
		}
		cfg.CategoryRegistry = registry
		cfg.Tiers[0].Supply = 100
		cfg.Rules.MaxPerBuyer = 10
		// bots none, scalpers 5% (5 tickets), unclassified 2% (2), fans the rest.
		cfg.Rules.CategoryQuotaBps = [5]uint16{200, 10000, 10000, 500, 0}
	})
	bot, scalper1, scalper2, fan, anon := e.fans[0], e.fans[1], e.fans[2], e.fans[3], e.fans[4]
	set := func(a *devchain.Account, cat uint8) {
		e.c.MustTransact(e.c.Deployer, registry, registryB.PackSetCategory(a.Address, cat), nil)
	}
	set(bot, devchain.Bot)
	set(scalper1, devchain.Scalper)
	set(scalper2, devchain.Scalper)
	set(fan, devchain.Fan)

	wantErr(t, e.tx(bot, ticket.PackBuy(zero, u(1), devchain.USDC(50)), nil), "CategoryQuotaReached")
	e.buy(scalper1, 3)
	wantErr(t, e.tx(scalper2, ticket.PackBuy(zero, u(3), devchain.USDC(50)), nil), "CategoryQuotaReached")
	e.buy(scalper2, 2)
	e.buy(anon, 2)
	wantErr(t, e.tx(anon, ticket.PackBuy(zero, u(1), devchain.USDC(50)), nil), "CategoryQuotaReached")
	fanID := e.buy(fan, 1)

	// A scalper cannot buy a fan's ticket on resale while scalpers are at quota; once a
	// scalper sells one to a fan, the quota has room again.
	e.ok(fan, ticket.PackList(fanID, devchain.USDC(55)), nil)
	wantErr(t, e.tx(scalper1, ticket.PackBuyListed(fanID, devchain.USDC(55)), nil), "CategoryQuotaReached")
	count := func(cat uint8) int64 {
		n, err := ticket.UnpackCategoryCount(e.view(ticket.PackCategoryCount(cat)))
		if err != nil {
			t.Fatal(err)
		}
		return n.Int64()
	}
	if got := count(devchain.Scalper); got != 5 {
		t.Fatalf("scalper count %d, want 5", got)
	}
	if got := count(devchain.Fan); got != 1 {
		t.Fatalf("fan count %d, want 1", got)
	}
	// scalper1 resells one of theirs to the fan: scalpers drop to 4, so scalper1 may now
	// buy the fan's listed ticket.
	scalperID := new(big.Int).Sub(fanID, u(5)) // scalper1 bought the first three ids
	e.ok(scalper1, ticket.PackList(scalperID, devchain.USDC(50)), nil)
	e.ok(fan, ticket.PackBuyListed(scalperID, devchain.USDC(50)), nil)
	if got := count(devchain.Scalper); got != 4 {
		t.Fatalf("scalper count after resale %d, want 4", got)
	}
	e.ok(scalper1, ticket.PackBuyListed(fanID, devchain.USDC(55)), nil)
	if got := count(devchain.Scalper); got != 5 || count(devchain.Fan) != 1 {
		t.Fatalf("counts after second resale: scalper %d fan %d", got, count(devchain.Fan))
	}
}

func TestCheckIn(t *testing.T) {
	e := newEnv(t, nil)
	a := e.fans[0]
	first := e.buy(a, 4)
	id := func(i int64) *big.Int { return new(big.Int).Add(first, u(i)) }

	wantErr(t, e.tx(e.gate, ticket.PackCheckIn(id(0)), nil), "DoorsNotOpen")
	e.openDoors()
	wantErr(t, e.tx(a, ticket.PackCheckIn(id(0)), nil), "NotGate")
	wantErr(t, e.tx(e.gate, ticket.PackCheckIn(u(999)), nil), "TokenDoesNotExist")
	e.ok(e.gate, ticket.PackCheckIn(id(0)), nil)
	wantErr(t, e.tx(e.gate, ticket.PackCheckIn(id(0)), nil), "TicketCheckedIn")

	// Batch: one already in, two new; the duplicate is skipped, not fatal.
	r, err := e.c.Transact(e.gate, e.ev, ticket.PackCheckInBatch([]*big.Int{id(0), id(1), id(2)}), nil)
	if err != nil {
		t.Fatal(err)
	}
	var dup int
	var admitted []*big.Int
	for _, l := range r.Logs {
		if _, err := ticket.UnpackDuplicateCheckInEvent(l); err == nil {
			dup++
		}
		if b, err := ticket.UnpackCheckedInBatchEvent(l); err == nil {
			admitted = b.TokenIds
		}
	}
	if dup != 1 || len(admitted) != 2 || admitted[0].Cmp(id(1)) != 0 || admitted[1].Cmp(id(2)) != 0 {
		t.Fatalf("batch: %d duplicates, admitted %v", dup, admitted)
	}
	// A batch with an unknown ticket is bad input: nothing is checked in.
	wantErr(t, e.tx(e.gate, ticket.PackCheckInBatch([]*big.Int{id(3), u(999)}), nil), "TokenDoesNotExist")
	if e.ticketOf(id(3)).CheckedIn {
		t.Fatal("ticket checked in by a reverted batch")
	}

	// A checked-in ticket is frozen forever.
	wantErr(t, e.tx(a, ticket.PackTransferFrom(a.Address, e.fans[1].Address, id(0)), nil), "TicketCheckedIn")
	wantErr(t, e.tx(a, ticket.PackList(id(0), devchain.USDC(50)), nil), "TicketCheckedIn")

	// Gates are managed by the issuer only.
	wantErr(t, e.tx(a, ticket.PackSetGate(a.Address, true), nil), "NotIssuer")
	e.ok(e.issuer, ticket.PackSetGate(e.gate.Address, false), nil)
	wantErr(t, e.tx(e.gate, ticket.PackCheckIn(id(3)), nil), "NotGate")
}

func TestCancelAndRefund(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.fans[0], e.fans[1]
	first := e.buy(a, 2) // 2 × 50
	e.ok(a, ticket.PackList(first, devchain.USDC(60)), nil)
	e.ok(b, ticket.PackBuyListed(first, devchain.USDC(60)), nil) // b paid 60 for it

	owed, err := ticket.UnpackRefundsOwed(e.view(ticket.PackRefundsOwed()))
	if err != nil {
		t.Fatal(err)
	}
	if owed.Cmp(devchain.USDC(110)) != 0 {
		t.Fatalf("refunds owed %s, want 110 USD", owed)
	}
	wantErr(t, e.tx(b, ticket.PackClaimRefund([]*big.Int{first}), nil), "EventNotCancelled")
	wantErr(t, e.tx(a, ticket.PackCancelEvent(owed), nil), "NotIssuer")

	e.c.FundUSD(e.ev, devchain.USDC(1000), e.issuer)
	wantErr(t, e.tx(e.issuer, ticket.PackCancelEvent(devchain.USDC(100)), nil), "RefundsUnderfunded")
	e.ok(e.issuer, ticket.PackCancelEvent(devchain.USDC(120)), nil) // 10 more than needed
	wantErr(t, e.tx(e.issuer, ticket.PackCancelEvent(zero), nil), "EventIsCancelled")
	wantErr(t, e.tx(e.fans[2], ticket.PackBuy(zero, u(1), devchain.USDC(50)), nil), "EventIsCancelled")

	second := new(big.Int).Add(first, u(1))
	wantErr(t, e.tx(b, ticket.PackClaimRefund([]*big.Int{second}), nil), "NotTicketOwner")
	bBefore, aBefore := e.c.USDBalance(b.Address), e.c.USDBalance(a.Address)
	e.ok(b, ticket.PackClaimRefund([]*big.Int{first}), nil)
	e.ok(a, ticket.PackClaimRefund([]*big.Int{second}), nil)
	if d := new(big.Int).Sub(e.c.USDBalance(b.Address), bBefore); d.Cmp(devchain.USDC(60)) != 0 {
		t.Fatalf("b refunded %s, want 60", d)
	}
	if d := new(big.Int).Sub(e.c.USDBalance(a.Address), aBefore); d.Cmp(devchain.USDC(50)) != 0 {
		t.Fatalf("a refunded %s, want 50", d)
	}
	wantErr(t, e.tx(a, ticket.PackClaimRefund([]*big.Int{second}), nil), "NotTicketOwner")
	// The surplus goes back to the issuer, and the contract ends holding nothing.
	e.ok(e.issuer, ticket.PackWithdrawRefundSurplus(), nil)
	if bal := e.c.USDBalance(e.ev); bal.Sign() != 0 {
		t.Fatalf("event still holds %s", bal)
	}
}

func TestNativeCurrencyAndPullPayments(t *testing.T) {
	var receiver common.Address
	e := newEnv(t, func(e *env, cfg *events.EventConfig) {
		var err error
		if receiver, err = e.c.Deploy(e.c.Deployer, &bt.RejectingReceiverMetaData, nil); err != nil {
			t.Fatal(err)
		}
		cfg.Currency = common.Address{}
		cfg.Tiers[0].FaceValue = u(1e15)
		cfg.Splits[2].Account = receiver // the venue's payee refuses native coin
	})
	a := e.fans[0]
	wantErr(t, e.tx(a, ticket.PackBuy(zero, u(1), u(1e15)), u(1e15-1)), "IncorrectPayment")
	before := e.c.Balance(e.artist.Address)
	e.buy(a, 2)
	if d := new(big.Int).Sub(e.c.Balance(e.artist.Address), before); d.Cmp(u(4e14)) != 0 {
		t.Fatalf("artist got %s, want 4e14", d)
	}
	credit, err := ticket.UnpackCredits(e.view(ticket.PackCredits(receiver)))
	if err != nil {
		t.Fatal(err)
	}
	if credit.Cmp(u(2e14)) != 0 || e.c.Balance(e.ev).Cmp(credit) != 0 {
		t.Fatalf("credit %s, contract holds %s", credit, e.c.Balance(e.ev))
	}
	// The receiver withdraws to an address that accepts native coin.
	sink := e.fans[5].Address
	sinkBefore := e.c.Balance(sink)
	e.c.MustTransact(e.c.Deployer, receiver, receiverB.PackExec(e.ev, ticket.PackWithdraw(sink)), nil)
	if d := new(big.Int).Sub(e.c.Balance(sink), sinkBefore); d.Cmp(credit) != 0 {
		t.Fatalf("withdrew %s, want %s", d, credit)
	}
	wantErr(t, e.tx(a, ticket.PackWithdraw(a.Address), nil), "NothingToWithdraw")
}

func TestHostileCurrency(t *testing.T) {
	var token common.Address
	e := newEnv(t, func(e *env, cfg *events.EventConfig) {
		var err error
		if token, err = e.c.Deploy(e.c.Deployer, &bt.HostileTokenMetaData, nil); err != nil {
			t.Fatal(err)
		}
		cfg.Currency = token
	})
	for _, f := range append([]*devchain.Account{e.issuer}, e.fans...) {
		e.c.MustTransact(f, token, hostileB.PackMint(f.Address, devchain.USDC(10_000)), nil)
		e.c.MustTransact(f, token, hostileB.PackApprove(e.ev, maxUint256), nil)
	}
	tokenBal := func(a common.Address) *big.Int {
		b, err := hostileB.UnpackBalanceOf(mustCall(e.c, token, hostileB.PackBalanceOf(a)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("reentrant token cannot buy twice", func(t *testing.T) {
		// During every transfer the token calls back into the event to buy again.
		e.c.MustTransact(e.c.Deployer, token, hostileB.PackSetHook(e.ev, ticket.PackBuy(zero, u(1), devchain.USDC(50))), nil)
		id := e.buy(e.fans[0], 1)
		ok, err := hostileB.UnpackHookSucceeded(mustCall(e.c, token, hostileB.PackHookSucceeded()))
		if err != nil || ok {
			t.Fatalf("reentrant buy succeeded=%v err=%v", ok, err)
		}
		if tk := e.ticketOf(id); tk.Owner != e.fans[0].Address {
			t.Fatalf("owner %s", tk.Owner)
		}
		if n, _ := ticket.UnpackBalanceOf(e.view(ticket.PackBalanceOf(token))); n.Sign() != 0 {
			t.Fatalf("token contract got %s tickets", n)
		}
		e.c.MustTransact(e.c.Deployer, token, hostileB.PackSetHook(common.Address{}, nil), nil)
	})
	t.Run("fee on transfer: splits still computed on the price, nothing owed lost", func(t *testing.T) {
		e.c.MustTransact(e.c.Deployer, token, hostileB.PackSetFee(u(100)), nil) // 1%
		before := tokenBal(e.fans[1].Address)
		e.buy(e.fans[1], 1)
		if spent := new(big.Int).Sub(before, tokenBal(e.fans[1].Address)); spent.Cmp(devchain.USDC(50)) != 0 {
			t.Fatalf("buyer spent %s", spent)
		}
		if bal := tokenBal(e.ev); bal.Sign() != 0 {
			t.Fatalf("event holds %s though it owes nothing", bal)
		}
		// Cancelling counts what actually arrives: asking for exactly what is owed falls
		// short by the fee, so it reverts; asking for more covers it.
		owed, _ := ticket.UnpackRefundsOwed(e.view(ticket.PackRefundsOwed()))
		wantErr(t, e.tx(e.issuer, ticket.PackCancelEvent(owed), nil), "RefundsUnderfunded")
		e.ok(e.issuer, ticket.PackCancelEvent(new(big.Int).Add(owed, devchain.USDC(2))), nil)
		pool, _ := ticket.UnpackRefundPool(e.view(ticket.PackRefundPool()))
		if tokenBal(e.ev).Cmp(pool) != 0 || pool.Cmp(owed) < 0 {
			t.Fatalf("pool %s, balance %s, owed %s", pool, tokenBal(e.ev), owed)
		}
	})
	t.Run("a payee the token refuses is credited, the sale goes through", func(t *testing.T) {
		e2 := newEnv(t, func(x *env, cfg *events.EventConfig) {
			var err error
			if token, err = x.c.Deploy(x.c.Deployer, &bt.HostileTokenMetaData, nil); err != nil {
				t.Fatal(err)
			}
			cfg.Currency = token
		})
		f := e2.fans[0]
		e2.c.MustTransact(f, token, hostileB.PackMint(f.Address, devchain.USDC(1000)), nil)
		e2.c.MustTransact(f, token, hostileB.PackApprove(e2.ev, maxUint256), nil)
		e2.c.MustTransact(e2.c.Deployer, token, hostileB.PackSetBlocked(e2.venue.Address, true), nil)
		e2.buy(f, 1)
		credit, _ := ticket.UnpackCredits(e2.view(ticket.PackCredits(e2.venue.Address)))
		held, _ := hostileB.UnpackBalanceOf(mustCall(e2.c, token, hostileB.PackBalanceOf(e2.ev)))
		if credit.Cmp(devchain.USDC(5)) != 0 || held.Cmp(credit) != 0 {
			t.Fatalf("venue credit %s, event holds %s", credit, held)
		}
	})
}

func mustCall(c *devchain.Chain, to common.Address, data []byte) []byte {
	out, err := c.Call(to, data)
	if err != nil {
		panic(err)
	}
	return out
}

func TestBuyWithPermit(t *testing.T) {
	e := newEnv(t, nil)
	f := e.fans[0]
	e.c.MustTransact(f, e.c.USD, devchain.USD.PackApprove(e.ev, zero), nil)
	wantErrAny(t, e.tx(f, ticket.PackBuy(zero, u(1), devchain.USDC(50)), nil))
	deadline := u(int64(e.c.Now() + 600))
	v, r, s := e.c.SignPermit(f, e.ev, devchain.USDC(50), deadline)
	e.ok(f, ticket.PackBuyWithPermit(zero, u(1), devchain.USDC(50), deadline, v, r, s), nil)
	// The same permit again: already used, and the allowance is spent — the buy fails.
	wantErrAny(t, e.tx(f, ticket.PackBuyWithPermit(zero, u(1), devchain.USDC(50), deadline, v, r, s), nil))
}

func wantErrAny(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("succeeded, want a revert")
	}
}

func TestMetadataAndInterfaces(t *testing.T) {
	e := newEnv(t, nil)
	id := e.buy(e.fans[0], 1)
	name, _ := ticket.UnpackName(e.view(ticket.PackName()))
	uri, _ := ticket.UnpackTokenURI(e.view(ticket.PackTokenURI(id)))
	if name != e.cfg.Name || uri != e.cfg.BaseURI+id.String() {
		t.Fatalf("name %q uri %q", name, uri)
	}
	for _, iface := range []string{"80ac58cd", "5b5e139f", "2a55205a", "01ffc9a7"} {
		var id4 [4]byte
		copy(id4[:], common.FromHex(iface))
		ok, err := ticket.UnpackSupportsInterface(e.view(ticket.PackSupportsInterface(id4)))
		if err != nil || !ok {
			t.Fatalf("supportsInterface(%s) = %v %v", iface, ok, err)
		}
	}
	if _, err := e.c.Call(e.ev, ticket.PackTokenURI(u(999))); devchain.ErrorName(ticketABI, err) != "TokenDoesNotExist" {
		t.Fatalf("tokenURI of a missing ticket: %v", err)
	}
}
