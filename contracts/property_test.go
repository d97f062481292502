package contracts_test

// TestPropertyRandomOperations drives the event contracts with long, seeded, random sequences
// of operations by many accounts and checks the platform's invariants after every step, both
// against on-chain views and against a Go model of every event kept alongside:
//
//   - the parts of every payment (primary sale or resale) sum to the price the buyer paid;
//   - no account ever acquired more than maxPerBuyer tickets, nor holds more;
//   - no buyer category holds more tickets than its quota;
//   - no resale happens outside [floor, cap] at the time of sale;
//   - nothing moves after check-in or after resaleClosesAt (or after a cancellation, save
//     the burns of refunds);
//   - the contract's balance in its currency equals its refund pool plus the credits it owes;
//   - card purchases (requestPurchase, then the OracleHub's k-of-n report) mint exactly when
//     the rules allow at mint time, and fail with the rule's error otherwise; refunds and
//     chargebacks burn a ticket still with its card buyer and mark the others.
//
// Every random operation is predicted by the model first, in the order the contract checks
// its rules: a revert mustRead be exactly the custom error predicted, and an operation the model
// allows mustRead succeed.
//
// The run is split into rounds of a few hundred steps. Each round creates four fresh events
// with random rules (TestUSD and native coin; with and without a category registry; gifts
// allowed or not; discount schedules; tight maxPerBuyer and quotas; a stakeholder or a fan
// that refuses native coin so payouts fall back to credits) and moves time through the
// round: discounts starting, doors opening, resale closing, cancellations and refunds.
//
//	go test ./contracts -run TestPropertyRandomOperations -v
//	STAGEPASS_PROPERTY_SEED=42 STAGEPASS_PROPERTY_STEPS=20000 go test ./contracts -run TestPropertyRandomOperations
//	go test ./contracts -run TestPropertyRandomOperations -args -property.seed=42 -property.steps=20000

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	testbind "github.com/stagepass/stagepass/contracts/bindings/testing"
	"github.com/stagepass/stagepass/contracts/devchain"
)

var (
	propertySeedFlag  = flag.String("property.seed", "", "seed of TestPropertyRandomOperations (default $STAGEPASS_PROPERTY_SEED, else a fixed seed)")
	propertyStepsFlag = flag.String("property.steps", "", "steps of TestPropertyRandomOperations (default $STAGEPASS_PROPERTY_STEPS, else 3000, or 800 with -shortAddr)")
)

const (
	propertyDefaultSeed  = 20260425
	propertyDefaultSteps = 3000
	propertyShortSteps   = 800
	propertyRoundSteps   = 500

	bpsDenom = 10_000
	propDay  = 86_400
	paidBits = 88 // a price mustRead fit the 88 bits the contract keeps per ticket
)

var (
	rejectingBinding = testbind.NewRejectingReceiver()
	registryBinding  = testbind.NewTestCategoryRegistry()
	zeroAddr         common.Address
)

func TestPropertyRandomOperations(t *testing.T) {
	seed, steps := propertyParams(t)
	t.Logf("seed %d, %d steps; reproduce with STAGEPASS_PROPERTY_SEED=%d STAGEPASS_PROPERTY_STEPS=%d", seed, steps, seed, steps)
	start := time.Now()
	p := newProp(t, seed, steps)
	defer p.c.Close()
	defer func() {
		if r := recover(); r != nil {
			p.failf("panic: %v", r)
		}
	}()
	p.run()
	p.logStats(time.Since(start))
	if steps >= 1000 {
		p.requireCoverage()
	}
}

func propertyParams(t *testing.T) (uint64, int) {
	seedText := os.Getenv("STAGEPASS_PROPERTY_SEED")
	if *propertySeedFlag != "" {
		seedText = *propertySeedFlag
	}
	seed := uint64(propertyDefaultSeed)
	if seedText != "" {
		v, err := strconv.ParseUint(seedText, 0, 64)
		if err != nil {
			t.Fatalf("bad property seed %q: %v", seedText, err)
		}
		seed = v
	}
	stepsText := os.Getenv("STAGEPASS_PROPERTY_STEPS")
	if *propertyStepsFlag != "" {
		stepsText = *propertyStepsFlag
	}
	steps := propertyDefaultSteps
	if testing.Short() {
		steps = propertyShortSteps
	}
	if stepsText != "" {
		v, err := strconv.Atoi(stepsText)
		if err != nil || v <= 0 {
			t.Fatalf("bad property steps %q", stepsText)
		}
		steps = v
	}
	return seed, steps
}

// ---------------------------------------------------------------- model

// actor is someone who sends transactions: an EOA, or a RejectingReceiver contract (which
// refuses native coin) relaying its calls through exec.
type actor struct {
	name   string
	addr   common.Address    // msg.sender as the event sees it
	signer *devchain.Account // signs the transaction
	via    common.Address    // the relaying contract, zero for an EOA
}

type tokM struct {
	id        uint64
	tier      int
	owner     common.Address // zero once burned
	paid      *big.Int
	cat       uint8
	checkedIn bool
	listing   *big.Int
	approved  common.Address
	cardFresh bool // minted by card and never moved since: a reversal burns it
}

type tierM struct {
	face         *big.Int
	supply, sold int
}

type discM struct {
	from uint64
	bps  int64
}

type splitM struct {
	to  common.Address
	bps int64
}

type evM struct {
	name        string
	addr        common.Address
	native      bool
	registry    bool
	gifts       bool
	maxPer      int
	markup      int64
	sellerShare int64
	discounts   []discM
	quotas      [5]int64
	total       int64
	tiers       []tierM
	splits      []splitM
	doors       uint64
	close       uint64
	starts      uint64
	issuer      *actor
	cancellable bool

	cancelled bool
	tokens    []*tokM
	byID      map[uint64]*tokM
	acquired  map[common.Address]int
	cnt       [5]int64
	owed      *big.Int
	pool      *big.Int
	credits   map[common.Address]*big.Int
	payees    []common.Address // every account ever paid: the ones that may hold credits
	pending   []cardReqM       // card purchase requests awaiting the oracles' report
	cardPaid  []cardPaidM      // card payments reported captured and not reversed
}

// cardPaidM is a captured card payment: minted (its tickets) or failed (refund owed).
type cardPaidM struct {
	pid    [32]byte
	minted bool
	first  uint64
	qty    int
}

// cardReqM is a card purchase request (requestPurchase) the model waits to see fulfilled.
type cardReqM struct {
	p     events.CardPurchase
	buyer *actor
	tier  int
	qty   int
	unit  *big.Int
}

func (e *evM) floor(face *big.Int, now uint64) *big.Int {
	var b int64
	for _, d := range e.discounts {
		if now < d.from {
			break
		}
		b = d.bps
	}
	return bigSub(face, mulDiv(face, b))
}

func (e *evM) capPrice(face *big.Int) *big.Int { return bigAdd(face, mulDiv(face, e.markup)) }

func (e *evM) quota(cat uint8) int64 { return e.total * e.quotas[cat] / bpsDenom }

func (e *evM) live() []*tokM {
	var out []*tokM
	for _, t := range e.tokens {
		if t.owner != zeroAddr {
			out = append(out, t)
		}
	}
	return out
}

func (e *evM) listed() []*tokM {
	var out []*tokM
	for _, t := range e.tokens {
		if t.owner != zeroAddr && t.listing.Sign() > 0 {
			out = append(out, t)
		}
	}
	return out
}

func (e *evM) holdings() map[common.Address]int {
	h := map[common.Address]int{}
	for _, t := range e.tokens {
		if t.owner != zeroAddr {
			h[t.owner]++
		}
	}
	return h
}

func (e *evM) addPayee(a common.Address) {
	if !slices.Contains(e.payees, a) {
		e.payees = append(e.payees, a)
	}
}

func (e *evM) creditOf(a common.Address) *big.Int {
	if c, ok := e.credits[a]; ok {
		return c
	}
	return new(big.Int)
}

// parts is how `amount` is divided among the split parties, the last taking the remainder.
func (e *evM) parts(amount *big.Int) []*big.Int {
	out := make([]*big.Int, len(e.splits))
	left := new(big.Int).Set(amount)
	for i, s := range e.splits {
		if i == len(e.splits)-1 {
			out[i] = left
		} else {
			out[i] = mulDiv(amount, s.bps)
			left = bigSub(left, out[i])
		}
	}
	return out
}

// sellerAmount is what the seller of a resale at `price` keeps.
func (e *evM) sellerAmount(tok *tokM, price *big.Int) *big.Int {
	face := e.tiers[tok.tier].face
	markup := new(big.Int)
	if price.Cmp(face) > 0 {
		markup = bigSub(price, face)
	}
	return bigAdd(bigSub(price, markup), mulDiv(markup, e.sellerShare))
}

func validResalePrice(price, lo, hi *big.Int) bool {
	return price.Cmp(lo) >= 0 && price.Cmp(hi) <= 0 && price.Sign() > 0 && price.BitLen() <= paidBits
}

type payout struct {
	to       common.Address
	amount   *big.Int
	credited bool
}

type tokMove struct {
	from, to common.Address
	id       uint64
}

func (m tokMove) String() string {
	return fmt.Sprintf("%s->%s #%s", shortAddr(m.from), shortAddr(m.to), tokenName(m.id))
}

// deltas are expected balance changes in an event's currency.
type deltas struct {
	order []common.Address
	m     map[common.Address]*big.Int
}

func newDeltas() *deltas { return &deltas{m: map[common.Address]*big.Int{}} }

func (d *deltas) add(a common.Address, v *big.Int) {
	if _, ok := d.m[a]; !ok {
		d.order = append(d.order, a)
		d.m[a] = new(big.Int)
	}
	d.m[a] = bigAdd(d.m[a], v)
}

func (d *deltas) get(a common.Address) *big.Int {
	if v, ok := d.m[a]; ok {
		return v
	}
	return new(big.Int)
}

// ---------------------------------------------------------------- harness

type prop struct {
	t          *testing.T
	c          *devchain.Chain
	rng        *rand.Rand
	seed       uint64
	totalSteps int
	step       int
	round      int
	phase      int
	ticketABI  abi.ABI
	usdABI     abi.ABI

	registry  common.Address
	cats      map[common.Address]uint8
	rejecting map[common.Address]bool
	issuers   []*actor
	artist    *actor
	promoter  *actor
	venue     *actor
	venueR    *actor // a stakeholder that refuses native coin
	gate      *actor
	wallet    *actor // receives withdrawals, never sends
	fans      []*actor
	fanR      *actor // a fan that refuses native coin
	poor      *actor // a fan with little TestUSD
	byAddr    map[common.Address]*actor

	events    []*evM
	allEvents []*evM
	ops       []opDef

	opName      string
	cur         string
	history     []string
	stats       map[string]int
	checkedHead uint64
	mined       int
	now         uint64      // timestamp the next block will have
	rpc         *rpc.Client // for batched reads; nil falls back to one call at a time
	curEvent    string
	cardN       int  // payment ids used so far
	reversing   bool // a card reversal may burn tickets of an event not cancelled
}

type opDef struct {
	name string
	fn   func(*prop, *evM)
}

// weight is how often an operation is drawn for event e in its current state: the market
// while sales are open, the door once it opens, refunds once cancelled. Operations that
// can only fail keep a small weight, so their reverts are still checked.
func (p *prop) weight(op string, e *evM) int {
	open := !e.cancelled && p.now < e.close
	doors := !e.cancelled && p.now >= e.doors
	left := false
	for _, t := range e.tiers {
		left = left || t.sold < t.supply
	}
	credits := false
	for _, c := range e.credits {
		credits = credits || c.Sign() > 0
	}
	pick := func(yes, no int, cond bool) int {
		if cond {
			return yes
		}
		return no
	}
	switch op {
	case "buy":
		return pick(20, 3, open && left)
	case "list":
		return pick(13, 3, open)
	case "cancelListing":
		return pick(4, 2, open)
	case "buyListed":
		return pick(14, 2, open && len(e.listed()) > 0)
	case "gift":
		return pick(10, 3, open)
	case "approve":
		return 2
	case "checkIn":
		return pick(8, 2, doors)
	case "checkInBatch":
		return pick(5, 1, doors)
	case "setCategory":
		return pick(2, 0, e.registry)
	case "fundRefunds":
		return 1
	case "cancelEvent":
		return pick(3, 1, !e.cancelled)
	case "claimRefund":
		return pick(20, 2, e.cancelled && len(e.live()) > 0)
	case "withdraw":
		return pick(6, 1, credits)
	case "withdrawRefundSurplus":
		return pick(3, 1, e.cancelled)
	case "cardRequest":
		return pick(8, 1, open && left)
	case "cardFulfil":
		return pick(10, 0, len(e.pending) > 0)
	case "cardReverse":
		return pick(3, 0, len(e.cardPaid)+len(e.pending) > 0)
	}
	panic("unknown operation " + op)
}

func newProp(t *testing.T, seed uint64, steps int) *prop {
	c, err := devchain.New(devchain.Options{Accounts: 24, Seed: "property"})
	if err != nil {
		t.Fatal(err)
	}
	p := &prop{
		t: t, c: c, seed: seed, totalSteps: steps,
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ticketABI: devchain.Ticket.GetABI(),
		usdABI:    devchain.USD.GetABI(),
		cats:      map[common.Address]uint8{},
		rejecting: map[common.Address]bool{},
		byAddr:    map[common.Address]*actor{},
		stats:     map[string]int{},
	}
	p.ops = []opDef{
		{"buy", (*prop).opBuy},
		{"list", (*prop).opList},
		{"cancelListing", (*prop).opCancelListing},
		{"buyListed", (*prop).opBuyListed},
		{"gift", (*prop).opGift},
		{"approve", (*prop).opApprove},
		{"checkIn", (*prop).opCheckIn},
		{"checkInBatch", (*prop).opCheckInBatch},
		{"setCategory", (*prop).opSetCategory},
		{"fundRefunds", (*prop).opFundRefunds},
		{"cancelEvent", func(p *prop, e *evM) { p.opCancelEvent(e, false) }},
		{"claimRefund", (*prop).opClaimRefund},
		{"withdraw", (*prop).opWithdraw},
		{"withdrawRefundSurplus", (*prop).opWithdrawSurplus},
		{"cardRequest", (*prop).opCardRequest},
		{"cardFulfil", (*prop).opCardFulfil},
		{"cardReverse", (*prop).opCardReverse},
	}
	p.rpc = rpcClient(c)
	p.setup()
	return p
}

// rpcClient digs the JSON-RPC client out of the simulated backend's ethclient (the
// simulated.Client interface does not expose it), or returns nil.
func rpcClient(c *devchain.Chain) (rc *rpc.Client) {
	defer func() {
		if recover() != nil {
			rc = nil
		}
	}()
	v := reflect.ValueOf(c.Client)
	if v.Kind() == reflect.Struct && v.NumField() > 0 {
		if ec, ok := v.Field(0).Interface().(*ethclient.Client); ok {
			return ec.Client()
		}
	}
	return nil
}

func (p *prop) eoa(name string, i int) *actor {
	a := p.c.Accounts[i]
	return &actor{name: name, addr: a.Address, signer: a}
}

func (p *prop) setup() {
	c := p.c
	p.issuers = []*actor{p.eoa("issuerA", 0), p.eoa("issuerB", 1)}
	p.artist, p.promoter, p.venue = p.eoa("artist", 2), p.eoa("promoter", 3), p.eoa("venue", 4)
	p.gate, p.wallet = p.eoa("gate", 5), p.eoa("wallet", 6)
	for i := 7; i < 23; i++ {
		p.fans = append(p.fans, p.eoa(fmt.Sprintf("fan%d", i-7), i))
	}
	p.poor = p.fans[len(p.fans)-1]
	p.poor.name = "poorfan"
	deploy := func(name string) *actor {
		addr, err := c.Deploy(c.Deployer, &testbind.RejectingReceiverMetaData, nil)
		if err != nil {
			p.t.Fatal(err)
		}
		p.rejecting[addr] = true
		return &actor{name: name, addr: addr, signer: c.Deployer, via: addr}
	}
	p.fanR = deploy("fanR")
	p.venueR = deploy("venueR")
	p.fans = append(p.fans, p.fanR)
	for _, a := range append(append([]*actor{}, p.fans...), p.issuers[0], p.issuers[1], p.artist, p.promoter, p.venue, p.venueR, p.gate, p.wallet) {
		p.byAddr[a.addr] = a
	}

	var err error
	if p.registry, err = c.Deploy(c.Deployer, &testbind.TestCategoryRegistryMetaData, nil); err != nil {
		p.t.Fatal(err)
	}
	for i, f := range p.fans {
		p.setCategory(f.addr, uint8(i%5))
	}

	// Everyone who pays holds TestUSD; the poor fan only a little.
	for _, a := range append(append([]*actor{}, p.fans...), p.issuers...) {
		amount := devchain.USDC(10_000_000)
		if a == p.poor {
			amount = devchain.USDC(20)
		}
		c.MustTransact(c.Deployer, c.USD, devchain.USD.PackMint(a.addr, amount), nil)
	}
	// Move the clock well past the wall clock, so every block is exactly one second after
	// the previous one and the run does not depend on when it happens.
	c.Warp(365 * 24 * time.Hour)
}

func (p *prop) setCategory(a common.Address, cat uint8) {
	p.c.MustTransact(p.c.Deployer, p.registry, registryBinding.PackSetCategory(a, cat), nil)
	p.cats[a] = cat
}

func (p *prop) catOf(e *evM, a common.Address) uint8 {
	if !e.registry {
		return devchain.Unclassified
	}
	return p.cats[a]
}

// ---------------------------------------------------------------- failure reporting

func (p *prop) failf(format string, args ...any) {
	p.t.Helper()
	hist := p.history
	if len(hist) > 25 {
		hist = hist[len(hist)-25:]
	}
	p.t.Fatalf("PROPERTY VIOLATED: %s\n  seed %d, round %d, step %d of %d\n  operation: %s\n"+
		"  reproduce: STAGEPASS_PROPERTY_SEED=%d STAGEPASS_PROPERTY_STEPS=%d go test ./contracts -run TestPropertyRandomOperations -v\n"+
		"  last steps:\n    %s",
		fmt.Sprintf(format, args...), p.seed, p.round, p.step, p.totalSteps, p.cur,
		p.seed, p.totalSteps, strings.Join(hist, "\n    "))
}

func (p *prop) describe(op string, format string, args ...any) {
	p.opName = op
	p.cur = fmt.Sprintf("%s %s: %s", p.evName(), op, fmt.Sprintf(format, args...))
}

func (p *prop) evName() string {
	if len(p.events) == 0 {
		return "-"
	}
	return p.curEvent
}

func (p *prop) name(a common.Address) string {
	if ac, ok := p.byAddr[a]; ok {
		return ac.name
	}
	for _, e := range p.allEvents {
		if e.addr == a {
			return e.name
		}
	}
	return shortAddr(a)
}

func shortAddr(a common.Address) string { return a.Hex()[:8] }

func tokenName(id uint64) string { return fmt.Sprintf("%d.%d", id>>32, id&0xffffffff) }

// ---------------------------------------------------------------- chain helpers

func (p *prop) view(to common.Address, data []byte) []byte {
	p.t.Helper()
	out, err := p.c.Call(to, data)
	if err != nil {
		p.failf("view call 0x%x on %s: %v", data[:4], p.name(to), err)
	}
	return out
}

// mustRead unwraps a binding's result; a panic is reported with the seed by the test's recover.
func mustRead[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprintf("unpack: %v", err))
	}
	return v
}

func (p *prop) send(a *actor, to common.Address, data []byte, value *big.Int) (*types.Receipt, error) {
	if a.via != zeroAddr {
		return p.c.Transact(a.signer, a.via, rejectingBinding.PackExec(to, data), value)
	}
	return p.c.Transact(a.signer, to, data, value)
}

func (p *prop) errName(err error) string {
	if err == nil {
		return "ok"
	}
	if n := devchain.ErrorName(&p.ticketABI, err); n != "" {
		return n
	}
	if n := devchain.ErrorName(&p.usdABI, err); n != "" {
		return n
	}
	var re *devchain.RevertError
	if errors.As(err, &re) {
		if len(re.Data) == 0 {
			return "revert without data"
		}
		return "unknown revert " + re.Selector()
	}
	return "error"
}

// expect checks the outcome of an operation against the model's prediction ("" = success).
func (p *prop) expect(want string, err error) bool {
	p.t.Helper()
	if want == "" {
		want = "ok"
	}
	got := p.errName(err)
	p.stats[p.opName+" "+got]++
	p.cur += " -> " + got
	if got != want {
		p.failf("model expected %s, contract answered %s (%v)", want, got, err)
	}
	return err == nil
}

func (p *prop) balance(e *evM, a common.Address) *big.Int {
	if e.native {
		return p.c.Balance(a)
	}
	return p.c.USDBalance(a)
}

func (p *prop) blockTime(r *types.Receipt) uint64 {
	h, err := p.c.Client.HeaderByNumber(context.Background(), r.BlockNumber)
	if err != nil {
		p.failf("header: %v", err)
	}
	return h.Time
}

func (p *prop) warpTo(ts uint64) {
	if now := p.c.Now(); ts > now {
		p.c.Warp(time.Duration(ts-now) * time.Second)
	}
}

// prepareTime makes sure no time rule of `e` changes between the block a transaction is
// estimated against and the one it is mined in, and returns the time of the latter.
func (p *prop) prepareTime(e *evM) {
	now := p.c.Now()
	var edges []uint64
	for _, d := range e.discounts {
		edges = append(edges, d.from)
	}
	edges = append(edges, e.doors, e.close)
	for _, x := range edges {
		if x == now+1 {
			p.c.Warp(2 * time.Second)
			now = p.c.Now()
			break
		}
	}
	p.now = now + 1
}

type watch struct {
	e      *evM
	addrs  []common.Address
	before []*big.Int
}

func (p *prop) watch(e *evM, d *deltas) *watch {
	w := &watch{e: e}
	for _, a := range append(append([]common.Address{}, d.order...), e.addr) {
		if !slices.Contains(w.addrs, a) {
			w.addrs = append(w.addrs, a)
			w.before = append(w.before, p.balance(e, a))
		}
	}
	return w
}

// deltasAfter is every watched balance's change, not counting the gas the signer paid.
func (p *prop) deltasAfter(w *watch, r *types.Receipt, signer common.Address) map[common.Address]*big.Int {
	out := map[common.Address]*big.Int{}
	for i, a := range w.addrs {
		d := bigSub(p.balance(w.e, a), w.before[i])
		if w.e.native && a == signer {
			d = bigAdd(d, new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice))
		}
		out[a] = d
	}
	return out
}

// checkMoney compares balance changes with the model's, and for a payment (payerOf non-zero)
// checks the payment invariant: the payerOf paid the price and the parts received sum to it.
func (p *prop) checkMoney(w *watch, r *types.Receipt, signer, payerOf common.Address, price *big.Int, exp *deltas) {
	p.t.Helper()
	got := p.deltasAfter(w, r, signer)
	if payerOf != zeroAddr {
		paid := new(big.Int).Neg(got[payerOf])
		received := new(big.Int)
		for a, d := range got {
			if a != payerOf {
				received.Add(received, d)
			}
		}
		if paid.Cmp(price) != 0 {
			p.failf("payment: buyer %s paid %s for a price of %s", p.name(payerOf), paid, price)
		}
		if received.Cmp(price) != 0 {
			p.failf("payment: the parts received (payees, seller and credits held by the contract) sum to %s, price %s", received, price)
		}
	}
	for _, a := range w.addrs {
		if got[a].Cmp(exp.get(a)) != 0 {
			p.failf("balance of %s changed by %s, model expected %s", p.name(a), got[a], exp.get(a))
		}
	}
}

func (p *prop) payTo(e *evM, to common.Address, amount *big.Int) payout {
	return payout{to: to, amount: amount, credited: e.native && p.rejecting[to] && amount.Sign() > 0}
}

func (p *prop) partyPayouts(e *evM, amount *big.Int) []payout {
	var out []payout
	for i, part := range e.parts(amount) {
		out = append(out, p.payTo(e, e.splits[i].to, part))
	}
	return out
}

func expectPayouts(e *evM, exp *deltas, pos []payout) {
	for _, po := range pos {
		if po.credited {
			exp.add(e.addr, po.amount)
		} else {
			exp.add(po.to, po.amount)
		}
	}
}

func applyPayouts(e *evM, pos []payout) {
	for _, po := range pos {
		e.addPayee(po.to)
		if po.credited {
			e.credits[po.to] = bigAdd(e.creditOf(po.to), po.amount)
		}
	}
}

// payerOf is whose balance a payment comes out of: the signer for native coin (a relaying
// contract forwards msg.value), the acting account for the ERC-20.
func payerOf(e *evM, a *actor) common.Address {
	if e.native {
		return a.signer.Address
	}
	return a.addr
}

// paymentError predicts _takePayment and, for the ERC-20, the payerOf running out of funds.
func (p *prop) paymentError(e *evM, a *actor, total, value *big.Int) string {
	if e.native {
		if value.Cmp(total) != 0 {
			return "IncorrectPayment"
		}
		return ""
	}
	if value.Sign() != 0 {
		return "NativeNotAccepted"
	}
	if total.Sign() > 0 && p.c.USDBalance(a.addr).Cmp(total) < 0 {
		return "ERC20InsufficientBalance"
	}
	return ""
}

// hookTo mirrors the receiving half of EventTicket._beforeTokenTransfer, in its order.
// acqTo and cnt are working copies the caller discards on error.
func (p *prop) hookTo(e *evM, from, to common.Address, market bool, acqTo *int, cnt *[5]int64) string {
	if from == to {
		return "SelfTransfer"
	}
	if e.cancelled {
		return "EventIsCancelled"
	}
	if p.now >= e.close {
		return "SalesClosed"
	}
	if from != zeroAddr && !market && !e.gifts {
		return "GiftsNotAllowed"
	}
	if *acqTo >= e.maxPer {
		return "BuyerLimitReached"
	}
	cat := p.catOf(e, to)
	if cat >= 5 {
		return "InvalidCategory"
	}
	if cnt[cat] >= e.quota(cat) {
		return "CategoryQuotaReached"
	}
	*acqTo++
	cnt[cat]++
	return ""
}

// checkMoves compares the receipt's ERC-721 Transfer logs with the model's, and checks that
// no ticket moved after check-in, after resaleClosesAt or after cancellation (refund burns
// excepted). It runs before the model applies the operation.
func (p *prop) checkMoves(e *evM, r *types.Receipt, want []tokMove) {
	p.t.Helper()
	bt := p.blockTime(r)
	if bt != p.now {
		p.failf("mined at %d, the model predicted the rules at %d", bt, p.now)
	}
	var got []tokMove
	for _, l := range r.Logs {
		if l.Address != e.addr {
			continue
		}
		ev, err := devchain.Ticket.UnpackTransferEvent(l)
		if err != nil {
			continue
		}
		m := tokMove{ev.From, ev.To, ev.Id.Uint64()}
		if tok := e.byID[m.id]; tok != nil && tok.checkedIn && m.from != zeroAddr {
			p.failf("checked-in ticket %s moved: %s", tokenName(m.id), m)
		}
		if m.to != zeroAddr && bt >= e.close {
			p.failf("ticket %s moved at %d, at or after resaleClosesAt %d: %s", tokenName(m.id), bt, e.close, m)
		}
		if m.to != zeroAddr && e.cancelled {
			p.failf("ticket %s moved after cancellation: %s", tokenName(m.id), m)
		}
		if m.to == zeroAddr && !e.cancelled && !p.reversing {
			p.failf("ticket %s burned although the event is not cancelled", tokenName(m.id))
		}
		got = append(got, m)
	}
	if !slices.Equal(got, want) {
		p.failf("Transfer logs %v, model expected %v", got, want)
	}
}

func (p *prop) checkTicket(e *evM, tok *tokM) {
	p.t.Helper()
	tk := mustRead(devchain.Ticket.UnpackTicket(p.view(e.addr, devchain.Ticket.PackTicket(new(big.Int).SetUint64(tok.id)))))
	// The contract keeps a checked-in ticket's listing slot (clearing it would cost gas at
	// the door) but reports it as not for sale.
	wantListing := tok.listing
	if tok.checkedIn {
		wantListing = new(big.Int)
	}
	if tk.Owner != tok.owner || tk.Tier.Uint64() != uint64(tok.tier) || tk.Paid.Cmp(tok.paid) != 0 ||
		tk.Category != tok.cat || tk.CheckedIn != tok.checkedIn || tk.ListingPrice.Cmp(wantListing) != 0 {
		p.failf("ticket %s on chain {owner %s tier %s paid %s cat %d checkedIn %v listing %s}, model {owner %s tier %d paid %s cat %d checkedIn %v listing %s}",
			tokenName(tok.id), p.name(tk.Owner), tk.Tier, tk.Paid, tk.Category, tk.CheckedIn, tk.ListingPrice,
			p.name(tok.owner), tok.tier, tok.paid, tok.cat, tok.checkedIn, tok.listing)
	}
}

// reads is a batch of view calls and balance reads, sent as one JSON-RPC batch: the
// invariants of every event are read after every step, and one by one that would cost
// three times as much.
type reads struct {
	p     *prop
	elems []rpc.BatchElem
	res   []*string
	calls []func() []byte
}

func (p *prop) reads() *reads { return &reads{p: p} }

// call queues a view call; the returned function gives its result after run.
func (b *reads) call(to common.Address, data []byte) func() []byte {
	out := new(string)
	i := len(b.elems)
	b.elems = append(b.elems, rpc.BatchElem{Method: "eth_call", Args: []any{map[string]any{"to": to, "data": hexutil.Bytes(data)}, "latest"}, Result: out})
	b.res = append(b.res, out)
	b.calls = append(b.calls, func() []byte { return b.p.view(to, data) })
	return func() []byte {
		if b.p.rpc == nil {
			return b.calls[i]()
		}
		if err := b.elems[i].Error; err != nil {
			b.p.failf("view call 0x%x on %s: %v", data[:4], b.p.name(to), err)
		}
		return mustRead(hexutil.Decode(*out))
	}
}

// balance queues a read of `a`'s balance in e's currency.
func (b *reads) balance(e *evM, a common.Address) func() *big.Int {
	if !e.native {
		get := b.call(b.p.c.USD, devchain.USD.PackBalanceOf(a))
		return func() *big.Int { return mustRead(devchain.USD.UnpackBalanceOf(get())) }
	}
	out := new(string)
	i := len(b.elems)
	b.elems = append(b.elems, rpc.BatchElem{Method: "eth_getBalance", Args: []any{a, "latest"}, Result: out})
	b.res = append(b.res, out)
	b.calls = append(b.calls, nil)
	return func() *big.Int {
		if b.p.rpc == nil {
			return b.p.c.Balance(a)
		}
		if err := b.elems[i].Error; err != nil {
			b.p.failf("balance of %s: %v", b.p.name(a), err)
		}
		return mustRead(hexutil.DecodeBig(*out))
	}
}

func (b *reads) run() {
	if b.p.rpc == nil || len(b.elems) == 0 {
		return
	}
	if err := b.p.rpc.BatchCallContext(context.Background(), b.elems); err != nil {
		b.p.failf("batch of %d reads: %v", len(b.elems), err)
	}
}

// checkEvents checks every invariant of the events against their on-chain state and the
// model, reading all of it at one block.
func (p *prop) checkEvents(evs ...*evM) {
	p.t.Helper()
	b := p.reads()
	var checks []func()
	for _, e := range evs {
		checks = append(checks, p.queueEventChecks(b, e))
	}
	b.run()
	for _, check := range checks {
		check()
	}
}

func (p *prop) queueEventChecks(b *reads, e *evM) func() {
	T := devchain.Ticket
	settings := b.call(e.addr, T.PackSettings())
	var acquired, held []func() []byte
	for _, f := range p.fans {
		acquired = append(acquired, b.call(e.addr, T.PackAcquired(f.addr)))
		held = append(held, b.call(e.addr, T.PackBalanceOf(f.addr)))
	}
	var counts, quotas []func() []byte
	for cat := uint8(0); cat < 5; cat++ {
		counts = append(counts, b.call(e.addr, T.PackCategoryCount(cat)))
		quotas = append(quotas, b.call(e.addr, T.PackCategoryQuotaBps(cat)))
	}
	owedRead := b.call(e.addr, T.PackRefundsOwed())
	poolRead := b.call(e.addr, T.PackRefundPool())
	payees := slices.Clone(e.payees)
	var creditReads []func() []byte
	for _, a := range payees {
		creditReads = append(creditReads, b.call(e.addr, T.PackCredits(a)))
	}
	balRead := b.balance(e, e.addr)

	return func() {
		p.t.Helper()
		st := mustRead(T.UnpackSettings(settings()))
		if st.Cancelled != e.cancelled || int64(st.TotalSupply) != e.total || int(st.MaxPerBuyer) != e.maxPer {
			p.failf("%s: settings on chain %+v, model cancelled %v totalSupply %d", e.name, st, e.cancelled, e.total)
		}
		holdings := e.holdings()
		for i, f := range p.fans {
			acq := int(mustRead(T.UnpackAcquired(acquired[i]())).Int64())
			if acq > int(st.MaxPerBuyer) {
				p.failf("%s: %s acquired %d tickets, above maxPerBuyer %d", e.name, f.name, acq, st.MaxPerBuyer)
			}
			if acq != e.acquired[f.addr] {
				p.failf("%s: acquired(%s) = %d, model %d", e.name, f.name, acq, e.acquired[f.addr])
			}
			bal := int(mustRead(T.UnpackBalanceOf(held[i]())).Int64())
			if bal > int(st.MaxPerBuyer) {
				p.failf("%s: %s holds %d tickets, above maxPerBuyer %d", e.name, f.name, bal, st.MaxPerBuyer)
			}
			if bal != holdings[f.addr] {
				p.failf("%s: balanceOf(%s) = %d, model %d", e.name, f.name, bal, holdings[f.addr])
			}
		}
		for cat := range 5 {
			n := mustRead(T.UnpackCategoryCount(counts[cat]())).Int64()
			qbps := mustRead(T.UnpackCategoryQuotaBps(quotas[cat]())).Int64()
			quota := int64(st.TotalSupply) * qbps / bpsDenom
			if n > quota {
				p.failf("%s: category %d holds %d tickets, above its quota %d (%d bps of %d)", e.name, cat, n, quota, qbps, st.TotalSupply)
			}
			if n != e.cnt[cat] || qbps != e.quotas[cat] {
				p.failf("%s: categoryCount(%d) = %d (quota %d bps), model %d (%d bps)", e.name, cat, n, qbps, e.cnt[cat], e.quotas[cat])
			}
		}
		owed := mustRead(T.UnpackRefundsOwed(owedRead()))
		if owed.Cmp(e.owed) != 0 {
			p.failf("%s: refundsOwed = %s, model %s", e.name, owed, e.owed)
		}
		pool := mustRead(T.UnpackRefundPool(poolRead()))
		if pool.Cmp(e.pool) != 0 {
			p.failf("%s: refundPool = %s, model %s", e.name, pool, e.pool)
		}
		if e.cancelled && pool.Cmp(owed) < 0 {
			p.failf("%s: cancelled event's refund pool %s does not cover what it owes %s", e.name, pool, owed)
		}
		credits := new(big.Int)
		for i, a := range payees {
			cr := mustRead(T.UnpackCredits(creditReads[i]()))
			if cr.Cmp(e.creditOf(a)) != 0 {
				p.failf("%s: credits(%s) = %s, model %s", e.name, p.name(a), cr, e.creditOf(a))
			}
			credits.Add(credits, cr)
		}
		if bal := balRead(); bal.Cmp(bigAdd(pool, credits)) != 0 {
			p.failf("%s: contract holds %s but owes refundPool %s + credits %s = %s", e.name, bal, pool, credits, bigAdd(pool, credits))
		}
	}
}

func (p *prop) checkAll(tokens bool) {
	p.checkEvents(p.events...)
	for _, e := range p.events {
		if tokens {
			for _, tok := range e.tokens {
				p.checkTicket(e, tok)
			}
		}
	}
	p.checkedHead = p.head()
}

func (p *prop) head() uint64 {
	n, err := p.c.Client.BlockNumber(context.Background())
	if err != nil {
		p.failf("block number: %v", err)
	}
	return n
}

// ---------------------------------------------------------------- rounds

func (p *prop) run() {
	for p.step < p.totalSteps {
		n := min(propertyRoundSteps, p.totalSteps-p.step)
		p.runRound(n)
		p.round++
	}
}

func (p *prop) runRound(n int) {
	base := p.c.Now()
	p.setupRound(base)
	p.phase = 0
	p.cur = fmt.Sprintf("(checks after creating round %d)", p.round)
	p.checkAll(true)
	phases := []struct {
		at float64
		ts uint64
	}{{0.20, base + propDay + 60}, {0.35, base + 2*propDay + 60}, {0.55, base + 3*propDay + 60}, {0.75, base + 4*propDay + 60}}
	for i := 0; i < n; i++ {
		for k, ph := range phases {
			if i == int(ph.at*float64(n)) {
				p.warpTo(ph.ts)
				p.phase = k + 1
				p.history = append(p.history, fmt.Sprintf("-- warp to phase %d (t=%d)", p.phase, p.c.Now()))
				p.cur = fmt.Sprintf("(checks after the warp to phase %d)", p.phase)
				p.checkAll(false)
			}
		}
		p.step++
		var forced *evM
		if i >= int(0.9*float64(n)) {
			for _, e := range p.events {
				if e.cancellable && !e.cancelled {
					forced = e
					break
				}
			}
		}
		if forced != nil {
			p.curEvent = forced.name
			p.prepareTime(forced)
			p.opCancelEvent(forced, true)
			p.afterStep(forced)
			continue
		}
		e := p.events[p.rng.IntN(len(p.events))]
		p.curEvent = e.name
		p.prepareTime(e)
		total := 0
		for _, o := range p.ops {
			total += p.weight(o.name, e)
		}
		x := p.rng.IntN(total)
		for _, o := range p.ops {
			if w := p.weight(o.name, e); x < w {
				o.fn(p, e)
				break
			} else {
				x -= w
			}
		}
		p.afterStep(e)
	}
	p.cur = fmt.Sprintf("(checks of every ticket at the end of round %d)", p.round)
	p.checkAll(true)
}

// afterStep checks the invariants after every step that changed the chain; a step that
// mined nothing (a revert is found when the transaction is estimated) left it as it was.
func (p *prop) afterStep(e *evM) {
	p.history = append(p.history, fmt.Sprintf("step %d: %s", p.step, p.cur))
	if len(p.history) > 200 {
		p.history = p.history[100:]
	}
	if h := p.head(); h != p.checkedHead {
		p.mined++
		p.checkEvents(p.events...)
		p.checkedHead = h
	}
}

func (p *prop) setupRound(base uint64) {
	p.events = nil
	c := p.c
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	c.MustTransact(c.Deployer, c.USD, devchain.USD.PackMint(p.poor.addr, devchain.USDC(10)), nil)
	for k := 0; k < 4; k++ {
		e := p.newEvent(k, base)
		p.curEvent = e.name
		cfg := p.config(e)
		addr, err := c.CreateEvent(e.issuer.signer, cfg)
		if err != nil {
			p.failf("create event %s: %v", e.name, err)
		}
		e.addr = addr
		for _, s := range e.splits {
			e.addPayee(s.to)
		}
		p.events = append(p.events, e)
		p.allEvents = append(p.allEvents, e)
		p.byAddr[addr] = &actor{name: e.name, addr: addr}
		if !e.native {
			for _, a := range append(append([]*actor{}, p.fans...), p.issuers...) {
				if _, err := p.send(a, c.USD, devchain.USD.PackApprove(addr, max), nil); err != nil {
					p.failf("approve: %v", err)
				}
			}
		}
		p.history = append(p.history, fmt.Sprintf("-- round %d created %s", p.round, p.describeEvent(e)))
	}
}

func (p *prop) describeEvent(e *evM) string {
	cur := "TestUSD"
	if e.native {
		cur = "native"
	}
	var tiers, splits, discs []string
	for _, t := range e.tiers {
		tiers = append(tiers, fmt.Sprintf("%s x%d", t.face, t.supply))
	}
	for _, s := range e.splits {
		splits = append(splits, fmt.Sprintf("%s:%d", p.name(s.to), s.bps))
	}
	for _, d := range e.discounts {
		discs = append(discs, fmt.Sprintf("%d:%d", d.from, d.bps))
	}
	return fmt.Sprintf("%s at %s: %s registry=%v gifts=%v maxPerBuyer=%d markup=%d sellerShare=%d quotas=%v tiers=[%s] splits=[%s] discounts=[%s] doors=%d close=%d cancellable=%v",
		e.name, shortAddr(e.addr), cur, e.registry, e.gifts, e.maxPer, e.markup, e.sellerShare, e.quotas,
		strings.Join(tiers, " "), strings.Join(splits, " "), strings.Join(discs, " "), e.doors, e.close, e.cancellable)
}

// newEvent draws an event's rules. Across k = 0..3: TestUSD with a registry, native with a
// registry, TestUSD without, native without; gifts alternate; two of four are cancelled.
func (p *prop) newEvent(k int, base uint64) *evM {
	r := p.rng
	e := &evM{
		name:        fmt.Sprintf("r%de%d", p.round, k),
		native:      k%2 == 1,
		registry:    k < 2,
		gifts:       (k+p.round)%2 == 0,
		issuer:      p.issuers[(k+p.round)%2],
		cancellable: k == p.round%4 || k == (p.round+2)%4,
		maxPer:      1 + r.IntN(4),
		markup:      []int64{0, 1000, 2500, 5000, 20000}[r.IntN(5)],
		sellerShare: []int64{0, 2500, 5000, 10000}[r.IntN(4)],
		byID:        map[uint64]*tokM{},
		acquired:    map[common.Address]int{},
		credits:     map[common.Address]*big.Int{},
		owed:        new(big.Int),
		pool:        new(big.Int),
		starts:      base + 5*propDay,
	}
	e.doors = base + uint64(3+r.IntN(2))*propDay
	e.close = base + uint64(3+r.IntN(2))*propDay
	for range 1 + r.IntN(3) {
		var face int64
		switch {
		case r.IntN(30) == 0:
			face = 0
		case e.native:
			face = 1e14 + r.Int64N(1e17)
		default:
			face = 5_000_001 + r.Int64N(150_000_000)
		}
		t := tierM{face: big.NewInt(face), supply: 3 + r.IntN(10)}
		e.tiers = append(e.tiers, t)
		e.total += int64(t.supply)
	}
	for i, from := range []uint64{0, base + propDay, base + 2*propDay, base + 3*propDay} {
		if k == 0 && p.round%2 == 1 {
			// A discount that ends: listings made during it fall below the floor after.
			e.discounts = []discM{{from: base + propDay, bps: 2500}, {from: base + 2*propDay, bps: []int64{0, 1000}[r.IntN(2)]}}
			break
		}
		if r.IntN(2) == 0 && !(k == 0 && i == 1) {
			continue
		}
		b := []int64{0, 500, 1000, 2500, 3333, 5000, 10000}[r.IntN(7)]
		if from == 0 && b == 0 {
			continue
		}
		e.discounts = append(e.discounts, discM{from: from, bps: b})
	}
	choices := []int64{0, 1000, 2500, 5000, 10000}
	for cat := range e.quotas {
		e.quotas[cat] = choices[r.IntN(len(choices))]
	}
	if e.registry {
		e.quotas[devchain.Fan] = max(e.quotas[devchain.Fan], 5000)
	} else {
		e.quotas[0] = []int64{4000, 6000, 10000}[r.IntN(3)]
	}
	others := []*actor{p.artist, p.promoter, p.venue, p.venueR}
	r.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	parties := []common.Address{e.issuer.addr}
	for _, o := range others[:r.IntN(len(others)+1)] {
		parties = append(parties, o.addr)
	}
	if e.native && !slices.Contains(parties, p.venueR.addr) && r.IntN(3) > 0 {
		parties = append(parties, p.venueR.addr)
	}
	cuts := []int64{0, bpsDenom}
	for range len(parties) - 1 {
		cuts = append(cuts, r.Int64N(bpsDenom+1))
	}
	slices.Sort(cuts)
	for i, a := range parties {
		e.splits = append(e.splits, splitM{to: a, bps: cuts[i+1] - cuts[i]})
	}
	return e
}

func (p *prop) config(e *evM) events.EventConfig {
	cfg := events.EventConfig{
		Name:        "Property " + e.name,
		Venue:       "Random Hall",
		BaseURI:     "https://stagepass.example/meta/",
		StartsAt:    new(big.Int).SetUint64(e.starts),
		DoorsOpenAt: new(big.Int).SetUint64(e.doors),
		Currency:    p.c.USD,
		Rules: events.Rules{
			MaxPerBuyer:           uint16(e.maxPer),
			MaxResaleMarkupBps:    uint16(e.markup),
			SellerMarkupShareBps:  uint16(e.sellerShare),
			GiftsAllowed:          e.gifts,
			ResaleClosesAt:        new(big.Int).SetUint64(e.close),
			PresaleEndsAt:         new(big.Int),
			SuperfanPresaleEndsAt: new(big.Int),
		},
		Gates: []common.Address{p.gate.addr},
	}
	if e.native {
		cfg.Currency = zeroAddr
	}
	if e.registry {
		cfg.CategoryRegistry = p.registry
	}
	for i, t := range e.tiers {
		cfg.Tiers = append(cfg.Tiers, events.TierConfig{Name: fmt.Sprintf("tier %d", i), FaceValue: t.face, Supply: uint32(t.supply)})
	}
	for _, d := range e.discounts {
		cfg.Rules.Discounts = append(cfg.Rules.Discounts, events.Discount{From: new(big.Int).SetUint64(d.from), MaxDiscountBps: uint16(d.bps)})
	}
	for i, q := range e.quotas {
		cfg.Rules.CategoryQuotaBps[i] = uint16(q)
	}
	for i, s := range e.splits {
		cfg.Splits = append(cfg.Splits, events.Split{Account: s.to, Bps: uint16(s.bps), Role: uint8(min(i, 4))})
	}
	return cfg
}

// ---------------------------------------------------------------- random choices

func (p *prop) pickFan() *actor { return p.fans[p.rng.IntN(len(p.fans))] }

func (p *prop) pick(ts []*tokM) *tokM {
	if len(ts) == 0 {
		return nil
	}
	return ts[p.rng.IntN(len(ts))]
}

// pickToken picks a live ticket (or, now and then, any ticket ever minted) and who acts on
// it: its owner `ownerPct` percent of the time, else a random fan.
func (p *prop) pickToken(e *evM, ownerPct int) (*tokM, *actor) {
	tok := p.pick(e.live())
	if tok == nil || p.rng.IntN(10) == 0 {
		tok = p.pick(e.tokens)
	}
	if tok == nil {
		return nil, nil
	}
	if tok.owner != zeroAddr && p.rng.IntN(100) < ownerPct {
		return tok, p.byAddr[tok.owner]
	}
	return tok, p.pickFan()
}

func (p *prop) randBelow(n *big.Int) *big.Int {
	if n.Sign() <= 0 {
		return new(big.Int)
	}
	if n.IsInt64() {
		return big.NewInt(p.rng.Int64N(n.Int64()))
	}
	// Prices here fit an int64; a larger bound is scaled from 63 random bits.
	x := new(big.Int).Mul(n, new(big.Int).SetUint64(p.rng.Uint64()>>1))
	return x.Rsh(x, 63)
}

// pickPrice is a resale price: mostly within [lo, hi], sometimes just outside or absurd.
func (p *prop) pickPrice(lo, hi *big.Int) *big.Int {
	switch x := p.rng.IntN(100); {
	case x < 60:
		return bigAdd(lo, p.randBelow(bigAdd(bigSub(hi, lo), big.NewInt(1))))
	case x < 68:
		if lo.Sign() > 0 {
			return bigSub(lo, big.NewInt(1))
		}
		return new(big.Int)
	case x < 76:
		return bigAdd(hi, big.NewInt(1))
	case x < 80:
		return new(big.Int)
	case x < 88:
		return new(big.Int).Set(lo)
	case x < 97:
		return new(big.Int).Set(hi)
	default:
		return new(big.Int).Lsh(big.NewInt(1), 88)
	}
}

// pickValue is the native coin sent with a payment of `total`: mostly right, sometimes not.
func (p *prop) pickValue(e *evM, total *big.Int) *big.Int {
	x := p.rng.IntN(100)
	if !e.native {
		if x < 3 {
			return big.NewInt(1)
		}
		return new(big.Int)
	}
	switch {
	case x < 5:
		return bigAdd(total, big.NewInt(1))
	case x < 10 && total.Sign() > 0:
		return bigSub(total, big.NewInt(1))
	}
	return new(big.Int).Set(total)
}

func bigID(id uint64) *big.Int { return new(big.Int).SetUint64(id) }

// ---------------------------------------------------------------- operations

func (p *prop) opBuy(e *evM) {
	r := p.rng
	a := p.pickFan()
	tier := r.IntN(len(e.tiers))
	if r.IntN(25) == 0 {
		tier = len(e.tiers)
	}
	qty := 1 + r.IntN(3)
	if r.IntN(30) == 0 {
		qty = 0
	}
	unit := new(big.Int)
	if tier < len(e.tiers) {
		unit = e.floor(e.tiers[tier].face, p.now)
	}
	maxUnit := new(big.Int).Set(unit)
	switch x := r.IntN(20); {
	case x == 0 && unit.Sign() > 0:
		maxUnit = bigSub(unit, big.NewInt(1))
	case x == 1:
		maxUnit = bigAdd(unit, big.NewInt(1000))
	}
	total := new(big.Int).Mul(unit, big.NewInt(int64(qty)))
	value := p.pickValue(e, total)
	p.describe("buy", "%s buys %d of tier %d (unit %s, max %s, value %s)", a.name, qty, tier, unit, maxUnit, value)

	want := ""
	switch {
	case tier >= len(e.tiers):
		want = "UnknownTier"
	case qty == 0:
		want = "ZeroQuantity"
	case qty > e.tiers[tier].supply-e.tiers[tier].sold:
		want = "SoldOut"
	case unit.Cmp(maxUnit) > 0:
		want = "PriceAboveMax"
	default:
		acq, cnt := e.acquired[a.addr], e.cnt
		for i := 0; i < qty && want == ""; i++ {
			want = p.hookTo(e, zeroAddr, a.addr, false, &acq, &cnt)
		}
		if want == "" {
			want = p.paymentError(e, a, total, value)
		}
	}
	var w *watch
	var exp *deltas
	var pos []payout
	if want == "" {
		exp = newDeltas()
		exp.add(payerOf(e, a), new(big.Int).Neg(total))
		pos = p.partyPayouts(e, total)
		expectPayouts(e, exp, pos)
		w = p.watch(e, exp)
	}
	rc, err := p.send(a, e.addr, devchain.Ticket.PackBuy(big.NewInt(int64(tier)), big.NewInt(int64(qty)), maxUnit), value)
	if !p.expect(want, err) {
		return
	}
	t := &e.tiers[tier]
	var moves []tokMove
	for i := 0; i < qty; i++ {
		moves = append(moves, tokMove{zeroAddr, a.addr, uint64(tier)<<32 | uint64(t.sold+1+i)})
	}
	p.checkMoves(e, rc, moves)
	p.checkMoney(w, rc, a.signer.Address, payerOf(e, a), total, exp)
	found := false
	for _, l := range rc.Logs {
		if ev, err := devchain.Ticket.UnpackPurchasedEvent(l); err == nil && l.Address == e.addr {
			found = true
			if ev.Buyer != a.addr || ev.UnitPrice.Cmp(unit) != 0 || ev.Quantity.Int64() != int64(qty) || ev.FirstTokenId.Uint64() != moves[0].id {
				p.failf("Purchased %+v, model unit price %s", ev, unit)
			}
			if bt := p.blockTime(rc); unit.Cmp(e.floor(t.face, bt)) != 0 {
				p.failf("sold at %s, but the price at block time %d is %s", unit, bt, e.floor(t.face, bt))
			}
		}
	}
	if !found {
		p.failf("no Purchased log")
	}
	cat := p.catOf(e, a.addr)
	var toks []*tokM
	for _, m := range moves {
		tok := &tokM{id: m.id, tier: tier, owner: a.addr, paid: new(big.Int).Set(unit), cat: cat, listing: new(big.Int)}
		e.tokens = append(e.tokens, tok)
		e.byID[tok.id] = tok
		toks = append(toks, tok)
		e.acquired[a.addr]++
		e.cnt[cat]++
	}
	t.sold += qty
	e.owed = bigAdd(e.owed, total)
	applyPayouts(e, pos)
	for _, tok := range toks {
		p.checkTicket(e, tok)
	}
}

func (p *prop) opList(e *evM) {
	tok, a := p.pickToken(e, 85)
	if tok == nil {
		p.opBuy(e)
		return
	}
	face := e.tiers[tok.tier].face
	lo, hi := e.floor(face, p.now), e.capPrice(face)
	price := p.pickPrice(lo, hi)
	p.describe("list", "%s lists %s at %s (range [%s, %s])", a.name, tokenName(tok.id), price, lo, hi)
	want := ""
	switch {
	case tok.owner != a.addr:
		want = "NotTicketOwner"
	case tok.checkedIn:
		want = "TicketCheckedIn"
	case e.cancelled:
		want = "EventIsCancelled"
	case p.now >= e.close:
		want = "SalesClosed"
	case !validResalePrice(price, lo, hi):
		want = "PriceOutOfRange"
	}
	rc, err := p.send(a, e.addr, devchain.Ticket.PackList(bigID(tok.id), price), nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	tok.listing = price
	p.checkTicket(e, tok)
}

func (p *prop) opCancelListing(e *evM) {
	tok := p.pick(e.listed())
	var a *actor
	if tok != nil && p.rng.IntN(100) < 85 {
		a = p.byAddr[tok.owner]
	} else {
		tok, a = p.pickToken(e, 50)
	}
	if tok == nil {
		p.opBuy(e)
		return
	}
	p.describe("cancelListing", "%s unlists %s (listed at %s)", a.name, tokenName(tok.id), tok.listing)
	want := ""
	switch {
	case tok.owner != a.addr:
		want = "NotTicketOwner"
	case tok.listing.Sign() == 0:
		want = "NotListed"
	}
	rc, err := p.send(a, e.addr, devchain.Ticket.PackCancelListing(bigID(tok.id)), nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	tok.listing = new(big.Int)
	p.checkTicket(e, tok)
}

func (p *prop) opBuyListed(e *evM) {
	r := p.rng
	tok := p.pick(e.listed())
	if tok == nil || r.IntN(5) == 0 {
		tok, _ = p.pickToken(e, 0)
	}
	if tok == nil {
		p.opBuy(e)
		return
	}
	buyer := p.pickFan()
	if tok.owner != zeroAddr && r.IntN(12) == 0 {
		buyer = p.byAddr[tok.owner]
	}
	price := new(big.Int).Set(tok.listing)
	maxPrice := new(big.Int).Set(price)
	switch x := r.IntN(20); {
	case x < 2 && price.Sign() > 0:
		maxPrice = bigSub(price, big.NewInt(1))
	case x == 2:
		maxPrice = bigAdd(price, big.NewInt(123))
	}
	value := p.pickValue(e, price)
	face := e.tiers[tok.tier].face
	lo, hi := e.floor(face, p.now), e.capPrice(face)
	p.describe("buyListed", "%s buys %s from %s at %s (max %s, value %s, range [%s, %s])",
		buyer.name, tokenName(tok.id), p.name(tok.owner), price, maxPrice, value, lo, hi)
	want := ""
	switch {
	case price.Sign() == 0:
		want = "NotListed"
	case price.Cmp(maxPrice) > 0:
		want = "PriceAboveMax"
	case !validResalePrice(price, lo, hi):
		want = "PriceOutOfRange"
	case tok.checkedIn:
		want = "TicketCheckedIn"
	default:
		acq, cnt := e.acquired[buyer.addr], e.cnt
		cnt[tok.cat]--
		want = p.hookTo(e, tok.owner, buyer.addr, true, &acq, &cnt)
		if want == "" {
			want = p.paymentError(e, buyer, price, value)
		}
	}
	var w *watch
	var exp *deltas
	var pos []payout
	seller := tok.owner
	if want == "" {
		sellerAmt := e.sellerAmount(tok, price)
		pos = append([]payout{p.payTo(e, seller, sellerAmt)}, p.partyPayouts(e, bigSub(price, sellerAmt))...)
		exp = newDeltas()
		exp.add(payerOf(e, buyer), new(big.Int).Neg(price))
		expectPayouts(e, exp, pos)
		w = p.watch(e, exp)
	}
	rc, err := p.send(buyer, e.addr, devchain.Ticket.PackBuyListed(bigID(tok.id), maxPrice), value)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, []tokMove{{seller, buyer.addr, tok.id}})
	p.checkMoney(w, rc, buyer.signer.Address, payerOf(e, buyer), price, exp)
	p.checkResaleBounds(e, tok, price, rc)
	found := false
	for _, l := range rc.Logs {
		if ev, err := devchain.Ticket.UnpackResoldEvent(l); err == nil && l.Address == e.addr {
			found = true
			if ev.Price.Cmp(price) != 0 || ev.SellerAmount.Cmp(pos[0].amount) != 0 || ev.Seller != seller || ev.Buyer != buyer.addr {
				p.failf("Resold %+v, model price %s seller amount %s", ev, price, pos[0].amount)
			}
		}
	}
	if !found {
		p.failf("no Resold log")
	}
	e.owed = bigAdd(bigSub(e.owed, tok.paid), price)
	tok.paid = price
	p.moveToken(e, tok, buyer.addr)
	applyPayouts(e, pos)
	p.checkTicket(e, tok)
}

// checkResaleBounds: no resale outside [floor, cap] at the time of sale, by the model and by
// the contract's own prices() view at the sale's block.
func (p *prop) checkResaleBounds(e *evM, tok *tokM, price *big.Int, rc *types.Receipt) {
	bt := p.blockTime(rc)
	face := e.tiers[tok.tier].face
	lo, hi := e.floor(face, bt), e.capPrice(face)
	if price.Cmp(lo) < 0 || price.Cmp(hi) > 0 {
		p.failf("resale of %s at %s outside [%s, %s] at block time %d", tokenName(tok.id), price, lo, hi, bt)
	}
	pr := mustRead(devchain.Ticket.UnpackPrices(p.view(e.addr, devchain.Ticket.PackPrices(big.NewInt(int64(tok.tier))))))
	if pr.Floor.Cmp(lo) != 0 || pr.Cap.Cmp(hi) != 0 || pr.Primary.Cmp(lo) != 0 {
		p.failf("prices(%d) at the sale's block = {%s %s %s}, model floor %s cap %s", tok.tier, pr.Primary, pr.Floor, pr.Cap, lo, hi)
	}
	if price.Cmp(pr.Floor) < 0 || price.Cmp(pr.Cap) > 0 {
		p.failf("resale of %s at %s outside prices() [%s, %s]", tokenName(tok.id), price, pr.Floor, pr.Cap)
	}
}

// moveToken applies a transfer (resale or gift) to the model.
func (p *prop) moveToken(e *evM, tok *tokM, to common.Address) {
	e.cnt[tok.cat]--
	cat := p.catOf(e, to)
	e.cnt[cat]++
	e.acquired[to]++
	tok.owner, tok.cat, tok.listing, tok.approved = to, cat, new(big.Int), zeroAddr
	tok.cardFresh = false
}

func (p *prop) opGift(e *evM) {
	r := p.rng
	tok := p.pick(e.live())
	if tok == nil {
		p.opBuy(e)
		return
	}
	owner := p.byAddr[tok.owner]
	sender := owner
	switch x := r.IntN(100); {
	case x < 10 && tok.approved != zeroAddr:
		sender = p.byAddr[tok.approved]
	case x >= 85:
		sender = p.pickFan()
	}
	from := tok.owner
	if r.IntN(12) == 0 {
		from = p.pickFan().addr
	}
	to := p.pickFan()
	safe := r.IntN(7) == 0
	if safe && r.IntN(2) == 0 {
		to = p.fanR
	}
	p.describe("gift", "%s calls %s(%s, %s, %s) (owner %s, approved %s)", sender.name,
		map[bool]string{true: "safeTransferFrom", false: "transferFrom"}[safe], p.name(from), to.name, tokenName(tok.id), owner.name, p.name(tok.approved))
	// transferFrom checks ownership and approval first, then the transfer hook's rules.
	want := ""
	switch {
	case tok.owner != from:
		want = "TransferFromIncorrectOwner"
	case sender.addr != from && sender.addr != tok.approved:
		want = "NotOwnerNorApproved"
	case tok.checkedIn:
		want = "TicketCheckedIn"
	default:
		acq, cnt := e.acquired[to.addr], e.cnt
		cnt[tok.cat]--
		want = p.hookTo(e, from, to.addr, false, &acq, &cnt)
	}
	if want == "" && safe && p.rejecting[to.addr] {
		want = "TransferToNonERC721ReceiverImplementer"
	}
	data := devchain.Ticket.PackTransferFrom(from, to.addr, bigID(tok.id))
	if safe {
		data = devchain.Ticket.PackSafeTransferFrom(from, to.addr, bigID(tok.id))
	}
	rc, err := p.send(sender, e.addr, data, nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, []tokMove{{from, to.addr, tok.id}})
	p.moveToken(e, tok, to.addr)
	p.checkTicket(e, tok)
}

func (p *prop) opApprove(e *evM) {
	tok, a := p.pickToken(e, 80)
	if tok == nil {
		p.opBuy(e)
		return
	}
	op := p.pickFan()
	p.describe("approve", "%s approves %s for %s", a.name, op.name, tokenName(tok.id))
	want := ""
	switch {
	case tok.owner == zeroAddr:
		want = "TokenDoesNotExist"
	case tok.owner != a.addr:
		want = "NotOwnerNorApproved"
	}
	rc, err := p.send(a, e.addr, devchain.Ticket.PackApprove(op.addr, bigID(tok.id)), nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	tok.approved = op.addr
}

// someTicketID is a live ticket mostly, now and then a burned one or one never minted.
func (p *prop) someTicketID(e *evM) (uint64, *tokM) {
	switch x := p.rng.IntN(100); {
	case x < 8:
		tier := p.rng.IntN(len(e.tiers))
		id := uint64(tier)<<32 | uint64(e.tiers[tier].sold+1+p.rng.IntN(3))
		return id, nil
	case x < 16:
		var burned []*tokM
		for _, t := range e.tokens {
			if t.owner == zeroAddr {
				burned = append(burned, t)
			}
		}
		if t := p.pick(burned); t != nil {
			return t.id, t
		}
	}
	if t := p.pick(e.live()); t != nil {
		return t.id, t
	}
	return uint64(1), e.byID[1]
}

func (p *prop) opCheckIn(e *evM) {
	sender := p.gate
	if p.rng.IntN(100) < 12 {
		sender = p.pickFan()
	}
	id, tok := p.someTicketID(e)
	p.describe("checkIn", "%s checks in %s", sender.name, tokenName(id))
	want := ""
	switch {
	case sender != p.gate:
		want = "NotGate"
	case e.cancelled:
		want = "EventIsCancelled"
	case p.now < e.doors:
		want = "DoorsNotOpen"
	case tok == nil || tok.owner == zeroAddr:
		want = "TokenDoesNotExist"
	case tok.checkedIn:
		want = "TicketCheckedIn"
	}
	rc, err := p.send(sender, e.addr, devchain.Ticket.PackCheckIn(bigID(id)), nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	tok.checkedIn = true
	e.owed = bigSub(e.owed, tok.paid)
	p.checkTicket(e, tok)
}

func (p *prop) opCheckInBatch(e *evM) {
	sender := p.gate
	if p.rng.IntN(100) < 8 {
		sender = p.pickFan()
	}
	var ids []uint64
	for range 1 + p.rng.IntN(6) {
		if t := p.pick(e.live()); t != nil && p.rng.IntN(100) < 94 {
			ids = append(ids, t.id)
		} else {
			id, _ := p.someTicketID(e)
			ids = append(ids, id)
		}
	}
	var names []string
	for _, id := range ids {
		names = append(names, tokenName(id))
	}
	p.describe("checkInBatch", "%s checks in [%s]", sender.name, strings.Join(names, " "))
	want := ""
	var admitted []*tokM
	switch {
	case sender != p.gate:
		want = "NotGate"
	case e.cancelled:
		want = "EventIsCancelled"
	case p.now < e.doors:
		want = "DoorsNotOpen"
	default:
		for _, id := range ids {
			tok := e.byID[id]
			if tok == nil || tok.owner == zeroAddr {
				want = "TokenDoesNotExist"
				break
			}
			if !tok.checkedIn && !slices.Contains(admitted, tok) {
				admitted = append(admitted, tok)
			}
		}
	}
	var bigIDs []*big.Int
	for _, id := range ids {
		bigIDs = append(bigIDs, bigID(id))
	}
	rc, err := p.send(sender, e.addr, devchain.Ticket.PackCheckInBatch(bigIDs), nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	var logged []uint64
	for _, l := range rc.Logs {
		if ev, err := devchain.Ticket.UnpackCheckedInBatchEvent(l); err == nil && l.Address == e.addr {
			for _, id := range ev.TokenIds {
				logged = append(logged, id.Uint64())
			}
		}
	}
	var wantIDs []uint64
	for _, tok := range admitted {
		wantIDs = append(wantIDs, tok.id)
		tok.checkedIn = true
		e.owed = bigSub(e.owed, tok.paid)
	}
	if !slices.Equal(logged, wantIDs) {
		p.failf("CheckedInBatch admitted %v, model %v", logged, wantIDs)
	}
	for _, tok := range admitted {
		p.checkTicket(e, tok)
	}
}

func (p *prop) opSetCategory(e *evM) {
	f := p.pickFan()
	cat := uint8(p.rng.IntN(5))
	if p.rng.IntN(10) == 0 {
		cat = uint8(5 + p.rng.IntN(3))
	}
	p.describe("setCategory", "registry puts %s in category %d", f.name, cat)
	p.setCategory(f.addr, cat)
	p.stats["setCategory ok"]++
}

func (p *prop) opFundRefunds(e *evM) {
	a := p.pickFan()
	if p.rng.IntN(3) == 0 {
		a = e.issuer
	}
	amount := p.randBelow(bigAdd(e.tiers[0].face, big.NewInt(1)))
	if p.rng.IntN(10) == 0 {
		amount = new(big.Int)
	}
	value := p.pickValue(e, amount)
	p.describe("fundRefunds", "%s funds refunds with %s (value %s)", a.name, amount, value)
	want := p.paymentError(e, a, amount, value)
	var w *watch
	var exp *deltas
	if want == "" {
		exp = newDeltas()
		exp.add(payerOf(e, a), new(big.Int).Neg(amount))
		exp.add(e.addr, amount)
		w = p.watch(e, exp)
	}
	rc, err := p.send(a, e.addr, devchain.Ticket.PackFundRefunds(amount), value)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	p.checkMoney(w, rc, a.signer.Address, zeroAddr, nil, exp)
	e.pool = bigAdd(e.pool, amount)
}

// opCancelEvent: the issuer cancels a cancellable event once the round is under way (always,
// when forced); every other attempt is one the contract mustRead refuse.
func (p *prop) opCancelEvent(e *evM, forced bool) {
	r := p.rng
	needed := bigSub(e.owed, e.pool)
	if needed.Sign() < 0 {
		needed = new(big.Int)
	}
	allowed := e.cancellable && (forced || p.phase >= 2)
	a := e.issuer
	amount := new(big.Int).Set(needed)
	switch x := r.IntN(100); {
	case forced:
		if x < 50 {
			amount = bigAdd(amount, p.randBelow(bigAdd(e.tiers[0].face, big.NewInt(1))))
		}
	case x < 15 && needed.Sign() > 0:
		amount = bigSub(needed, big.NewInt(1))
	case x < 30:
		amount = bigAdd(amount, p.randBelow(bigAdd(e.tiers[0].face, big.NewInt(1))))
	case x < 45 || !allowed:
		a = []*actor{p.pickFan(), p.issuers[0], p.issuers[1], p.gate}[r.IntN(4)]
	}
	value := new(big.Int)
	if e.native {
		value = new(big.Int).Set(amount)
	}
	if !forced && r.IntN(12) == 0 {
		value = bigAdd(value, big.NewInt(1))
	}
	predict := func() string {
		switch {
		case a != e.issuer:
			return "NotIssuer"
		case e.cancelled:
			return "EventIsCancelled"
		}
		if amount.Sign() != 0 || value.Sign() != 0 {
			if err := p.paymentError(e, a, amount, value); err != "" {
				return err
			}
		}
		if bigAdd(e.pool, amount).Cmp(e.owed) < 0 {
			return "RefundsUnderfunded"
		}
		return ""
	}
	want := predict()
	if want == "" && !allowed {
		a = p.pickFan() // this event stays on: make it an attempt by a stranger
		want = predict()
	}
	p.describe("cancelEvent", "%s cancels with %s more (value %s; owed %s, pool %s)", a.name, amount, value, e.owed, e.pool)
	var w *watch
	var exp *deltas
	if want == "" {
		exp = newDeltas()
		exp.add(payerOf(e, a), new(big.Int).Neg(amount))
		exp.add(e.addr, amount)
		w = p.watch(e, exp)
	}
	rc, err := p.send(a, e.addr, devchain.Ticket.PackCancelEvent(amount), value)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	p.checkMoney(w, rc, a.signer.Address, zeroAddr, nil, exp)
	for _, l := range rc.Logs {
		if ev, err := devchain.Ticket.UnpackCancelledEvent(l); err == nil && l.Address == e.addr && ev.RefundsOwed.Cmp(e.owed) != 0 {
			p.failf("Cancelled(refundsOwed %s), model %s", ev.RefundsOwed, e.owed)
		}
	}
	e.pool = bigAdd(e.pool, amount)
	e.cancelled = true
}

func (p *prop) opClaimRefund(e *evM) {
	r := p.rng
	holder := p.pickFan()
	if t := p.pick(e.live()); t != nil && r.IntN(100) < 85 {
		holder = p.byAddr[t.owner]
	}
	var mine []*tokM
	for _, t := range e.live() {
		if t.owner == holder.addr {
			mine = append(mine, t)
		}
	}
	r.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
	var ids []uint64
	for i, t := range mine {
		if i == 0 || r.IntN(3) > 0 {
			ids = append(ids, t.id)
		}
	}
	switch x := r.IntN(100); {
	case x < 8:
		if t := p.pick(e.tokens); t != nil {
			ids = slices.Insert(ids, r.IntN(len(ids)+1), t.id)
		}
	case x < 12:
		ids = nil
	case x < 16 && len(ids) > 0:
		ids = append(ids, ids[0])
	}
	var names []string
	for _, id := range ids {
		names = append(names, tokenName(id))
	}
	p.describe("claimRefund", "%s claims refunds of [%s]", holder.name, strings.Join(names, " "))
	want := ""
	total := new(big.Int)
	var burnt []*tokM
	if !e.cancelled {
		want = "EventNotCancelled"
	} else {
		for _, id := range ids {
			tok := e.byID[id]
			if tok == nil || tok.owner != holder.addr || slices.Contains(burnt, tok) {
				want = "NotTicketOwner"
				break
			}
			if tok.checkedIn {
				want = "TicketCheckedIn"
				break
			}
			burnt = append(burnt, tok)
			total = bigAdd(total, tok.paid)
		}
	}
	var w *watch
	var exp *deltas
	var po payout
	if want == "" {
		po = p.payTo(e, holder.addr, total)
		exp = newDeltas()
		exp.add(e.addr, new(big.Int).Neg(total))
		expectPayouts(e, exp, []payout{po})
		exp.add(holder.signer.Address, new(big.Int))
		w = p.watch(e, exp)
	}
	var bigIDs []*big.Int
	for _, id := range ids {
		bigIDs = append(bigIDs, bigID(id))
	}
	rc, err := p.send(holder, e.addr, devchain.Ticket.PackClaimRefund(bigIDs), nil)
	if !p.expect(want, err) {
		return
	}
	var moves []tokMove
	for _, tok := range burnt {
		moves = append(moves, tokMove{holder.addr, zeroAddr, tok.id})
	}
	p.checkMoves(e, rc, moves)
	p.checkMoney(w, rc, holder.signer.Address, zeroAddr, nil, exp)
	for _, tok := range burnt {
		e.cnt[tok.cat]--
		e.owed = bigSub(e.owed, tok.paid)
		tok.owner, tok.listing, tok.approved = zeroAddr, new(big.Int), zeroAddr
		p.checkTicket(e, tok)
	}
	e.pool = bigSub(e.pool, total)
	applyPayouts(e, []payout{po})
}

func (p *prop) opWithdraw(e *evM) {
	r := p.rng
	var owed []*actor
	for _, a := range e.payees {
		if e.creditOf(a).Sign() > 0 {
			owed = append(owed, p.byAddr[a])
		}
	}
	var sender *actor
	switch x := r.IntN(100); {
	case x < 60 && len(owed) > 0:
		sender = owed[r.IntN(len(owed))]
	case x < 80:
		sender = []*actor{p.fanR, p.venueR}[r.IntN(2)]
	default:
		sender = p.pickFan()
	}
	to := p.wallet
	switch x := r.IntN(100); {
	case x < 25:
		to = sender
	case x < 40:
		to = []*actor{p.fanR, p.venueR}[r.IntN(2)]
	}
	amount := e.creditOf(sender.addr)
	p.describe("withdraw", "%s withdraws %s to %s", sender.name, amount, to.name)
	want := ""
	switch {
	case amount.Sign() == 0:
		want = "NothingToWithdraw"
	case e.native && p.rejecting[to.addr]:
		want = "PaymentFailed"
	}
	var w *watch
	var exp *deltas
	if want == "" {
		exp = newDeltas()
		exp.add(e.addr, new(big.Int).Neg(amount))
		exp.add(to.addr, amount)
		exp.add(sender.signer.Address, new(big.Int))
		w = p.watch(e, exp)
	}
	rc, err := p.send(sender, e.addr, devchain.Ticket.PackWithdraw(to.addr), nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	p.checkMoney(w, rc, sender.signer.Address, zeroAddr, nil, exp)
	e.credits[sender.addr] = new(big.Int)
}

func (p *prop) opWithdrawSurplus(e *evM) {
	a := e.issuer
	if p.rng.IntN(4) == 0 {
		a = []*actor{p.pickFan(), p.issuers[0], p.issuers[1]}[p.rng.IntN(3)]
	}
	surplus := bigSub(e.pool, e.owed)
	p.describe("withdrawRefundSurplus", "%s takes the refund surplus (pool %s, owed %s)", a.name, e.pool, e.owed)
	want := ""
	switch {
	case a != e.issuer:
		want = "NotIssuer"
	case !e.cancelled:
		want = "EventNotCancelled"
	case surplus.Sign() == 0:
		want = "NothingToWithdraw"
	}
	var w *watch
	var exp *deltas
	var po payout
	if want == "" {
		po = p.payTo(e, a.addr, surplus)
		exp = newDeltas()
		exp.add(e.addr, new(big.Int).Neg(surplus))
		expectPayouts(e, exp, []payout{po})
		w = p.watch(e, exp)
	}
	rc, err := p.send(a, e.addr, devchain.Ticket.PackWithdrawRefundSurplus(), nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	p.checkMoney(w, rc, a.signer.Address, zeroAddr, nil, exp)
	e.pool = new(big.Int).Set(e.owed)
	applyPayouts(e, []payout{po})
}

// ---------------------------------------------------------------- statistics

func (p *prop) logStats(d time.Duration) {
	keys := make([]string, 0, len(p.stats))
	for k := range p.stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %-45s %d", k, p.stats[k])
	}
	tickets := 0
	for _, e := range p.allEvents {
		tickets += len(e.tokens)
	}
	p.t.Logf("%d steps (%d mined a block) over %d rounds, %d events, %d tickets, in %s; outcomes:%s",
		p.step, p.mined, p.round, len(p.allEvents), tickets, d.Round(time.Millisecond), b.String())
}

// requireCoverage fails a long run that never reached the situations the invariants are
// about: a generator that drifted away from them would make the test pass vacuously.
func (p *prop) requireCoverage() {
	var missing []string
	for _, group := range []string{
		"buy ok", "buy BuyerLimitReached", "buy CategoryQuotaReached", "buy SoldOut", "list ok",
		"list PriceOutOfRange", "buyListed ok", "buyListed PriceOutOfRange|buyListed PriceAboveMax",
		"gift ok", "gift GiftsNotAllowed", "cancelListing ok", "checkIn ok", "checkInBatch ok",
		"list TicketCheckedIn|gift TicketCheckedIn|buyListed TicketCheckedIn",
		"buy SalesClosed|list SalesClosed|gift SalesClosed|buyListed SalesClosed",
		"cancelEvent ok", "cancelEvent RefundsUnderfunded", "claimRefund ok", "withdraw ok",
		"cardRequest ok", "cardRequest BuyerLimitReached", "cardFulfil item ok",
		"cardFulfil item CategoryQuotaReached|cardFulfil item SoldOut|cardFulfil item BuyerLimitReached",
		"cardReverse ticket burned", "cardReverse ticket marked",
	} {
		hit := false
		for _, k := range strings.Split(group, "|") {
			hit = hit || p.stats[k] > 0
		}
		if !hit {
			missing = append(missing, group)
		}
	}
	if len(missing) > 0 {
		p.t.Errorf("seed %d: the run never reached: %s", p.seed, strings.Join(missing, ", "))
	}
}

// ---------------------------------------------------------------- big.Int helpers

func bigAdd(a, b *big.Int) *big.Int { return new(big.Int).Add(a, b) }
func bigSub(a, b *big.Int) *big.Int { return new(big.Int).Sub(a, b) }

// mulDiv is a * bps / 10000, rounded down, as the contract computes it.
func mulDiv(a *big.Int, bps int64) *big.Int {
	x := new(big.Int).Mul(a, big.NewInt(bps))
	return x.Quo(x, big.NewInt(bpsDenom))
}

// ---------------------------------------------------------------- card purchase (OracleHub)

// opCardRequest: a fan asks to buy by card (requestPurchase); the model predicts the early
// checks in the contract's order and keeps the request until a report fulfils it.
func (p *prop) opCardRequest(e *evM) {
	r := p.rng
	a := p.pickFan()
	tier := r.IntN(len(e.tiers))
	if r.IntN(25) == 0 {
		tier = len(e.tiers)
	}
	qty := 1 + r.IntN(3)
	if r.IntN(30) == 0 {
		qty = 0
	}
	p.cardN++
	pid := devchain.PaymentID(fmt.Sprintf("pi_property_%d", p.cardN))
	p.describe("cardRequest", "%s asks to buy %d of tier %d by card", a.name, qty, tier)
	want := ""
	switch {
	case tier >= len(e.tiers):
		want = "UnknownTier"
	case qty == 0:
		want = "ZeroQuantity"
	case qty > e.tiers[tier].supply-e.tiers[tier].sold:
		want = "SoldOut"
	case e.cancelled:
		want = "EventIsCancelled"
	case p.now >= e.close:
		want = "SalesClosed"
	case e.acquired[a.addr]+qty > e.maxPer:
		want = "BuyerLimitReached"
	}
	rc, err := p.send(a, e.addr, devchain.Ticket.PackRequestPurchase(pid, big.NewInt(int64(tier)), big.NewInt(int64(qty))), nil)
	if !p.expect(want, err) {
		return
	}
	p.checkMoves(e, rc, nil)
	unit := e.floor(e.tiers[tier].face, p.now)
	for _, l := range rc.Logs {
		if ev, err := devchain.Ticket.UnpackPurchaseRequestedEvent(l); err == nil {
			if ev.Buyer != a.addr || ev.PaymentId != pid || ev.Amount.Cmp(bigMul(unit, int64(qty))) != 0 {
				p.failf("PurchaseRequested %+v, model buyer %s amount %s", ev, a.name, bigMul(unit, int64(qty)))
			}
			e.pending = append(e.pending, cardReqM{
				p:     events.CardPurchase{RequestId: ev.RequestId, PaymentId: ev.PaymentId, Buyer: ev.Buyer, Tier: ev.Tier, Quantity: ev.Qty, Amount: ev.Amount},
				buyer: a, tier: tier, qty: qty, unit: unit,
			})
			return
		}
	}
	p.failf("no PurchaseRequested log")
}

// opCardFulfil: k oracles report up to three pending payments captured, in one report. Each
// purchase mints or, if a rule refuses it now, fails refundable; the model predicts which,
// in order, with the rules as they stand at mint time.
func (p *prop) opCardFulfil(e *evM) {
	n := min(len(e.pending), 1+p.rng.IntN(3))
	batch := e.pending[:n]
	p.describe("cardFulfil", "the oracles report %d card payments captured", n)
	acq := maps.Clone(e.acquired)
	cnt := e.cnt
	sold := make([]int, len(e.tiers))
	for i, t := range e.tiers {
		sold[i] = t.sold
	}
	wants := make([]string, n)
	var moves []tokMove
	for i, q := range batch {
		if q.qty > e.tiers[q.tier].supply-sold[q.tier] {
			wants[i] = "SoldOut"
			continue
		}
		a, c := acq[q.buyer.addr], cnt
		for k := 0; k < q.qty && wants[i] == ""; k++ {
			wants[i] = p.hookTo(e, zeroAddr, q.buyer.addr, false, &a, &c)
		}
		if wants[i] != "" {
			continue
		}
		acq[q.buyer.addr], cnt = a, c
		for k := 0; k < q.qty; k++ {
			moves = append(moves, tokMove{zeroAddr, q.buyer.addr, uint64(q.tier)<<32 | uint64(sold[q.tier]+1+k)})
		}
		sold[q.tier] += q.qty
	}
	ps := make([]events.CardPurchase, n)
	for i, q := range batch {
		ps[i] = q.p
	}
	rc, err := p.c.Transact(p.c.Deployer, p.c.Hub, p.c.FulfilCall(e.addr, ps, p.c.Quorum()...), nil)
	if !p.expect("", err) {
		return
	}
	p.checkMoves(e, rc, moves)
	got := make([]string, n)
	for _, l := range rc.Logs {
		for i, q := range batch {
			if ev, err := devchain.Ticket.UnpackCardPurchasedEvent(l); err == nil && ev.PaymentId == q.p.PaymentId {
				got[i] = "ok"
			}
			if ev, err := devchain.Ticket.UnpackCardPurchaseFailedEvent(l); err == nil && ev.PaymentId == q.p.PaymentId {
				got[i] = "unknown " + hexutil.Encode(ev.Reason)
				for name, er := range p.ticketABI.Errors {
					if len(ev.Reason) >= 4 && bytes.Equal(ev.Reason[:4], er.ID[:4]) {
						got[i] = name
					}
				}
			}
		}
	}
	e.pending = e.pending[n:]
	for i, q := range batch {
		want := wants[i]
		if want == "" {
			want = "ok"
		}
		p.stats["cardFulfil item "+got[i]]++
		if got[i] != want {
			p.failf("card purchase %d of %d (%s, %d of tier %d): model expected %s, contract %s", i+1, n, q.buyer.name, q.qty, q.tier, want, got[i])
		}
		if want != "ok" {
			e.cardPaid = append(e.cardPaid, cardPaidM{pid: q.p.PaymentId})
			continue
		}
		cat := p.catOf(e, q.buyer.addr)
		t := &e.tiers[q.tier]
		e.cardPaid = append(e.cardPaid, cardPaidM{pid: q.p.PaymentId, minted: true, first: uint64(q.tier)<<32 | uint64(t.sold+1), qty: q.qty})
		for k := 0; k < q.qty; k++ {
			tok := &tokM{id: uint64(q.tier)<<32 | uint64(t.sold+1), tier: q.tier, owner: q.buyer.addr, paid: new(big.Int).Set(q.unit), cat: cat, listing: new(big.Int), cardFresh: true}
			e.tokens = append(e.tokens, tok)
			e.byID[tok.id] = tok
			e.acquired[q.buyer.addr]++
			e.cnt[cat]++
			t.sold++
			e.owed = bigAdd(e.owed, q.unit)
			p.checkTicket(e, tok)
		}
	}
}

func bigMul(a *big.Int, n int64) *big.Int { return new(big.Int).Mul(a, big.NewInt(n)) }

// opCardReverse: k oracles report a card payment refunded or charged back. A minted one's
// tickets still with the card buyer and not checked in burn; the others are marked. A failed
// one is settled; a pending request is closed and can never mint.
func (p *prop) opCardReverse(e *evM) {
	kind := devchain.KindRefunded + uint8(p.rng.IntN(2))
	var pid [32]byte
	var paid *cardPaidM
	if i := p.rng.IntN(len(e.cardPaid) + len(e.pending)); i < len(e.cardPaid) {
		cp := e.cardPaid[i] // a copy: the slice shifts below
		paid = &cp
		pid = paid.pid
		e.cardPaid = slices.Delete(e.cardPaid, i, i+1)
	} else {
		i -= len(e.cardPaid)
		pid = e.pending[i].p.PaymentId
		e.pending = slices.Delete(e.pending, i, i+1)
	}
	p.describe("cardReverse", "the oracles report payment %x reversed (kind %d)", pid[:4], kind)
	var moves []tokMove
	var burnt []*tokM
	marked := 0
	if paid != nil && paid.minted {
		for k := 0; k < paid.qty; k++ {
			tok := e.byID[paid.first+uint64(k)]
			switch {
			case tok == nil:
				p.failf("minted ticket %s missing from the model", tokenName(paid.first+uint64(k)))
			case tok.owner == zeroAddr:
			case tok.checkedIn || !tok.cardFresh:
				marked++
			default:
				moves = append(moves, tokMove{tok.owner, zeroAddr, tok.id})
				burnt = append(burnt, tok)
			}
		}
	}
	p.reversing = true
	defer func() { p.reversing = false }()
	rc, err := p.c.Transact(p.c.Deployer, p.c.Hub, p.c.ReverseCall(kind, [][32]byte{pid}, p.c.Quorum()...), nil)
	if !p.expect("", err) {
		return
	}
	gotBurnt, gotMarked := 0, 0
	for _, l := range rc.Logs {
		if ev, err := devchain.Ticket.UnpackCardReversedEvent(l); err == nil {
			if ev.Burned {
				gotBurnt++
			} else {
				gotMarked++
			}
		}
	}
	if gotBurnt != len(burnt) || gotMarked != marked {
		p.failf("reversal burned %d and marked %d, model %d and %d (minted %v)", gotBurnt, gotMarked, len(burnt), marked, paid)
	}
	p.stats["cardReverse ticket burned"] += gotBurnt
	p.stats["cardReverse ticket marked"] += gotMarked
	p.checkMoves(e, rc, moves)
	for _, tok := range burnt {
		e.cnt[tok.cat]--
		e.owed = bigSub(e.owed, tok.paid)
		tok.owner, tok.listing, tok.approved = zeroAddr, new(big.Int), zeroAddr
		p.checkTicket(e, tok)
	}
}
