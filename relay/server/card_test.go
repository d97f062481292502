package server_test

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/payments"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

const cardKey = "sk_test_card_e2e"

type cardEnv struct {
	*env
	nodes   []*oracle.Node
	api     *payments.Client // the sandbox's Stripe-shaped API, as a fan's checkout uses it
	sandbox *payments.Sandbox
	opts    cardOptions
	dataDir string
	ctx     context.Context
}

// cardOptions: nodes not started (`down`), every node on JSON-RPC (`rpcOnly`, so the relay
// can restart under them), and the relay's refund delay for unrequested payments.
type cardOptions struct {
	down    []int
	rpcOnly bool
	expire  time.Duration
	attest  oracle.AttestConfig
	webhook string // the relay's processor webhook secret; set, the sandbox posts to it
}

// newCardEnv runs a chain, the relay with the sandbox processor and the aggregator, and the
// hub's three oracle nodes in-process (except those in `down`), each reading the chain and
// the sandbox's HTTP API on its own client; node 0 reaches the relay over JSON-RPC.
func newCardEnv(t *testing.T, down ...int) *cardEnv {
	return newCardEnvWith(t, cardOptions{down: down})
}

func newCardEnvWith(t *testing.T, o cardOptions) *cardEnv {
	t.Helper()
	chain, err := devnet.Start(devnet.Config{BlockTime: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)
	sandbox, err := payments.OpenSandbox(filepath.Join(t.TempDir(), "sandbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sandbox.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	chain.Attest = o.attest
	e := &cardEnv{env: &env{t: t, chain: chain}, sandbox: sandbox, opts: o, dataDir: t.TempDir(), ctx: ctx}
	e.startRelay("127.0.0.1:0")
	e.api = &payments.Client{BaseURL: e.base + "/sandbox", APIKey: cardKey}
	e.nodes = e.startNodes(o.down...)
	return e
}

// startRelay starts the relay on addr with the env's data directory.
func (e *cardEnv) startRelay(addr string) {
	t := e.t
	t.Helper()
	var ln net.Listener
	var err error
	for try := 0; ; try++ { // a restart may find the port in TIME_WAIT for a moment
		if ln, err = net.Listen("tcp", addr); err == nil || try == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	chain := e.chain
	relay, err := server.Start(context.Background(), server.Config{
		Listener: ln, DataDir: e.dataDir, Client: chain.Client, ChainID: chain.ChainID,
		Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD, Relayer: chain.Relayer,
		Payments: e.sandbox, PaymentsKey: cardKey,
		Cards: &server.CardConfig{Hub: chain.Hub, Reporter: chain.Reporter, Expire: e.opts.expire, WebhookSecret: e.opts.webhook},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.opts.webhook != "" {
		e.sandbox.SetWebhook("http://"+relay.Addr()+server.WebhookPath, e.opts.webhook)
	}
	t.Cleanup(func() { e.stopRelay(relay) })
	e.relay, e.base = relay, "http://"+relay.Addr()
}

func (e *cardEnv) stopRelay(r *server.Relay) {
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.Shutdown(sctx)
}

// restart stops the relay and starts it again on the same address and data directory.
func (e *cardEnv) restart() {
	e.t.Helper()
	addr := e.relay.Addr()
	e.stopRelay(e.relay)
	e.startRelay(addr)
}

// startNodes starts the oracle nodes not in `down`. Node 0 (every node with rpcOnly) talks
// to the relay over its JSON-RPC API, the others in-process.
func (e *cardEnv) startNodes(down ...int) []*oracle.Node {
	e.t.Helper()
	base := e.base
	nodes, err := e.chain.StartOracles(e.ctx, func(i int) oracle.Relay {
		if i == 0 || e.opts.rpcOnly {
			return &oracle.RPCRelay{URL: base + "/rpc"}
		}
		return e.relay.Aggregator()
	}, func(int) payments.Processor {
		return &payments.Client{BaseURL: base + "/sandbox", APIKey: cardKey}
	}, nil, down...)
	if err != nil {
		e.t.Fatal(err)
	}
	return nodes
}

// intent asks the relay for a payment intent and pays it with `card` on the sandbox.
func (e *cardEnv) intent(buyer *devchain.Account, tier, qty uint64, card string) protocol.PaymentIntent {
	e.t.Helper()
	var in protocol.PaymentIntent
	e.result(protocol.MethodCreatePayment, []any{e.chain.Demo.Hex(), tier, qty, buyer.Address.Hex()}, &in)
	_, err := e.api.Confirm(context.Background(), in.ID, payments.Card{Number: card, ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"})
	if card == "4242424242424242" && err != nil {
		e.t.Fatalf("pay %s: %v", in.ID, err)
	}
	return in
}

// request sends `fan`'s gasless requestPurchase(paymentId, tier, qty) and waits until mined.
func (e *cardEnv) request(fan *devchain.Account, in protocol.PaymentIntent, tier, qty int64) {
	e.t.Helper()
	pid, err := protocol.ParseHash32("paymentId", in.PaymentID)
	if err != nil {
		e.t.Fatal(err)
	}
	req, sig := e.chain.SignForward(fan, e.chain.Demo, devchain.Ticket.PackRequestPurchase(pid, big.NewInt(tier), big.NewInt(qty)), 400_000, e.chain.Now()+3600)
	var st protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}}, &st)
	waitFor(e.t, "the card request to be mined", func() bool {
		var now protocol.RequestStatus
		e.result(protocol.MethodRequestStatus, []any{st.ID}, &now)
		if now.State == protocol.RequestFailed {
			e.t.Fatalf("request failed: %s", now.Reason)
		}
		return now.State == protocol.RequestMined
	})
}

func (e *cardEnv) progress(id string) protocol.PaymentProgress {
	e.t.Helper()
	var p protocol.PaymentProgress
	e.result(protocol.MethodPaymentStatus, []any{id}, &p)
	return p
}

func (e *cardEnv) waitState(id, state string) protocol.PaymentProgress {
	e.t.Helper()
	var p protocol.PaymentProgress
	waitFor(e.t, "payment "+id+" to be "+state, func() bool {
		p = e.progress(id)
		return p.State == state
	})
	return p
}

func (e *cardEnv) tickets(owner *devchain.Account) int {
	e.t.Helper()
	var mine []protocol.TicketInfo
	e.result(protocol.MethodTicketsByOwner, []any{owner.Address.Hex()}, &mine)
	return len(mine)
}

// TestCardPurchaseEndToEnd (claim 14): intent bound to the purchase → fan pays 4242… on the
// sandbox → gasless requestPurchase → three oracle nodes verify with the processor and sign
// → the relay aggregates 2 of 3 and fulfils → tickets minted; the progress is pushed on the
// payment topic. The same payment id cannot mint twice; forged and unknown reports are
// refused.
func TestCardPurchaseEndToEnd(t *testing.T) {
	e := newCardEnv(t)
	fan := devchain.NewAccount("card e2e fan", 0)
	in := e.intent(fan, 0, 2, "4242424242424242")
	if in.Amount != 9000 || in.Currency != "usd" || in.Price != devchain.USDC(90).String() || !strings.Contains(in.CheckoutURL, in.ID+"?client_secret=") {
		t.Fatalf("intent %+v", in)
	}
	if p := e.progress(in.ID); p.State != protocol.PaymentCreated || p.Threshold != 2 || p.Members != 3 {
		t.Fatalf("progress before the request %+v", p)
	}

	c := e.dial()
	var mu sync.Mutex
	var seen []protocol.PaymentProgress
	c.id++
	if err := c.conn.WriteJSON(map[string]any{"jsonrpc": "2.0", "id": c.id, "method": protocol.MethodSubscribe, "params": []any{protocol.TopicPayment, map[string]any{"id": in.ID}}}); err != nil {
		t.Fatal(err)
	}
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		for {
			_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			var m wsMessageOf[protocol.PaymentProgress]
			if err := c.conn.ReadJSON(&m); err != nil {
				return
			}
			if m.Method == protocol.MethodSubscription {
				mu.Lock()
				seen = append(seen, m.Params.Result)
				done := m.Params.Result.State == protocol.PaymentMinted
				mu.Unlock()
				if done {
					return
				}
			}
		}
	}()

	e.request(fan, in, 0, 2)
	p := e.waitState(in.ID, protocol.PaymentMinted)
	if p.Quantity != 2 || p.Signatures < 2 || p.TxHash == "" || p.Buyer != strings.ToLower(fan.Address.Hex()) {
		t.Fatalf("minted progress %+v", p)
	}
	waitFor(t, "the card tickets to be indexed", func() bool { return e.tickets(fan) == 2 })
	if b := e.chain.Balance(fan.Address); b.Sign() != 0 {
		t.Fatalf("the fan paid gas: %s", b)
	}
	select {
	case <-pushed:
	case <-time.After(10 * time.Second):
		t.Fatal("no minted push")
	}
	mu.Lock()
	var states []string
	for _, s := range seen {
		states = append(states, fmt.Sprintf("%s %d/%d", s.State, s.Signatures, s.Members))
	}
	mu.Unlock()
	joined := strings.Join(states, ", ")
	if !strings.Contains(joined, "verifying 1/3") || !strings.Contains(joined, "minted") {
		t.Fatalf("pushes: %s", joined)
	}
	t.Logf("payment pushes: %s", joined)

	// The same payment id cannot be requested again: the relay refuses before paying gas.
	pid, _ := protocol.ParseHash32("paymentId", in.PaymentID)
	other := devchain.NewAccount("card e2e second claimant", 0)
	req, sig := e.chain.SignForward(other, e.chain.Demo, devchain.Ticket.PackRequestPurchase(pid, big.NewInt(0), big.NewInt(2)), 400_000, e.chain.Now()+3600)
	r := e.call(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}})
	if r.Error == nil || !strings.Contains(r.Error.Message, "would revert") || !strings.Contains(r.Error.Message, "PaymentAlreadyUsed") {
		t.Fatalf("second request of a used payment id: %+v", r.Error)
	}

	// Reports: a third, late, honest one changes nothing; a forged one (a key outside the
	// set) and one about a request the chain does not hold are refused.
	rec, err := e.chain.HubPayment(pid)
	if err != nil || rec.Status != devchain.PaymentMinted {
		t.Fatalf("hub payment %+v %v", rec, err)
	}
	purchase := protocol.CardPurchase{PaymentID: pid, Buyer: ethcrypto.Address(fan.Address), Tier: big.NewInt(0), Quantity: big.NewInt(2), Amount: devchain.USDC(90)}
	requestID, _ := protocol.ParseHash32("requestId", p.RequestID)
	purchase.RequestID = requestID
	signReport := func(key *devchain.Account, pu protocol.CardPurchase) protocol.OracleReport {
		d, err := protocol.CaptureDigest(protocol.HubDomain(e.chain.ChainID.Uint64(), ethcrypto.Address(e.chain.Hub)), ethcrypto.Address(e.chain.Demo), []protocol.CardPurchase{pu})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := crypto.Sign(d[:], key.Key)
		pj := pu.JSON()
		return protocol.OracleReport{Kind: protocol.ReportKindCaptured, Event: e.chain.Demo.Hex(), Purchase: &pj, Signature: fmt.Sprintf("0x%x", s)}
	}
	forger := devchain.NewAccount("not an oracle", 0)
	r = e.call(protocol.MethodSubmitReport, []any{signReport(forger, purchase)})
	if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, "not a member") {
		t.Fatalf("forged report: %+v", r.Error)
	}
	unknown := purchase
	unknown.PaymentID = protocol.PaymentIDOf("pi_never_requested")
	r = e.call(protocol.MethodSubmitReport, []any{signReport(e.chain.Oracles[0], unknown)})
	if r.Error == nil || !strings.Contains(r.Error.Message, "no such request") {
		t.Fatalf("report on an unknown request: %+v", r.Error)
	}
	var rc protocol.ReportReceipt
	e.result(protocol.MethodSubmitReport, []any{signReport(e.chain.Oracles[2], purchase)}, &rc)
	time.Sleep(500 * time.Millisecond)
	if e.tickets(fan) != 2 {
		t.Fatal("a late report minted again")
	}
}

// TestCardPurchaseRefusals: a declined card never mints, even with one lying oracle
// (k−1) reporting it captured; a payment bound to another buyer
// is refused by every node; a purchase that a rule refuses at mint time (the event was
// cancelled between request and payment) is refunded by the processor and reported refunded on chain by the oracles.
func TestCardPurchaseRefusals(t *testing.T) {
	e := newCardEnv(t)
	declinedFan := devchain.NewAccount("declined fan", 0)
	declined := e.intent(declinedFan, 0, 1, "4000000000000002")
	e.request(declinedFan, declined, 0, 1)

	// One lying oracle (k−1 = 1) signs the declined payment as captured: its report is
	// counted, and nothing is minted without a second member.
	declinedPid, _ := protocol.ParseHash32("paymentId", declined.PaymentID)
	word := func(b []byte) []byte { return common.LeftPadBytes(b, 32) }
	lie := protocol.CardPurchase{
		PaymentID: declinedPid, Buyer: ethcrypto.Address(declinedFan.Address), Tier: big.NewInt(0), Quantity: big.NewInt(1), Amount: devchain.USDC(45),
	}
	lie.RequestID = crypto.Keccak256Hash(word(e.chain.Demo[:]), declinedPid[:], word(declinedFan.Address[:]), word(nil), word([]byte{1}), word(lie.Amount.Bytes()))
	d, err := protocol.CaptureDigest(protocol.HubDomain(e.chain.ChainID.Uint64(), ethcrypto.Address(e.chain.Hub)), ethcrypto.Address(e.chain.Demo), []protocol.CardPurchase{lie})
	if err != nil {
		t.Fatal(err)
	}
	lieSig, _ := crypto.Sign(d[:], e.chain.Oracles[1].Key)
	lj := lie.JSON()
	var rc protocol.ReportReceipt
	e.result(protocol.MethodSubmitReport, []any{protocol.OracleReport{Kind: protocol.ReportKindCaptured, Event: e.chain.Demo.Hex(), Purchase: &lj, Signature: fmt.Sprintf("0x%x", lieSig)}}, &rc)
	if rc.Signatures != 1 || rc.State != protocol.PaymentVerifying {
		t.Fatalf("the lying report: %+v", rc)
	}

	owner, thief := devchain.NewAccount("card owner", 0), devchain.NewAccount("card thief", 0)
	stolen := e.intent(owner, 0, 1, "4242424242424242")
	e.request(thief, stolen, 0, 1)
	stolenPid, _ := protocol.ParseHash32("paymentId", stolen.PaymentID)
	waitFor(t, "every node to refuse the stolen payment", func() bool {
		for _, n := range e.nodes {
			if why, ok := n.Refused(stolenPid); !ok || !strings.Contains(why, "buyer") {
				return false
			}
		}
		return true
	})

	// A rule that fails at mint time: the fan requests, the issuer cancels the event, then
	// the fan pays. The oracles report the capture, the event refuses to mint (Failed), the
	// relay refunds the payment on the processor, and the oracles report the refund on chain.
	late := devchain.NewAccount("late fan", 0)
	var in protocol.PaymentIntent
	e.result(protocol.MethodCreatePayment, []any{e.chain.Demo.Hex(), 0, 1, late.Address.Hex()}, &in)
	e.request(late, in, 0, 1)
	e.chain.MustTransact(e.chain.Accounts[1], e.chain.Demo, devchain.Ticket.PackCancelEvent(big.NewInt(0)), nil)
	if _, err := e.api.Confirm(context.Background(), in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}); err != nil {
		t.Fatal(err)
	}
	e.waitState(in.ID, protocol.PaymentRefunded)
	paid, err := e.api.Retrieve(context.Background(), in.ID)
	if err != nil || paid.AmountRefunded != paid.Amount {
		t.Fatalf("refund on the processor: %+v %v", paid, err)
	}
	rec, err := e.chain.HubPayment(protocol.PaymentIDOf(in.ID))
	if err != nil || rec.Status != devchain.PaymentRefunded {
		t.Fatalf("hub payment of the failed purchase %+v %v", rec, err)
	}
	if n := e.tickets(late); n != 0 {
		t.Fatalf("the failed purchase minted %d tickets", n)
	}

	// Nothing for the declined card or the stolen payment.
	for _, x := range []struct {
		who *devchain.Account
		in  protocol.PaymentIntent
	}{{declinedFan, declined}, {thief, stolen}, {owner, stolen}} {
		if n := e.tickets(x.who); n != 0 {
			t.Fatalf("%s has %d tickets", x.who.Address, n)
		}
		rec, err := e.chain.HubPayment(protocol.PaymentIDOf(x.in.ID))
		if err != nil || rec.Status != devchain.PaymentRequested {
			t.Fatalf("hub payment %+v %v", rec, err)
		}
		// Requested on chain, never signed by k: still verifying (0 signatures, or the one lie).
		want := 0
		if x.in.ID == declined.ID {
			want = 1
		}
		if p := e.progress(x.in.ID); p.State != protocol.PaymentVerifying || p.Signatures != want {
			t.Fatalf("progress of a refused payment %+v", p)
		}
	}
}

// TestCardPurchaseOneOracleDown: with one of three nodes down, the other two still reach k=2.
func TestCardPurchaseOneOracleDown(t *testing.T) {
	e := newCardEnv(t, 1)
	if len(e.nodes) != 2 {
		t.Fatalf("%d nodes running", len(e.nodes))
	}
	fan := devchain.NewAccount("card fan, oracle down", 0)
	in := e.intent(fan, 1, 1, "4242424242424242")
	e.request(fan, in, 1, 1)
	p := e.waitState(in.ID, protocol.PaymentMinted)
	if p.Signatures != 2 || p.Quantity != 1 {
		t.Fatalf("progress %+v", p)
	}
	waitFor(t, "the ticket", func() bool { return e.tickets(fan) == 1 })
}

// TestCardPurchaseBatch: purchases that become ready together are proposed to the oracles
// as one batch report and minted by one fulfil; each payment still mints exactly once.
func TestCardPurchaseBatch(t *testing.T) {
	e := newCardEnv(t)
	const n = 5
	fans := make([]*devchain.Account, n)
	intents := make([]protocol.PaymentIntent, n)
	subs := make([]protocol.ForwardSubmission, n)
	for i := range fans {
		fans[i] = devchain.NewAccount("batch fan", i)
		intents[i] = e.intent(fans[i], 0, 1, "4242424242424242")
		pid, _ := protocol.ParseHash32("paymentId", intents[i].PaymentID)
		req, sig := e.chain.SignForward(fans[i], e.chain.Demo, devchain.Ticket.PackRequestPurchase(pid, big.NewInt(0), big.NewInt(1)), 400_000, e.chain.Now()+3600)
		subs[i] = protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}
	}
	for _, sub := range subs { // all at once: they land in one block or two
		var st protocol.RequestStatus
		e.result(protocol.MethodSendForward, []any{sub}, &st)
	}
	txs := map[string]int{}
	for i := range intents {
		p := e.waitState(intents[i].ID, protocol.PaymentMinted)
		txs[p.TxHash]++
		rec, err := e.chain.HubPayment(protocol.PaymentIDOf(intents[i].ID))
		if err != nil || rec.Status != devchain.PaymentMinted || rec.Quantity.Uint64() != 1 {
			t.Fatalf("hub payment %d: %+v %v", i, rec, err)
		}
	}
	most := 0
	for _, c := range txs {
		most = max(most, c)
	}
	if most < 2 {
		t.Fatalf("no batch: %d purchases in %d transactions %v", n, len(txs), txs)
	}
	t.Logf("%d purchases minted in %d transactions", n, len(txs))
	for _, f := range fans {
		waitFor(t, "each fan's ticket", func() bool { return e.tickets(f) == 1 })
	}
}

// TestCardPurchaseChargeback: a minted card purchase whose payment is charged back by the
// cardholder's bank, or refunded by hand on the processor afterwards, is reported by the
// oracles (each checks its own processor) and its tickets are burned.
func TestCardPurchaseChargeback(t *testing.T) {
	e := newCardEnv(t)
	ctx := context.Background()
	fan, other := devchain.NewAccount("charged-back fan", 0), devchain.NewAccount("refunded fan", 0)
	cb := e.intent(fan, 0, 2, "4242424242424242")
	e.request(fan, cb, 0, 2)
	rf := e.intent(other, 0, 1, "4242424242424242")
	e.request(other, rf, 0, 1)
	e.waitState(cb.ID, protocol.PaymentMinted)
	e.waitState(rf.ID, protocol.PaymentMinted)
	waitFor(t, "the card tickets", func() bool { return e.tickets(fan) == 2 && e.tickets(other) == 1 })

	if _, err := e.api.Chargeback(ctx, cb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.Refund(ctx, rf.ID); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		in     protocol.PaymentIntent
		status uint8
		who    *devchain.Account
	}{{cb, devchain.PaymentChargedBack, fan}, {rf, devchain.PaymentRefunded, other}} {
		waitFor(t, "the reversal on chain", func() bool {
			rec, err := e.chain.HubPayment(protocol.PaymentIDOf(x.in.ID))
			return err == nil && rec.Status == x.status
		})
		waitFor(t, "the tickets to be burned", func() bool { return e.tickets(x.who) == 0 })
		e.waitState(x.in.ID, protocol.PaymentRefunded)
	}
}

// TestCardPurchaseRelayRestart: the relay restarts while a purchase is half signed (one of
// the k = 2 signatures in its memory). The node that signed sends its report again, a
// second node signs, and the purchase mints exactly once; the relay still knows every
// payment it created. A payment that is paid but never requested on chain is refunded.
func TestCardPurchaseRelayRestart(t *testing.T) {
	e := newCardEnvWith(t, cardOptions{down: []int{1, 2}, rpcOnly: true, expire: 2 * time.Second})
	fan := devchain.NewAccount("restart fan", 0)
	in := e.intent(fan, 0, 2, "4242424242424242")
	e.request(fan, in, 0, 2)
	p := e.waitState(in.ID, protocol.PaymentVerifying)
	if p.Signatures != 1 {
		t.Fatalf("before the restart %+v", p)
	}
	// Paid, never requested: refunded once it expires, also across the restart.
	idle := devchain.NewAccount("fan who never requests", 0)
	unrequested := e.intent(idle, 0, 1, "4242424242424242")

	e.restart()
	if p := e.progress(in.ID); p.State != protocol.PaymentVerifying && p.State != protocol.PaymentCreated {
		t.Fatalf("after the restart %+v", p)
	}
	e.nodes = append(e.nodes, e.startNodes(0, 2)...) // node 1 comes up: k = 2 with node 0's resent report
	p = e.waitState(in.ID, protocol.PaymentMinted)
	if p.Quantity != 2 {
		t.Fatalf("minted %+v", p)
	}
	waitFor(t, "the tickets", func() bool { return e.tickets(fan) == 2 })
	rec, err := e.chain.HubPayment(protocol.PaymentIDOf(in.ID))
	if err != nil || rec.Status != devchain.PaymentMinted || rec.Quantity.Uint64() != 2 {
		t.Fatalf("hub payment %+v %v", rec, err)
	}
	waitFor(t, "the unrequested payment to be refunded", func() bool {
		got, err := e.api.Retrieve(context.Background(), unrequested.ID)
		return err == nil && got.AmountRefunded == got.Amount
	})
	time.Sleep(time.Second)
	if n := e.tickets(fan); n != 2 {
		t.Fatalf("%d tickets after the restart, want exactly 2", n)
	}
}

// TestCardPurchaseResale: a fan buys a listed ticket by card. The intent is bound to (event,
// token, buyer) at the listing price; the gasless requestResale claims the payment; the
// oracles verify it like a primary purchase and the ticket moves to the fan.
func TestCardPurchaseResale(t *testing.T) {
	e := newCardEnv(t)
	seller := e.chain.Accounts[6]
	e.buy(seller, 1)
	var mine []protocol.TicketInfo
	waitFor(t, "the seller's ticket", func() bool {
		e.result(protocol.MethodTicketsByOwner, []any{seller.Address.Hex()}, &mine)
		return len(mine) == 1
	})
	id, _ := new(big.Int).SetString(mine[0].TokenID, 10)
	price := devchain.USDC(48)
	e.chain.MustTransact(seller, e.chain.Demo, devchain.Ticket.PackList(id, price), nil)

	fan := devchain.NewAccount("card resale fan", 0)
	// Refused: a ticket not for resale, and a buyer who already owns it.
	if r := e.call(protocol.MethodCreateResalePayment, []any{e.chain.Demo.Hex(), id.Uint64() + 1000, fan.Address.Hex()}); r.Error == nil || !strings.Contains(r.Error.Message, "not for resale") {
		t.Fatalf("unlisted ticket: %+v", r.Error)
	}
	if r := e.call(protocol.MethodCreateResalePayment, []any{e.chain.Demo.Hex(), id.Uint64(), seller.Address.Hex()}); r.Error == nil || !strings.Contains(r.Error.Message, "already") {
		t.Fatalf("own ticket: %+v", r.Error)
	}
	var in protocol.PaymentIntent
	e.result(protocol.MethodCreateResalePayment, []any{e.chain.Demo.Hex(), id.Uint64(), fan.Address.Hex()}, &in)
	if in.Amount != 4800 || in.Price != price.String() || in.Tier != id.Uint64() || in.Quantity != 0 {
		t.Fatalf("resale intent %+v", in)
	}
	if _, err := e.api.Confirm(context.Background(), in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}); err != nil {
		t.Fatal(err)
	}
	pid, _ := protocol.ParseHash32("paymentId", in.PaymentID)
	req, sig := e.chain.SignForward(fan, e.chain.Demo, devchain.Ticket.PackRequestResale(pid, id), 400_000, e.chain.Now()+3600)
	var st protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}}, &st)
	p := e.waitState(in.ID, protocol.PaymentMinted)
	if p.FirstTokenID != id.String() {
		t.Fatalf("resale progress %+v", p)
	}
	waitFor(t, "the ticket to move", func() bool { return e.tickets(fan) == 1 && e.tickets(seller) == 0 })
	if b := e.chain.Balance(fan.Address); b.Sign() != 0 {
		t.Fatalf("the fan paid gas: %s", b)
	}
}

// TestCardPurchasePayouts: the payout worker turns each card sale's RevenueSplit events into
// one transfer per party on the processor's ledger (the sandbox's connected accounts), for
// exactly what the split gives each, and a relay restart pays nobody twice.
func TestCardPurchasePayouts(t *testing.T) {
	e := newCardEnv(t)
	fan := devchain.NewAccount("payout fan", 0)
	in := e.intent(fan, 0, 2, "4242424242424242")
	e.request(fan, in, 0, 2)
	e.waitState(in.ID, protocol.PaymentMinted)

	var ev protocol.EventInfo
	e.result(protocol.MethodEvent, []any{e.chain.Demo.Hex()}, &ev)
	want := map[string]int64{} // connected account → cents, from the event's split of 90.00
	var total int64
	for _, sp := range ev.Splits {
		cents := in.Amount * int64(sp.Bps) / 10_000
		want[payments.SandboxAccount(sp.Account)] += cents
		total += cents
	}
	if total != in.Amount {
		t.Fatalf("the split does not add up: %d of %d", total, in.Amount)
	}
	payouts := func() []payments.Payout {
		ps, err := e.sandbox.Payouts()
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	waitFor(t, "a payout per party", func() bool { return len(payouts()) == len(ev.Splits) })
	got := map[string]int64{}
	for _, p := range payouts() {
		got[p.Destination] += p.Amount
		if !strings.HasPrefix(p.ID, "tr_") || p.Currency != "usd" || p.Group == "" {
			t.Fatalf("payout %+v", p)
		}
	}
	for acct, cents := range want {
		if got[acct] != cents {
			t.Fatalf("%s was paid %d cents, its split is %d (all: %v)", acct, got[acct], cents, got)
		}
	}

	// A restart reads the chain again from its saved cursor: nobody is paid twice.
	e.restart()
	time.Sleep(2 * time.Second)
	if n := len(payouts()); n != len(ev.Splits) {
		t.Fatalf("%d payouts after the restart, want %d", n, len(ev.Splits))
	}
}

// TestCardPurchaseSoldOutAfterPayment: a rule that fails at mint time after the fan paid —
// the last ticket went to someone else between request and payment — mints nothing; the
// payment is refunded on the processor and reported refunded on chain.
func TestCardPurchaseSoldOutAfterPayment(t *testing.T) {
	e := newCardEnv(t)
	issuer := e.chain.Accounts[1]
	cfg := e.chain.DefaultConfig(issuer.Address, e.chain.Accounts[3].Address, e.chain.Accounts[4].Address)
	cfg.Name, cfg.Tiers[0].Supply = "One ticket only", 1
	ev, err := e.chain.CreateEvent(issuer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay to index the event", func() bool {
		return e.call(protocol.MethodEvent, []any{ev.Hex()}).Error == nil
	})
	fan, rival := devchain.NewAccount("sold-out card fan", 0), e.chain.Accounts[7]
	var in protocol.PaymentIntent
	e.result(protocol.MethodCreatePayment, []any{ev.Hex(), 0, 1, fan.Address.Hex()}, &in)
	pid, _ := protocol.ParseHash32("paymentId", in.PaymentID)
	req, sig := e.chain.SignForward(fan, ev, devchain.Ticket.PackRequestPurchase(pid, big.NewInt(0), big.NewInt(1)), 400_000, e.chain.Now()+3600)
	var st protocol.RequestStatus
	e.result(protocol.MethodSendForward, []any{protocol.ForwardSubmission{Request: req.JSON(), Signature: fmt.Sprintf("0x%x", sig)}}, &st)
	waitFor(t, "the card request to be mined", func() bool {
		var now protocol.RequestStatus
		e.result(protocol.MethodRequestStatus, []any{st.ID}, &now)
		return now.State == protocol.RequestMined
	})
	// The rival takes the only ticket with TestUSD before the fan pays.
	e.chain.FundUSD(ev, devchain.USDC(100), rival)
	e.chain.MustTransact(rival, ev, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(100)), nil)
	if _, err := e.api.Confirm(context.Background(), in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: time.Now().Year() + 2, CVC: "123"}); err != nil {
		t.Fatal(err)
	}
	e.waitState(in.ID, protocol.PaymentRefunded)
	paid, err := e.api.Retrieve(context.Background(), in.ID)
	if err != nil || paid.AmountRefunded != paid.Amount {
		t.Fatalf("refund on the processor: %+v %v", paid, err)
	}
	if rec, err := e.chain.HubPayment(pid); err != nil || rec.Status != devchain.PaymentRefunded {
		t.Fatalf("hub payment %+v %v", rec, err)
	}
	if n := e.tickets(fan); n != 0 {
		t.Fatalf("the sold-out purchase minted %d tickets", n)
	}
}
