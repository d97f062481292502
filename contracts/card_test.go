package contracts_test

// Card purchase on chain (claim 14, issue 4): EventTicket.requestPurchase, OracleHub's k-of-n
// EIP-712 reports, fulfilment that mints or ends refundable, refunds and chargebacks, and
// changes of the oracle set. The chain's OracleHub has n = 3 oracles and k = 2.

import (
	"bytes"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	bt "github.com/stagepass/stagepass/contracts/bindings/testing"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	hubABI = mustABI(events.OracleHubMetaData.ABI)
	hub    = devchain.Hub
)

// errName names a revert by the hub's, the event's or the factory's errors.
func errName(err error) string {
	for _, a := range []*abi.ABI{hubABI, ticketABI, factoryABI} {
		if n := devchain.ErrorName(a, err); n != "" {
			return n
		}
	}
	return ""
}

func wantRevert(t *testing.T, err error, name string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want revert %s", name)
	}
	if got := errName(err); got != name {
		t.Fatalf("reverted with %q (%v), want %s", got, err, name)
	}
}

func (e *env) request(f *devchain.Account, pid string, qty int64) events.CardPurchase {
	e.t.Helper()
	p, _, err := e.c.RequestPurchase(f, e.ev, devchain.PaymentID(pid), 0, qty)
	if err != nil {
		e.t.Fatalf("requestPurchase %s: %s %v", pid, errName(err), err)
	}
	return p
}

// fulfil submits a capture report for `ps` signed by the quorum, as the relay's aggregator.
func (e *env) fulfil(ps ...events.CardPurchase) *types.Receipt {
	e.t.Helper()
	r, err := e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(e.ev, ps, e.c.Quorum()...), nil)
	if err != nil {
		e.t.Fatalf("fulfil: %s %v", errName(err), err)
	}
	return r
}

func (e *env) reverse(kind uint8, pids ...[32]byte) (*types.Receipt, error) {
	return e.c.Transact(e.c.Deployer, e.c.Hub, e.c.ReverseCall(kind, pids, e.c.Quorum()...), nil)
}

func (e *env) payment(pid [32]byte) events.PaymentOutput {
	e.t.Helper()
	p, err := e.c.HubPayment(pid)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) balanceOf(a common.Address) int64 {
	n, err := ticket.UnpackBalanceOf(e.view(ticket.PackBalanceOf(a)))
	if err != nil {
		e.t.Fatal(err)
	}
	return n.Int64()
}

func TestCardPurchaseRequestAndMint(t *testing.T) {
	e := newEnv(t, nil)
	fan := e.fans[0]
	p := e.request(fan, "pi_basic", 2)
	if p.Buyer != fan.Address || p.Quantity.Int64() != 2 || p.Amount.Cmp(devchain.USDC(100)) != 0 {
		t.Fatalf("request %+v", p)
	}
	if st := e.payment(p.PaymentId); st.Status != devchain.PaymentRequested || st.TicketEvent != e.ev {
		t.Fatalf("hub record after request %+v", st)
	}
	// The Go EIP-712 encoding (what oracle nodes sign) and the hub's agree.
	out, err := e.c.Call(e.c.Hub, hub.PackCapturedDigest(e.ev, []events.CardPurchase{p}))
	if err != nil {
		t.Fatal(err)
	}
	onChain, _ := hub.UnpackCapturedDigest(out)
	if want := devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{p}); onChain != want {
		t.Fatalf("digest: hub %x, Go %x", onChain, want)
	}

	r := e.fulfil(p)
	var first *big.Int
	splits := map[common.Address]*big.Int{}
	for _, l := range r.Logs {
		if ev, err := ticket.UnpackCardPurchasedEvent(l); err == nil {
			first = ev.FirstTokenId
		}
		if ev, err := ticket.UnpackRevenueSplitEvent(l); err == nil {
			if string(bytes.TrimRight(ev.Currency[:], "\x00")) != "card" {
				t.Fatalf("RevenueSplit currency %q", ev.Currency)
			}
			splits[ev.Party] = ev.Amount
		}
	}
	if first == nil {
		t.Fatal("no CardPurchased")
	}
	for i := int64(0); i < 2; i++ {
		if tk := e.ticketOf(new(big.Int).Add(first, u(i))); tk.Owner != fan.Address || tk.Paid.Cmp(devchain.USDC(50)) != 0 {
			t.Fatalf("ticket %d: %+v", i, tk)
		}
	}
	want := map[common.Address]*big.Int{e.issuer.Address: devchain.USDC(70), e.artist.Address: devchain.USDC(20), e.venue.Address: devchain.USDC(10)}
	for a, w := range want {
		if splits[a] == nil || splits[a].Cmp(w) != 0 {
			t.Fatalf("RevenueSplit %v, want %v", splits, want)
		}
	}
	// No token moved for the card revenue; the buyer paid nothing on chain.
	if bal := e.c.USDBalance(e.ev); bal.Sign() != 0 {
		t.Fatalf("event holds %s", bal)
	}
	st := e.payment(p.PaymentId)
	if st.Status != devchain.PaymentMinted || st.FirstTokenId.Cmp(first) != 0 || st.Quantity.Int64() != 2 {
		t.Fatalf("hub record after mint %+v", st)
	}
	if owed, _ := ticket.UnpackRefundsOwed(e.view(ticket.PackRefundsOwed())); owed.Cmp(devchain.USDC(100)) != 0 {
		t.Fatalf("refundsOwed %s", owed)
	}
}

func TestCardReportSignatures(t *testing.T) {
	e := newEnv(t, nil)
	o := e.c.Oracles // ascending
	outsider := devchain.NewAccount("not an oracle", 0)
	otherChain := new(big.Int).Add(e.c.ChainID, u(1))
	n := 0
	cases := []struct {
		name string
		sigs func(p events.CardPurchase) [][]byte
		want string
	}{
		{"k-1 signatures", func(p events.CardPurchase) [][]byte {
			return devchain.SignDigest(devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{p}), o[0])
		}, "NotEnoughSignatures"},
		{"duplicate signer", func(p events.CardPurchase) [][]byte {
			return devchain.SignDigest(devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{p}), o[1], o[1])
		}, "DuplicateSigner"},
		{"unsorted signers", func(p events.CardPurchase) [][]byte {
			return devchain.SignDigest(devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{p}), o[1], o[0])
		}, "SignersNotSorted"},
		{"non-member", func(p events.CardPurchase) [][]byte {
			s := []*devchain.Account{o[0], outsider}
			devchain.SortAccounts(s)
			return devchain.SignDigest(devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{p}), s...)
		}, "NotOracle"},
		{"wrong chain id", func(p events.CardPurchase) [][]byte {
			return devchain.SignDigest(devchain.CaptureDigest(devchain.HubDomain(otherChain, e.c.Hub), e.ev, []events.CardPurchase{p}), o[0], o[1])
		}, "NotOracle"},
		{"wrong hub", func(p events.CardPurchase) [][]byte {
			return devchain.SignDigest(devchain.CaptureDigest(devchain.HubDomain(e.c.ChainID, e.c.Factory), e.ev, []events.CardPurchase{p}), o[0], o[1])
		}, "NotOracle"},
		{"signed for another amount", func(p events.CardPurchase) [][]byte {
			q := p
			q.Amount = devchain.USDC(1)
			return devchain.SignDigest(devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{q}), o[0], o[1])
		}, "NotOracle"},
		{"k of n", func(p events.CardPurchase) [][]byte {
			return devchain.SignDigest(devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{p}), o[0], o[2])
		}, ""},
		{"all n", func(p events.CardPurchase) [][]byte {
			return devchain.SignDigest(devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{p}), o...)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n++
			fan := e.fans[n%len(e.fans)]
			before := e.balanceOf(fan.Address)
			p := e.request(fan, fmt.Sprintf("pi_sig_%d", n), 1)
			_, err := e.c.Transact(e.c.Deployer, e.c.Hub, hub.PackFulfil(e.ev, []events.CardPurchase{p}, tc.sigs(p)), nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected revert %s: %v", errName(err), err)
				}
				if e.balanceOf(fan.Address) != before+1 || e.payment(p.PaymentId).Status != devchain.PaymentMinted {
					t.Fatal("valid report did not mint")
				}
				return
			}
			wantRevert(t, err, tc.want)
			if e.balanceOf(fan.Address) != before || e.payment(p.PaymentId).Status != devchain.PaymentRequested {
				t.Fatal("a refused report changed state")
			}
		})
	}
}

func TestCardPaymentIDUsableOnce(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.fans[0], e.fans[1]
	p := e.request(a, "pi_once", 1)
	// Another request cannot claim the same payment, by anyone, before or after the mint.
	_, _, err := e.c.RequestPurchase(b, e.ev, p.PaymentId, 0, 1)
	wantRevert(t, err, "PaymentAlreadyUsed")
	e.fulfil(p)
	cases := []struct {
		name string
		send func() error
		want string
	}{
		{"replayed report", func() error {
			_, err := e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(e.ev, []events.CardPurchase{p}, e.c.Quorum()...), nil)
			return err
		}, "PaymentAlreadyUsed"},
		{"same payment, new request", func() error {
			_, _, err := e.c.RequestPurchase(a, e.ev, p.PaymentId, 0, 1)
			return err
		}, "PaymentAlreadyUsed"},
		{"same payment, in a batch", func() error {
			q := e.request(b, "pi_once_other", 1)
			_, err := e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(e.ev, []events.CardPurchase{q, p}, e.c.Quorum()...), nil)
			return err
		}, "PaymentAlreadyUsed"},
		{"request never made", func() error {
			q := p
			q.PaymentId = devchain.PaymentID("pi_never_requested")
			_, err := e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(e.ev, []events.CardPurchase{q}, e.c.Quorum()...), nil)
			return err
		}, "UnknownRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantRevert(t, tc.send(), tc.want) })
	}
	if n := e.balanceOf(a.Address); n != 1 {
		t.Fatalf("one payment minted %d tickets", n)
	}
	// A report whose purchase is not the registered request (another buyer) is refused.
	q := e.request(b, "pi_mismatch", 1)
	forged := q
	forged.Buyer = a.Address
	_, err = e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(e.ev, []events.CardPurchase{forged}, e.c.Quorum()...), nil)
	wantRevert(t, err, "UnknownRequest")
}

// A rule that fails at mint time, after the payment was captured, ends with the payment
// recorded Failed (CardPurchaseFailed says which rule), nothing minted, and the refund report
// settling it; it never mints later.
func TestCardRuleFailureEndsRefundable(t *testing.T) {
	cases := []struct {
		name string
		edit func(e *env, cfg *events.EventConfig)
		// between runs after the request and before the report.
		between func(e *env, fan *devchain.Account)
		qty     int64
		want    string
	}{
		{"sold out", func(e *env, cfg *events.EventConfig) { cfg.Tiers[0].Supply = 2 }, func(e *env, _ *devchain.Account) {
			e.buy(e.fans[5], 2)
		}, 1, "SoldOut"},
		{"maxPerBuyer", func(e *env, cfg *events.EventConfig) { cfg.Rules.MaxPerBuyer = 2 }, func(e *env, fan *devchain.Account) {
			e.buy(fan, 1)
		}, 2, "BuyerLimitReached"},
		{"sales window closed", nil, func(e *env, _ *devchain.Account) {
			e.c.Warp(7*24*time.Hour - 3*time.Hour)
		}, 1, "SalesClosed"},
		{"event cancelled", nil, func(e *env, _ *devchain.Account) {
			e.ok(e.issuer, ticket.PackCancelEvent(zero), nil)
		}, 1, "EventIsCancelled"},
		{"category quota", func(e *env, cfg *events.EventConfig) {
			reg, err := e.c.Deploy(e.c.Deployer, &bt.TestCategoryRegistryMetaData, nil)
			if err != nil {
				e.t.Fatal(err)
			}
			cfg.CategoryRegistry = reg
			cfg.Rules.CategoryQuotaBps = [5]uint16{10000, 10000, 10000, 10000, 0}
		}, func(e *env, fan *devchain.Account) {
			// Classified a bot between request and mint.
			e.c.MustTransact(e.c.Deployer, e.cfg.CategoryRegistry, registryB.PackSetCategory(fan.Address, devchain.Bot), nil)
		}, 1, "CategoryQuotaReached"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.edit)
			fan, other := e.fans[0], e.fans[1]
			p := e.request(fan, "pi_"+tc.name, tc.qty)
			ok := e.request(other, "pi_ok_"+tc.name, 1)
			held := e.balanceOf(fan.Address)
			tc.between(e, fan)
			held = e.balanceOf(fan.Address) - held // what `between` gave the fan
			r := e.fulfil(ok, p)
			var reason []byte
			var revenue int
			for _, l := range r.Logs {
				if f, err := ticket.UnpackCardPurchaseFailedEvent(l); err == nil && f.PaymentId == p.PaymentId {
					reason = f.Reason
				}
				if _, err := ticket.UnpackRevenueSplitEvent(l); err == nil {
					revenue++
				}
			}
			wantID := ticketABI.Errors[tc.want].ID
			if len(reason) < 4 || !bytes.Equal(reason[:4], wantID[:4]) {
				t.Fatalf("failure reason %x, want %s", reason, tc.want)
			}
			if got := e.payment(p.PaymentId).Status; got != devchain.PaymentFailed {
				t.Fatalf("payment status %d, want Failed", got)
			}
			if n := e.balanceOf(fan.Address); n != held {
				t.Fatalf("fan holds %d tickets, want %d", n, held)
			}
			// The other purchase in the report is unaffected by this one's failure.
			okMinted := e.payment(ok.PaymentId).Status == devchain.PaymentMinted
			if okMinted != (revenue == 3) {
				t.Fatalf("other purchase minted %v but %d RevenueSplit events", okMinted, revenue)
			}
			// The refund report settles it; it can never mint afterwards.
			if _, err := e.reverse(devchain.KindRefunded, p.PaymentId); err != nil {
				t.Fatalf("refund: %s %v", errName(err), err)
			}
			if got := e.payment(p.PaymentId).Status; got != devchain.PaymentRefunded {
				t.Fatalf("after refund status %d", got)
			}
			_, err := e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(e.ev, []events.CardPurchase{p}, e.c.Quorum()...), nil)
			wantRevert(t, err, "PaymentAlreadyUsed")
		})
	}
}

func TestCardRefundAndChargeback(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *events.EventConfig) { cfg.Rules.MaxPerBuyer = 6 })
	a, b := e.fans[0], e.fans[1]
	kept := e.request(a, "pi_kept", 2)
	gifted := e.request(a, "pi_gifted", 1)
	entered := e.request(a, "pi_entered", 1)
	listed := e.request(a, "pi_listed", 1)
	pending := e.request(b, "pi_pending", 1)
	firsts := map[[32]byte]*big.Int{}
	for _, l := range e.fulfil(kept, gifted, entered, listed).Logs {
		if ev, err := ticket.UnpackCardPurchasedEvent(l); err == nil {
			firsts[ev.PaymentId] = ev.FirstTokenId
		}
	}
	e.ok(a, ticket.PackTransferFrom(a.Address, b.Address, firsts[gifted.PaymentId]), nil)
	e.ok(a, ticket.PackList(firsts[listed.PaymentId], devchain.USDC(55)), nil)
	owedBefore, _ := ticket.UnpackRefundsOwed(e.view(ticket.PackRefundsOwed()))

	burned := func(r *types.Receipt) (burnt, marked int) {
		for _, l := range r.Logs {
			if ev, err := ticket.UnpackCardReversedEvent(l); err == nil {
				if ev.Burned {
					burnt++
				} else {
					marked++
				}
			}
		}
		return
	}
	// Refund of a ticket still with its card buyer (and one listed): burned.
	r, err := e.reverse(devchain.KindRefunded, kept.PaymentId, listed.PaymentId)
	if err != nil {
		t.Fatalf("refund: %s %v", errName(err), err)
	}
	if bu, ma := burned(r); bu != 3 || ma != 0 {
		t.Fatalf("refund burned %d marked %d, want 3 and 0", bu, ma)
	}
	if tk := e.ticketOf(firsts[kept.PaymentId]); tk.Owner != (common.Address{}) {
		t.Fatalf("refunded ticket still owned: %+v", tk)
	}
	if tk := e.ticketOf(firsts[listed.PaymentId]); tk.Owner != (common.Address{}) || tk.ListingPrice.Sign() != 0 {
		t.Fatalf("refunded listed ticket: %+v", tk)
	}
	owed, _ := ticket.UnpackRefundsOwed(e.view(ticket.PackRefundsOwed()))
	if d := new(big.Int).Sub(owedBefore, owed); d.Cmp(devchain.USDC(150)) != 0 {
		t.Fatalf("refundsOwed fell by %s, want 150 USD", d)
	}
	// Chargeback of a ticket given away: the new holder keeps it, marked.
	r, err = e.reverse(devchain.KindChargedBack, gifted.PaymentId)
	if err != nil {
		t.Fatalf("chargeback: %s %v", errName(err), err)
	}
	if bu, ma := burned(r); bu != 0 || ma != 1 || e.ticketOf(firsts[gifted.PaymentId]).Owner != b.Address {
		t.Fatalf("chargeback of a gifted ticket burned %d marked %d", bu, ma)
	}
	// Chargeback of a ticket already checked in: marked, still checked in.
	e.openDoors()
	e.ok(e.gate, ticket.PackCheckIn(firsts[entered.PaymentId]), nil)
	r, err = e.reverse(devchain.KindChargedBack, entered.PaymentId)
	if err != nil {
		t.Fatalf("chargeback: %s %v", errName(err), err)
	}
	if bu, ma := burned(r); bu != 0 || ma != 1 || !e.ticketOf(firsts[entered.PaymentId]).CheckedIn {
		t.Fatalf("chargeback of a checked-in ticket burned %d marked %d", bu, ma)
	}
	for pid, want := range map[[32]byte]uint8{
		kept.PaymentId: devchain.PaymentRefunded, listed.PaymentId: devchain.PaymentRefunded,
		gifted.PaymentId: devchain.PaymentChargedBack, entered.PaymentId: devchain.PaymentChargedBack,
	} {
		if got := e.payment(pid).Status; got != want {
			t.Fatalf("payment %x status %d, want %d", pid[:4], got, want)
		}
	}
	cases := []struct {
		name string
		kind uint8
		pids [][32]byte
		want string
	}{
		{"twice", devchain.KindChargedBack, [][32]byte{kept.PaymentId}, "PaymentAlreadyReversed"},
		{"unknown kind", 7, [][32]byte{pending.PaymentId}, "InvalidReversalKind"},
		{"empty", devchain.KindRefunded, nil, "EmptyReport"},
		{"requested, not captured: closed", devchain.KindRefunded, [][32]byte{pending.PaymentId}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.reverse(tc.kind, tc.pids...)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected revert %s: %v", errName(err), err)
				}
				return
			}
			wantRevert(t, err, tc.want)
		})
	}
	_, err = e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(e.ev, []events.CardPurchase{pending}, e.c.Quorum()...), nil)
	wantRevert(t, err, "PaymentAlreadyUsed")
	// Reversal reports need k signatures too.
	_, err = e.c.Transact(e.c.Deployer, e.c.Hub, hub.PackReverse(devchain.KindRefunded, [][32]byte{gifted.PaymentId},
		devchain.SignDigest(devchain.ReversalDigest(e.c.OracleDomain(), devchain.KindRefunded, [][32]byte{gifted.PaymentId}), e.c.Oracles[0])), nil)
	wantRevert(t, err, "NotEnoughSignatures")
}

func TestCardBatchOf20(t *testing.T) {
	e := newEnv(t, func(e *env, cfg *events.EventConfig) { cfg.Rules.MaxPerBuyer = 10 })
	var ps []events.CardPurchase
	for i := range 20 {
		ps = append(ps, e.request(e.fans[i%len(e.fans)], fmt.Sprintf("pi_batch_%d", i), 1))
	}
	r := e.fulfil(ps...)
	minted := 0
	total := new(big.Int)
	for _, l := range r.Logs {
		if _, err := ticket.UnpackCardPurchasedEvent(l); err == nil {
			minted++
		}
		if ev, err := ticket.UnpackRevenueSplitEvent(l); err == nil {
			total.Add(total, ev.Amount)
		}
	}
	if minted != 20 || total.Cmp(devchain.USDC(20*50)) != 0 {
		t.Fatalf("batch minted %d, revenue split %s", minted, total)
	}
	for _, p := range ps {
		st := e.payment(p.PaymentId)
		if st.Status != devchain.PaymentMinted || e.ticketOf(st.FirstTokenId).Owner != p.Buyer {
			t.Fatalf("payment %x: %+v", p.PaymentId[:4], st)
		}
	}
	t.Logf("one report, 20 purchases: %d gas, %d per ticket", r.GasUsed, r.GasUsed/20)
}

func TestOracleSetChange(t *testing.T) {
	e := newEnv(t, nil)
	old := e.c.Oracles
	next := []*devchain.Account{devchain.NewAccount("new oracle", 0), devchain.NewAccount("new oracle", 1), devchain.NewAccount("new oracle", 2), devchain.NewAccount("new oracle", 3)}
	devchain.SortAccounts(next)
	addrs := func(as []*devchain.Account) []common.Address {
		out := make([]common.Address, len(as))
		for i, a := range as {
			out[i] = a.Address
		}
		return out
	}
	change := func(members []common.Address, k uint64, epoch uint64, signers ...*devchain.Account) error {
		sigs := devchain.SignDigest(devchain.OracleSetDigest(e.c.OracleDomain(), members, k, epoch), signers...)
		_, err := e.c.Transact(e.c.Deployer, e.c.Hub, hub.PackChangeOracles(members, new(big.Int).SetUint64(k), sigs), nil)
		return err
	}
	unsorted := addrs(next)
	unsorted[0], unsorted[1] = unsorted[1], unsorted[0]
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"k-1 current members", change(addrs(next), 3, 0, old[0]), "NotEnoughSignatures"},
		{"signed by the new set", change(addrs(next), 3, 0, next[0], next[1]), "NotOracle"},
		{"wrong epoch", change(addrs(next), 3, 1, old[0], old[1]), "NotOracle"},
		{"threshold not a majority", change(addrs(next), 2, 0, old[0], old[1]), "InvalidOracleSet"},
		{"threshold above n", change(addrs(next), 5, 0, old[0], old[1]), "InvalidOracleSet"},
		{"members unsorted", change(unsorted, 3, 0, old[0], old[1]), "OraclesNotSorted"},
		{"k of n current members", change(addrs(next), 3, 0, old[1], old[2]), ""},
		// The set's epoch moved on, and so did its members: even all three old signatures fail.
		{"replayed", change(addrs(next), 3, 0, old...), "NotOracle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				if tc.err != nil {
					t.Fatalf("unexpected revert %s: %v", errName(tc.err), tc.err)
				}
				return
			}
			wantRevert(t, tc.err, tc.want)
		})
	}
	out, err := e.c.Call(e.c.Hub, hub.PackOracles())
	if err != nil {
		t.Fatal(err)
	}
	set, _ := hub.UnpackOracles(out)
	if len(set.Members) != 4 || set.K.Int64() != 3 || set.CurrentEpoch.Int64() != 1 {
		t.Fatalf("oracle set after change %+v", set)
	}
	// The old quorum no longer speaks for the network; the new one does, with its own k.
	p := e.request(e.fans[0], "pi_after_change", 1)
	sign := func(signers ...*devchain.Account) error {
		sigs := devchain.SignDigest(devchain.CaptureDigest(e.c.OracleDomain(), e.ev, []events.CardPurchase{p}), signers...)
		_, err := e.c.Transact(e.c.Deployer, e.c.Hub, hub.PackFulfil(e.ev, []events.CardPurchase{p}, sigs), nil)
		return err
	}
	wantRevert(t, sign(old[0], old[1]), "NotEnoughSignatures")
	wantRevert(t, sign(old...), "NotOracle")
	wantRevert(t, sign(next[0], next[1]), "NotEnoughSignatures")
	if err := sign(next[0], next[2], next[3]); err != nil {
		t.Fatalf("new quorum: %s %v", errName(err), err)
	}
}

func TestCardTrustBoundaries(t *testing.T) {
	e := newEnv(t, nil)
	fan := e.fans[0]
	p := e.request(fan, "pi_trust", 1)
	hubSend := func(data []byte) error { _, err := e.c.Transact(fan, e.c.Hub, data, nil); return err }
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"fulfil the event directly", e.tx(fan, ticket.PackFulfilCard([]events.CardPurchase{p}), nil), "NotHub"},
		{"mint directly", e.tx(fan, ticket.PackMintCard(fan.Address, zero, u(1), devchain.USDC(50)), nil), "NotHub"},
		{"reverse directly", e.tx(fan, ticket.PackReverseCard(u(1<<32|1), u(1)), nil), "NotHub"},
		{"register a payment from outside an event", hubSend(hub.PackRegister(devchain.PaymentID("pi_x"), p.RequestId)), "NotGenuineEvent"},
		{"rebind the factory", hubSend(hub.PackSetFactory(fan.Address)), "NotDeployer"},
		{"deployer rebinds the factory", func() error {
			_, err := e.c.Transact(e.c.Deployer, e.c.Hub, hub.PackSetFactory(fan.Address), nil)
			return err
		}(), "FactoryAlreadySet"},
		{"report for another event's request", func() error {
			other, err := e.c.CreateEvent(e.issuer, e.cfg)
			if err != nil {
				return err
			}
			_, err = e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(other, []events.CardPurchase{p}, e.c.Quorum()...), nil)
			return err
		}(), "UnknownRequest"},
		{"report for an event outside the factory", func() error {
			_, err := e.c.Transact(e.c.Deployer, e.c.Hub, e.c.FulfilCall(fan.Address, []events.CardPurchase{p}, e.c.Quorum()...), nil)
			return err
		}(), "UnknownRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { wantRevert(t, tc.err, tc.want) })
	}
	// Early checks at request time spare a doomed request.
	wantRevert(t, func() error {
		_, _, err := e.c.RequestPurchase(fan, e.ev, devchain.PaymentID("pi_big"), 0, 5)
		return err
	}(), "BuyerLimitReached")
	wantRevert(t, func() error {
		_, _, err := e.c.RequestPurchase(fan, e.ev, devchain.PaymentID("pi_tier"), 3, 1)
		return err
	}(), "UnknownTier")
	if n := e.balanceOf(fan.Address); n != 0 {
		t.Fatalf("fan holds %d", n)
	}
}

// The fan needs no native coin: the relay forwards the signed requestPurchase.
func TestCardRequestIsGasless(t *testing.T) {
	e := newEnv(t, nil)
	fan := devchain.NewAccount("card fan without coin", 0)
	pid := devchain.PaymentID("pi_gasless")
	call := ticket.PackRequestPurchase(pid, zero, u(1))
	req, sig := e.c.SignForward(fan, e.ev, call, 300_000, e.c.Now()+600)
	if err := protocol.VerifyForwardRequest(req, protocol.ForwarderDomain(e.c.ChainID.Uint64(), ethcrypto.Address(e.c.Forwarder)), sig); err != nil {
		t.Fatal(err)
	}
	fwd := forwarder.NewStagepassForwarder()
	r, err := e.c.Transact(e.c.Deployer, e.c.Forwarder, fwd.PackExecute(forwarder.ERC2771ForwarderForwardRequestData{
		From: fan.Address, To: e.ev, Value: req.Value, Gas: req.Gas,
		Deadline: new(big.Int).SetUint64(req.Deadline), Data: req.Data, Signature: sig,
	}), nil)
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	var p *events.CardPurchase
	for _, l := range r.Logs {
		if ev, err := ticket.UnpackPurchaseRequestedEvent(l); err == nil {
			p = &events.CardPurchase{RequestId: ev.RequestId, PaymentId: ev.PaymentId, Buyer: ev.Buyer, Tier: ev.Tier, Quantity: ev.Qty, Amount: ev.Amount}
		}
	}
	if p == nil || p.Buyer != fan.Address {
		t.Fatalf("forwarded request: %+v", p)
	}
	e.fulfil(*p)
	if n := e.balanceOf(fan.Address); n != 1 || e.c.Balance(fan.Address).Sign() != 0 {
		t.Fatalf("fan holds %d tickets and %s wei", n, e.c.Balance(fan.Address))
	}
}

// buyListed paid by card: the same request → report path, the seller's part and the parties'
// split emitted as RevenueSplit events.
func TestCardResale(t *testing.T) {
	e := newEnv(t, nil)
	seller, buyer, rival := e.fans[0], e.fans[1], e.fans[2]
	first := e.buy(seller, 3)
	ids := []*big.Int{first, new(big.Int).Add(first, u(1)), new(big.Int).Add(first, u(2))}
	for _, id := range ids {
		e.ok(seller, ticket.PackList(id, devchain.USDC(60)), nil)
	}
	resale := func(f *devchain.Account, pid string, id *big.Int) (events.CardPurchase, error) {
		r, err := e.c.Transact(f, e.ev, ticket.PackRequestResale(devchain.PaymentID(pid), id), nil)
		if err != nil {
			return events.CardPurchase{}, err
		}
		for _, l := range r.Logs {
			if ev, err := ticket.UnpackPurchaseRequestedEvent(l); err == nil {
				return events.CardPurchase{RequestId: ev.RequestId, PaymentId: ev.PaymentId, Buyer: ev.Buyer, Tier: ev.Tier, Quantity: ev.Qty, Amount: ev.Amount}, nil
			}
		}
		return events.CardPurchase{}, fmt.Errorf("no PurchaseRequested")
	}
	_, err := resale(seller, "pi_self", ids[0])
	wantRevert(t, err, "SelfTransfer")
	_, err = resale(buyer, "pi_unlisted", u(1<<32|99))
	wantRevert(t, err, "NotListed")

	ok, err := resale(buyer, "pi_resale_ok", ids[0])
	if err != nil || ok.Quantity.Sign() != 0 || ok.Tier.Cmp(ids[0]) != 0 || ok.Amount.Cmp(devchain.USDC(60)) != 0 {
		t.Fatalf("requestResale: %+v %v", ok, err)
	}
	relisted, _ := resale(buyer, "pi_resale_relisted", ids[1])
	sold, _ := resale(buyer, "pi_resale_sold", ids[2])
	// Between request and report: the seller relists one at another price, and sells another
	// to a stablecoin buyer.
	e.ok(seller, ticket.PackList(ids[1], devchain.USDC(58)), nil)
	e.ok(rival, ticket.PackBuyListed(ids[2], devchain.USDC(60)), nil)

	sellerUSD := e.c.USDBalance(seller.Address)
	r := e.fulfil(ok, relisted, sold)
	splits := map[common.Address]*big.Int{}
	failed := map[[32]byte][]byte{}
	for _, l := range r.Logs {
		if ev, err := ticket.UnpackRevenueSplitEvent(l); err == nil {
			if splits[ev.Party] == nil {
				splits[ev.Party] = new(big.Int)
			}
			splits[ev.Party].Add(splits[ev.Party], ev.Amount)
		}
		if ev, err := ticket.UnpackCardPurchaseFailedEvent(l); err == nil {
			failed[ev.PaymentId] = ev.Reason
		}
	}
	// Markup 10: the seller keeps 50 + 5 = 55; the other 5 split 70/20/10.
	want := map[common.Address]*big.Int{seller.Address: devchain.USDC(55), e.issuer.Address: u(3_500_000), e.artist.Address: u(1_000_000), e.venue.Address: u(500_000)}
	for a, w := range want {
		if splits[a] == nil || splits[a].Cmp(w) != 0 {
			t.Fatalf("RevenueSplit %v, want %v", splits, want)
		}
	}
	if e.c.USDBalance(seller.Address).Cmp(sellerUSD) != 0 {
		t.Fatal("a card resale moved tokens")
	}
	notListed := ticketABI.Errors["NotListed"].ID
	for _, p := range []events.CardPurchase{relisted, sold} {
		if reason := failed[p.PaymentId]; len(reason) < 4 || !bytes.Equal(reason[:4], notListed[:4]) {
			t.Fatalf("payment %x: failure %x, want NotListed", p.PaymentId[:4], reason)
		}
		if st := e.payment(p.PaymentId).Status; st != devchain.PaymentFailed {
			t.Fatalf("payment %x status %d, want Failed", p.PaymentId[:4], st)
		}
	}
	tk := e.ticketOf(ids[0])
	if tk.Owner != buyer.Address || tk.Paid.Cmp(devchain.USDC(60)) != 0 || tk.ListingPrice.Sign() != 0 {
		t.Fatalf("resold ticket %+v", tk)
	}
	if st := e.payment(ok.PaymentId); st.Status != devchain.PaymentMinted || st.FirstTokenId.Cmp(ids[0]) != 0 || st.Quantity.Int64() != 1 {
		t.Fatalf("hub record %+v", st)
	}
	if tk := e.ticketOf(ids[1]); tk.Owner != seller.Address {
		t.Fatalf("relisted ticket moved: %+v", tk)
	}
	// A chargeback of the card resale burns the ticket the card buyer still holds.
	rr, err := e.reverse(devchain.KindChargedBack, ok.PaymentId)
	if err != nil {
		t.Fatalf("chargeback: %s %v", errName(err), err)
	}
	burnt := false
	for _, l := range rr.Logs {
		if ev, err := ticket.UnpackCardReversedEvent(l); err == nil && ev.Burned && ev.TokenId.Cmp(ids[0]) == 0 {
			burnt = true
		}
	}
	if !burnt || e.ticketOf(ids[0]).Owner != (common.Address{}) {
		t.Fatal("chargeback did not burn the card-resold ticket")
	}
}
