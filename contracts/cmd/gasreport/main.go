// Command gasreport measures the gas of every Stagepass ticket operation on go-ethereum's
// simulated chain under Ethereum mainnet's current rules (Osaka), and prints one line per
// operation, `name<TAB>gas`, after a first line naming the fork.
//
// Each figure is the steady state: the payer has already approved the event, every payee
// already holds a balance of the currency, and the buyer is buying their first ticket of
// the event. Events have 3 revenue splits (originator, artist, venue), resales pay 4 parties
// (the seller too), the price is in TestUSD, and buyers are classified by a category registry,
// so the quota rule runs. Card purchases: the OracleHub has n = 3 oracles and threshold
// k = 2, so every report carries 2 signatures; each purchase is one ticket for a new buyer,
// and the report's payment ids are new.
//
//	go run ./contracts/cmd/gasreport            # the report
//	go run ./contracts/cmd/gasreport -check     # also fail when a budget is exceeded
package main

import (
	"flag"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/bindings/testing"
	"github.com/stagepass/stagepass/contracts/devchain"
)

// budgets are the gas ceilings the issue tracker set for each operation.
var budgets = map[string]uint64{
	"create_event":               400_000,
	"buy_primary_1":              160_000,
	"buy_resale":                 190_000,
	"checkin_1":                  60_000,
	"checkin_batch50_per_ticket": 8_000,
	"fulfil_1":                   150_000,
	"fulfil_batch20_per_ticket":  60_000,
}

type line struct {
	name string
	gas  uint64
}

func main() {
	check := flag.Bool("check", false, "exit non-zero when an operation exceeds its budget")
	flag.Parse()
	lines, fork, err := measure()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gasreport:", err)
		os.Exit(1)
	}
	fmt.Printf("# fork\t%s\n", fork)
	failed := false
	for _, l := range lines {
		fmt.Printf("%s\t%d", l.name, l.gas)
		if b, ok := budgets[l.name]; ok {
			fmt.Printf("\t(budget %d)", b)
			if l.gas > b {
				fmt.Printf("\tOVER BUDGET")
				failed = true
			}
		}
		fmt.Println()
	}
	if *check && failed {
		os.Exit(1)
	}
}

func measure() ([]line, string, error) {
	c, err := devchain.New(devchain.Options{Accounts: 110, Seed: "gasreport", Oracles: 3, OracleThreshold: 2})
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	issuer, artist, venue, gate := c.Accounts[0], c.Accounts[1], c.Accounts[2], c.Accounts[3]
	fans := c.Accounts[4:]
	var lines []line
	record := func(name string, gas uint64) { lines = append(lines, line{name, gas}) }

	registry, err := c.Deploy(c.Deployer, &testing.TestCategoryRegistryMetaData, nil)
	if err != nil {
		return nil, "", err
	}
	reg := testing.NewTestCategoryRegistry()
	for _, f := range fans {
		c.MustTransact(c.Deployer, registry, reg.PackSetCategory(f.Address, devchain.Fan), nil)
	}
	cfg := c.DefaultConfig(issuer.Address, artist.Address, venue.Address)
	cfg.CategoryRegistry = registry
	cfg.Rules.MaxPerBuyer = 10
	cfg.Rules.CategoryQuotaBps = [5]uint16{2000, 8000, 10000, 500, 0}
	cfg.Gates = []common.Address{gate.Address}

	// create_event: the factory already holds events.
	if _, err := c.CreateEvent(issuer, cfg); err != nil {
		return nil, "", err
	}
	r, err := c.Transact(issuer, c.Factory, devchain.Factory.PackCreateEvent(cfg), nil)
	if err != nil {
		return nil, "", fmt.Errorf("create_event: %w", err)
	}
	record("create_event", r.GasUsed)
	ev, err := c.CreateEvent(issuer, cfg)
	if err != nil {
		return nil, "", err
	}

	// Everyone who will pay or be paid already holds TestUSD; payers have approved.
	c.FundUSD(ev, devchain.USDC(10_000), append([]*devchain.Account{issuer, artist, venue}, fans...)...)
	next := 0
	fan := func() *devchain.Account { f := fans[next]; next++; return f }
	buy := func(f *devchain.Account, qty int64) (uint64, error) {
		r, err := c.Transact(f, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(qty), devchain.USDC(50)), nil)
		if err != nil {
			return 0, err
		}
		return r.GasUsed, nil
	}
	if _, err := buy(fan(), 1); err != nil { // warms the tier's sold count and the ledger
		return nil, "", err
	}

	gas, err := buy(fan(), 1)
	if err != nil {
		return nil, "", fmt.Errorf("buy_primary_1: %w", err)
	}
	record("buy_primary_1", gas)

	// The permit path: a fan who never approved the event signs an EIP-2612 permit.
	pf := fan()
	c.MustTransact(pf, c.USD, devchain.USD.PackApprove(ev, new(big.Int)), nil)
	deadline := big.NewInt(int64(c.Now() + 3600))
	v, rr, ss := c.SignPermit(pf, ev, devchain.USDC(50), deadline)
	r, err = c.Transact(pf, ev, devchain.Ticket.PackBuyWithPermit(big.NewInt(0), big.NewInt(1), devchain.USDC(50), deadline, v, rr, ss), nil)
	if err != nil {
		return nil, "", fmt.Errorf("buy_primary_1_permit: %w", err)
	}
	record("buy_primary_1_permit", r.GasUsed)

	if gas, err = buy(fan(), 5); err != nil {
		return nil, "", fmt.Errorf("buy_primary_5: %w", err)
	}
	record("buy_primary_5", gas)

	// list and buy_resale: a seller lists the ticket they bought, a new fan buys it.
	seller := fan()
	first, err := firstToken(c, seller, ev)
	if err != nil {
		return nil, "", err
	}
	r, err = c.Transact(seller, ev, devchain.Ticket.PackList(first, devchain.USDC(55)), nil)
	if err != nil {
		return nil, "", fmt.Errorf("list: %w", err)
	}
	record("list", r.GasUsed)
	r, err = c.Transact(fan(), ev, devchain.Ticket.PackBuyListed(first, devchain.USDC(55)), nil)
	if err != nil {
		return nil, "", fmt.Errorf("buy_resale: %w", err)
	}
	record("buy_resale", r.GasUsed)

	// gift: a holder gives a ticket to an account that holds none.
	giver := fan()
	gid, err := firstToken(c, giver, ev)
	if err != nil {
		return nil, "", err
	}
	r, err = c.Transact(giver, ev, devchain.Ticket.PackTransferFrom(giver.Address, fans[len(fans)-1].Address, gid), nil)
	if err != nil {
		return nil, "", fmt.Errorf("gift: %w", err)
	}
	record("gift", r.GasUsed)

	// Card purchases (claim 14): a request, then k = 2 of 3 oracles' report that mints it; a
	// warm-up report first, so the figures are the steady state of an event already selling.
	pid := 0
	request := func(f *devchain.Account) (events.CardPurchase, uint64, error) {
		pid++
		return c.RequestPurchase(f, ev, devchain.PaymentID(fmt.Sprintf("pi_gasreport_%d", pid)), 0, 1)
	}
	fulfil := func(ps ...events.CardPurchase) (uint64, error) {
		r, err := c.Transact(c.Deployer, c.Hub, c.FulfilCall(ev, ps, c.Quorum()...), nil)
		if err != nil {
			return 0, err
		}
		for _, l := range r.Logs {
			if f, err := devchain.Ticket.UnpackCardPurchaseFailedEvent(l); err == nil {
				return 0, fmt.Errorf("purchase %x failed: %x", f.RequestId, f.Reason)
			}
		}
		return r.GasUsed, nil
	}
	warm, _, err := request(fan())
	if err != nil {
		return nil, "", fmt.Errorf("request_purchase: %w", err)
	}
	if _, err := fulfil(warm); err != nil {
		return nil, "", fmt.Errorf("fulfil warm-up: %w", err)
	}
	one, gas, err := request(fan())
	if err != nil {
		return nil, "", fmt.Errorf("request_purchase: %w", err)
	}
	record("request_purchase", gas)
	// The same request signed by the fan and sent by the relay through the forwarder (the
	// relay pays this; the fan holds no native coin).
	pid++
	ff := fan()
	call := devchain.Ticket.PackRequestPurchase(devchain.PaymentID(fmt.Sprintf("pi_gasreport_%d", pid)), big.NewInt(0), big.NewInt(1))
	req, sig := c.SignForward(ff, ev, call, 300_000, c.Now()+600)
	r, err = c.Transact(c.Deployer, c.Forwarder, forwarder.NewStagepassForwarder().PackExecute(forwarder.ERC2771ForwarderForwardRequestData{
		From: ff.Address, To: ev, Value: req.Value, Gas: req.Gas,
		Deadline: new(big.Int).SetUint64(req.Deadline), Data: req.Data, Signature: sig,
	}), nil)
	if err != nil {
		return nil, "", fmt.Errorf("request_purchase_forwarded: %w", err)
	}
	record("request_purchase_forwarded", r.GasUsed)
	if gas, err = fulfil(one); err != nil {
		return nil, "", fmt.Errorf("fulfil_1: %w", err)
	}
	record("fulfil_1", gas)
	var batch []events.CardPurchase
	for range 20 {
		p, _, err := request(fan())
		if err != nil {
			return nil, "", fmt.Errorf("request_purchase: %w", err)
		}
		batch = append(batch, p)
	}
	if gas, err = fulfil(batch...); err != nil {
		return nil, "", fmt.Errorf("fulfil_batch20: %w", err)
	}
	record("fulfil_batch20_per_ticket", gas/20)

	// Card resale: a listed ticket bought by card through the same request → report path.
	rseller := fan()
	rid, err := firstToken(c, rseller, ev)
	if err != nil {
		return nil, "", err
	}
	c.MustTransact(rseller, ev, devchain.Ticket.PackList(rid, devchain.USDC(55)), nil)
	pid++
	r, err = c.Transact(fan(), ev, devchain.Ticket.PackRequestResale(devchain.PaymentID(fmt.Sprintf("pi_gasreport_%d", pid)), rid), nil)
	if err != nil {
		return nil, "", fmt.Errorf("request_resale: %w", err)
	}
	record("request_resale", r.GasUsed)
	var resale events.CardPurchase
	for _, l := range r.Logs {
		if e, err := devchain.Ticket.UnpackPurchaseRequestedEvent(l); err == nil {
			resale = events.CardPurchase{RequestId: e.RequestId, PaymentId: e.PaymentId, Buyer: e.Buyer, Tier: e.Tier, Quantity: e.Qty, Amount: e.Amount}
		}
	}
	if gas, err = fulfil(resale); err != nil {
		return nil, "", fmt.Errorf("fulfil_resale: %w", err)
	}
	record("fulfil_resale", gas)

	// Check-in: 50 more fans buy one ticket each; doors open; one single, then a batch of 50.
	var ids []*big.Int
	for range 51 {
		f := fan()
		id, err := firstToken(c, f, ev)
		if err != nil {
			return nil, "", err
		}
		ids = append(ids, id)
	}
	c.Warp(7*24*time.Hour - 2*time.Hour)
	r, err = c.Transact(gate, ev, devchain.Ticket.PackCheckIn(ids[0]), nil)
	if err != nil {
		return nil, "", fmt.Errorf("checkin_1: %w", err)
	}
	record("checkin_1", r.GasUsed)
	r, err = c.Transact(gate, ev, devchain.Ticket.PackCheckInBatch(ids[1:]), nil)
	if err != nil {
		return nil, "", fmt.Errorf("checkin_batch50: %w", err)
	}
	record("checkin_batch50_per_ticket", r.GasUsed/50)

	// Attestations (issue 8), k = 2: a buyer's category for one artist; an issuer's domain;
	// recording an event's artist; and a primary purchase on an event whose quotas and
	// presale read categories from the hub.
	attFan, now := fans[len(fans)-4], c.Now()
	exp := now + 30*86400
	sigs := devchain.SignDigest(devchain.CategoryDigest(c.OracleDomain(), attFan.Address, artist.Address, devchain.Fan, now, exp), c.Quorum()...)
	if r, err = c.Transact(c.Deployer, c.Hub, devchain.Hub.PackAttestCategory(attFan.Address, artist.Address, devchain.Fan, now, exp, sigs), nil); err != nil {
		return nil, "", fmt.Errorf("attest_category: %w", err)
	}
	record("attest_category", r.GasUsed)
	sigs = devchain.SignDigest(devchain.IssuerDigest(c.OracleDomain(), issuer.Address, "tickets.example.org", now, exp), c.Quorum()...)
	if r, err = c.Transact(c.Deployer, c.Hub, devchain.Hub.PackAttestIssuer(issuer.Address, "tickets.example.org", now, exp, sigs), nil); err != nil {
		return nil, "", fmt.Errorf("attest_issuer: %w", err)
	}
	record("attest_issuer", r.GasUsed)
	hubCfg := c.DefaultConfig(issuer.Address, artist.Address, venue.Address) // its times from now
	hubCfg.CategoryRegistry = c.Hub
	hubCfg.Rules.MaxPerBuyer, hubCfg.Rules.CategoryQuotaBps, hubCfg.Gates = cfg.Rules.MaxPerBuyer, cfg.Rules.CategoryQuotaBps, cfg.Gates
	hubEv, err := c.CreateEvent(issuer, hubCfg)
	if err != nil {
		return nil, "", err
	}
	if r, err = c.Transact(c.Deployer, c.Hub, devchain.Hub.PackRegisterEvent(hubEv), nil); err != nil {
		return nil, "", fmt.Errorf("register_event: %w", err)
	}
	record("register_event", r.GasUsed)
	c.FundUSD(hubEv, devchain.USDC(1000), attFan, fans[len(fans)-5])
	if _, err := firstToken(c, fans[len(fans)-5], hubEv); err != nil { // the event's first sale
		return nil, "", err
	}
	if r, err = c.Transact(attFan, hubEv, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nil); err != nil {
		return nil, "", fmt.Errorf("buy_primary_1_hub_categories: %w", err)
	}
	record("buy_primary_1_hub_categories", r.GasUsed)

	// The floor: OpenZeppelin's ERC721 minting to a new owner in the same harness.
	nft, err := c.Deploy(c.Deployer, &testing.PlainNFTMetaData, nil)
	if err != nil {
		return nil, "", err
	}
	plain := testing.NewPlainNFT()
	c.MustTransact(c.Deployer, nft, plain.PackMint(c.Deployer.Address, big.NewInt(1)), nil)
	r, err = c.Transact(c.Deployer, nft, plain.PackMint(fans[len(fans)-2].Address, big.NewInt(2)), nil)
	if err != nil {
		return nil, "", fmt.Errorf("erc721_plain_mint: %w", err)
	}
	record("erc721_plain_mint", r.GasUsed)

	if err := measureBridge(record); err != nil {
		return nil, "", err
	}
	return lines, devchain.ForkName(devchain.OsakaConfig()), nil
}

// firstToken buys one ticket for f if it has none and returns the id of that purchase.
func firstToken(c *devchain.Chain, f *devchain.Account, ev common.Address) (*big.Int, error) {
	r, err := c.Transact(f, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(50)), nil)
	if err != nil {
		return nil, fmt.Errorf("buy for %s: %w", f.Address, err)
	}
	for _, l := range r.Logs {
		if p, err := devchain.Ticket.UnpackPurchasedEvent(l); err == nil {
			return p.FirstTokenId, nil
		}
	}
	return nil, fmt.Errorf("buy for %s: no Purchased log", f.Address)
}
