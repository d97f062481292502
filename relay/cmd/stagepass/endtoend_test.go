package main

// Issue 9's end-to-end scenario: `stagepass dev` with its validators as processes of their
// own and its checkpoints anchored in btcd simnet; a fan deposits the main chain's
// stablecoin, buys a ticket on the sidechain gaslessly, sees it checkpointed and anchored,
// is checked in at the door, and after the event takes the souvenir out to the main chain.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/anchor/anchortest"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// startValidatorProcs runs `stagepass validator` processes for validators first … last of
// a `stagepass dev --validator-keys keyDir` (its own keystore each, its own connections to
// both chains), reporting to the relay p on its websocket, with `--checkpoint-every 3
// --confirmations 2`; their logs go to keyDir/validator-I.log.
func startValidatorProcs(t *testing.T, p *proc, mainURL, sideURL string, root, child common.Address, keyDir string, first, last int) {
	t.Helper()
	for i := first; i <= last; i++ {
		cmd := exec.Command(binary(t), "validator", "--keystore", filepath.Join(keyDir, fmt.Sprintf("validator-%d.json", i)),
			"--password-file", filepath.Join(keyDir, "password"), "--main-rpc", mainURL, "--side-rpc", sideURL,
			"--root-gateway", root.Hex(), "--child-gateway", child.Hex(), "--relay", "ws"+strings.TrimPrefix(p.url, "http")+"/ws",
			"--checkpoint-every", "3", "--confirmations", "2")
		logFile, err := os.Create(filepath.Join(keyDir, fmt.Sprintf("validator-%d.log", i)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logFile.Close() })
	}
}

// devChains drives a running `stagepass dev`: its relay over HTTP JSON-RPC, both chains over
// their own JSON-RPC.
type devChains struct {
	t          testing.TB
	p          *proc
	main, side *ethclient.Client
	mainID     *big.Int
	info       protocol.ChainInfo
}

func (d *devChains) rpc(method string, params []any, out any) error {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return err
	}
	res, err := http.Post(d.p.url+"/rpc", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var m struct {
		Result json.RawMessage
		Error  *struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	if m.Error != nil {
		return fmt.Errorf("%s: %s", method, m.Error.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(m.Result, out)
}

func (d *devChains) mustRPC(method string, params []any, out any) {
	d.t.Helper()
	if err := d.rpc(method, params, out); err != nil {
		d.t.Fatal(err)
	}
}

// sideNow is the sidechain's clock, its latest block's time: with a block every 200 ms, each
// at least a second after the one before, it runs ahead of the wall clock.
func (d *devChains) sideNow() uint64 {
	d.t.Helper()
	h, err := d.side.HeaderByNumber(context.Background(), nil)
	if err != nil {
		d.t.Fatal(err)
	}
	return h.Time
}

// env is what a wallet asks the relay before it builds a request.
func (d *devChains) env(account ethcrypto.Address) actions.Env {
	d.t.Helper()
	var nonce string
	d.mustRPC(protocol.MethodForwarderNonce, []any{account.Hex()}, &nonce)
	n, ok := new(big.Int).SetString(nonce, 10)
	if !ok {
		d.t.Fatalf("forwarder nonce %q", nonce)
	}
	fwd, err := ethcrypto.ParseAddress(d.info.Forwarder)
	if err != nil {
		d.t.Fatal(err)
	}
	return actions.Env{ChainID: d.info.ChainID, Forwarder: fwd, Nonce: n, Now: time.Unix(int64(d.sideNow()), 0)}
}

// send signs a as k and gives it to the relay (sp_sendForward), as the wallet does.
func (d *devChains) send(a *actions.Action, k *ethcrypto.PrivateKey) (protocol.RequestStatus, error) {
	sub, err := a.Sign(k)
	if err != nil {
		d.t.Fatal(err)
	}
	var st protocol.RequestStatus
	err = d.rpc(protocol.MethodSendForward, []any{sub}, &st)
	return st, err
}

// forward sends a and waits until the relay has it mined; the sidechain receipt.
func (d *devChains) forward(a *actions.Action, k *ethcrypto.PrivateKey) *types.Receipt {
	d.t.Helper()
	st, err := d.send(a, k)
	if err != nil {
		d.t.Fatalf("%s: %v", a.Summary.Title, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.State != protocol.RequestMined {
		if st.State == protocol.RequestFailed || time.Now().After(deadline) {
			d.t.Fatalf("%s: %+v", a.Summary.Title, st)
		}
		time.Sleep(100 * time.Millisecond)
		d.mustRPC(protocol.MethodRequestStatus, []any{st.ID}, &st)
	}
	r, err := d.side.TransactionReceipt(context.Background(), common.HexToHash(st.TxHash))
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		d.t.Fatalf("%s: transaction %s: %v %+v", a.Summary.Title, st.TxHash, err, r)
	}
	return r
}

// sendMain sends a transaction on the main chain from key and waits for its success.
func (d *devChains) sendMain(key *ecdsa.PrivateKey, to common.Address, data []byte, value *big.Int) *types.Receipt {
	d.t.Helper()
	ctx := context.Background()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := d.main.PendingNonceAt(ctx, from)
	if err != nil {
		d.t.Fatal(err)
	}
	gas, err := d.main.EstimateGas(ctx, ethereum.CallMsg{From: from, To: &to, Data: data, Value: value})
	if err != nil {
		d.t.Fatalf("estimate gas to %s: %v", to, err)
	}
	tip, err := d.main.SuggestGasTipCap(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	head, err := d.main.HeaderByNumber(ctx, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	feeCap := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(d.mainID), &types.DynamicFeeTx{
		ChainID: d.mainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas * 2, To: &to, Value: value, Data: data,
	})
	if err != nil {
		d.t.Fatal(err)
	}
	if err := d.main.SendTransaction(ctx, tx); err != nil {
		d.t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := bind.WaitMined(wctx, d.main, tx.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		d.t.Fatalf("main-chain transaction %s to %s: %v %+v", tx.Hash(), to, err, r)
	}
	return r
}

func (d *devChains) call(c *ethclient.Client, to common.Address, data []byte) []byte {
	d.t.Helper()
	out, err := c.CallContract(context.Background(), ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		d.t.Fatalf("call %s: %v", to, err)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after `within`.
func (d *devChains) waitFor(what string, within time.Duration, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not within %v\nstagepass dev:\n%s", what, within, d.p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func newFanKey(t *testing.T) (*ecdsa.PrivateKey, *ethcrypto.PrivateKey) {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	w, err := ethcrypto.PrivateKeyFromBytes(crypto.FromECDSA(k))
	if err != nil {
		t.Fatal(err)
	}
	return k, w
}

// TestCheckpointDevEndToEnd: issue 9 end to end. `stagepass dev` runs both chains (served
// over JSON-RPC), the relay and btcd simnet with the anchorer, no validator in-process;
// three of its four validators run as `stagepass validator` processes (3/4 of the stake,
// each one needed). A fresh fan key, funded on the main chain by a development account,
// deposits TestUSD on RootGateway and is credited spUSD on the sidechain; a fresh issuer
// creates an event priced in spUSD through the relay (gasless); the fan buys a ticket with a
// permit through the relay; sp_finality follows it to "anchored" and `stagepass checkpoint
// verify` shows the checkpoint's stake signatures and proof-of-work anchor; the gate key
// checks it in; the relay refuses its exit before the event is over and forwards it after;
// once a checkpoint carries the exit, the fan's TicketMirror on the main chain is minted,
// checked in.
func TestCheckpointDevEndToEnd(t *testing.T) {
	anchortest.RequireBtcd(t)
	const exitDelay = 20 // seconds of sidechain time
	sideAddr, mainAddr := freeAddr(t), freeAddr(t)
	mainURL, sideURL := "http://"+mainAddr, "http://"+sideAddr
	keyDir := t.TempDir()
	p := start(t, nil, "dev", "--block-time", "200ms", "--data", t.TempDir(), "--chain-rpc", sideAddr, "--main-chain-rpc", mainAddr,
		"--local-validators", "0", "--validator-keys", keyDir, "--checkpoint-every", "3", "--confirmations", "2",
		"--exit-delay", strconv.Itoa(exitDelay)+"s")
	btcd := regexp.MustCompile(`btcdRpc=(\S+) btcdUser=(\S+) btcdPass=(\S+)`).FindStringSubmatch(p.output())
	if btcd == nil {
		t.Fatalf("stagepass dev did not start the proof-of-work anchor:\n%s", p.output())
	}
	h, err := p.health()
	if err != nil {
		t.Fatal(err)
	}
	br, _ := h["bridge"].(map[string]any)
	if br == nil {
		t.Fatalf("healthz has no bridge: %v", h)
	}
	root, child := common.HexToAddress(br["rootGateway"].(string)), common.HexToAddress(br["childGateway"].(string))
	cps := common.HexToAddress(br["checkpointManager"].(string))
	d := &devChains{t: t, p: p}
	if d.main, d.mainID, err = dialChain(context.Background(), "main", mainURL); err != nil {
		t.Fatal(err)
	}
	defer d.main.Close()
	if d.side, _, err = dialChain(context.Background(), "side", sideURL); err != nil {
		t.Fatal(err)
	}
	defer d.side.Close()
	d.mustRPC(protocol.MethodChainInfo, nil, &d.info)

	startValidatorProcs(t, p, mainURL, sideURL, root, child, keyDir, 0, 2)

	// The fan: a fresh key, given main-chain ETH and 100 TestUSD by development account 4.
	fanKey, fan := newFanKey(t)
	master, err := keys.FromMnemonic(devnet.DevMnemonic, "")
	if err != nil {
		t.Fatal(err)
	}
	k4, err := master.Account(4)
	if err != nil {
		t.Fatal(err)
	}
	funder, err := crypto.ToECDSA(k4.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	usd, _ := devchain.RootGW.UnpackTOKEN(d.call(d.main, root, devchain.RootGW.PackTOKEN()))
	fanAddr := common.Address(fan.Address())
	d.sendMain(funder, fanAddr, nil, big.NewInt(1e18))
	d.sendMain(funder, usd, devchain.USD.PackTransfer(fanAddr, devchain.USDC(100)), nil)
	d.sendMain(fanKey, usd, devchain.USD.PackApprove(root, devchain.USDC(100)), nil)
	d.sendMain(fanKey, root, devchain.RootGW.PackDeposit(fanAddr, devchain.USDC(100)), nil)
	spUSD := common.HexToAddress(d.info.BridgedCurrency)
	if !strings.EqualFold(d.info.Gateway, child.Hex()) || d.info.MainChainID != d.mainID.Uint64() {
		t.Fatalf("sp_chainInfo %+v: want ChildGateway %s on a sidechain of main chain %s", d.info, child, d.mainID)
	}
	if tok, _ := devchain.ChildGW.UnpackTOKEN(d.call(d.side, child, devchain.ChildGW.PackTOKEN())); tok != spUSD {
		t.Fatalf("sp_chainInfo's bridged currency %s, ChildGateway's token %s", spUSD, tok)
	}
	token := childtoken.NewChildToken()
	spBalance := func() *big.Int {
		b, _ := token.UnpackBalanceOf(d.call(d.side, spUSD, token.PackBalanceOf(fanAddr)))
		return b
	}
	d.waitFor("100 spUSD credited on the sidechain", 60*time.Second, func() bool { return spBalance().Cmp(devchain.USDC(100)) == 0 })
	// The relay tells fans the confirmations these validators wait for (--confirmations 2).
	var deps []protocol.Deposit
	d.waitFor("sp_deposits shows the deposit credited", 10*time.Second, func() bool {
		d.mustRPC(protocol.MethodDeposits, []any{fanAddr.Hex()}, &deps)
		return len(deps) == 1 && deps[0].Stage == protocol.DepositCredited
	})
	if deps[0].Required != 2 || deps[0].Amount != devchain.USDC(100).String() {
		t.Fatalf("sp_deposits %+v: want 100 TestUSD credited after 2 confirmations", deps[0])
	}

	// An issuer (a fresh key, no gas anywhere) creates an event priced in spUSD through the
	// relay: doors open in 5 s of sidechain time, it starts (and resale closes) in 60 s.
	_, issuer := newFanKey(t)
	_, gate := newFanKey(t)
	now := d.sideNow()
	cfg := &actions.EventConfig{EventInfo: protocol.EventInfo{
		Name: "Harbour Sessions", Venue: "Harbour Hall", BaseURI: "http://127.0.0.1/meta/",
		StartsAt: now + 60, DoorsOpenAt: now + 5, ResaleClosesAt: now + 60, Currency: spUSD.Hex(),
		MaxPerBuyer: 4, MaxResaleMarkupBps: 1000, SellerMarkupShareBps: 5000, GiftsAllowed: true,
		Tiers:            []protocol.TierInfo{{Name: "General admission", FaceValue: devchain.USDC(25).String(), Supply: 100}},
		Splits:           []protocol.SplitInfo{{Account: issuer.Address().Hex(), Bps: 10000}},
		CategoryQuotaBps: [5]uint16{10000, 10000, 10000, 10000, 10000},
	}, Gates: []string{gate.Address().Hex()}}
	factory, err := ethcrypto.ParseAddress(d.info.Factory)
	if err != nil {
		t.Fatal(err)
	}
	create, err := actions.CreateEvent(issuer.Address(), d.env(issuer.Address()), factory, cfg,
		&protocol.PermitInfo{Token: spUSD.Hex(), Symbol: "spUSD", Decimals: 6})
	if err != nil {
		t.Fatal(err)
	}
	var event common.Address
	for _, l := range d.forward(create, issuer).Logs {
		if ev, err := devchain.Factory.UnpackEventCreatedEvent(l); err == nil {
			event = ev.EventAddress
		}
	}
	var ev protocol.EventInfo
	d.waitFor("the relay indexes the event", 10*time.Second, func() bool { return d.rpc(protocol.MethodEvent, []any{event.Hex()}, &ev) == nil })

	// The fan buys one ticket, gasless, paying 25 spUSD with a permit.
	var permit protocol.PermitInfo
	d.mustRPC(protocol.MethodPermitInfo, []any{spUSD.Hex(), fan.Address().Hex()}, &permit)
	buy, err := actions.Buy(fan.Address(), d.env(fan.Address()), &ev, &permit, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	bought := d.forward(buy, fan)
	if got := spBalance(); got.Cmp(devchain.USDC(75)) != 0 {
		t.Fatalf("after the purchase the fan holds %v spUSD base units, want 75000000", got)
	}
	var ticket protocol.TicketInfo
	d.waitFor("the relay indexes the ticket", 10*time.Second, func() bool {
		var ts []protocol.TicketInfo
		d.mustRPC(protocol.MethodTicketsByOwner, []any{fan.Address().Hex()}, &ts)
		if len(ts) == 1 {
			ticket = ts[0]
		}
		return len(ts) == 1
	})
	tokenID, _ := new(big.Int).SetString(ticket.TokenID, 10)

	// Its finality: sidechain → checkpointed → anchored, never backwards.
	order := map[string]int{server.FinalitySidechain: 0, server.FinalityCheckpointed: 1, server.FinalityAnchored: 2}
	var f server.Finality
	var stages []string
	d.waitFor("the purchase anchored", 60*time.Second, func() bool {
		d.mustRPC(protocol.MethodFinality, []any{event.Hex(), ticket.TokenID}, &f)
		if n := len(stages); n == 0 || stages[n-1] != f.Stage {
			if n > 0 && order[f.Stage] < order[stages[n-1]] {
				t.Fatalf("finality went from %s back to %s", stages[n-1], f.Stage)
			}
			stages = append(stages, f.Stage)
		}
		return f.Stage == server.FinalityAnchored
	})
	t.Logf("sp_finality stages seen: %v", stages)
	if f.Block != bought.BlockNumber.Uint64() || f.Checkpoint == nil || f.Checkpoint.StartBlock > f.Block || f.Checkpoint.EndBlock < f.Block ||
		f.Anchor == nil || f.Anchor.Confirmations < 1 || f.MainChainID != d.mainID.Uint64() {
		t.Fatalf("finality %+v (checkpoint %+v, anchor %+v) of a purchase in block %d", f, f.Checkpoint, f.Anchor, bought.BlockNumber)
	}
	out, err := exec.Command(binary(t), "checkpoint", "verify", strconv.FormatUint(f.Checkpoint.Number, 10), "--main-rpc", mainURL,
		"--checkpoints", cps.Hex(), "--btcd-rpc", btcd[1], "--btcd-user", btcd[2], "--btcd-pass", btcd[3]).CombinedOutput()
	if err != nil {
		t.Fatalf("stagepass checkpoint verify %d: %v\n%s", f.Checkpoint.Number, err, out)
	}
	for _, want := range []string{
		fmt.Sprintf("checkpoint %d on main chain %s", f.Checkpoint.Number, d.mainID),
		fmt.Sprintf("sidechain blocks  %d-%d", f.Checkpoint.StartBlock, f.Checkpoint.EndBlock),
		"stake signatures  3, signing 3000000000 at submission of 4000000000 staked now (75.0%)",
		"tx                " + f.Anchor.Txid,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("checkpoint verify lacks %q:\n%s", want, out)
		}
	}
	t.Logf("stagepass checkpoint verify %d:\n%s", f.Checkpoint.Number, out)

	// At the door, once it opens: the gate's key checks the ticket in through the relay.
	d.waitFor("doors open", 30*time.Second, func() bool { return d.sideNow() >= ev.DoorsOpenAt })
	checkIn, err := actions.CheckIn(gate.Address(), d.env(gate.Address()), &ev, []*big.Int{tokenID})
	if err != nil {
		t.Fatal(err)
	}
	d.forward(checkIn, gate)

	// The souvenir's exit, built as the wallet builds it: refused until the event is over
	// (EXIT_DELAY after its start) by the wallet's own check and, for a wallet whose clock is
	// wrong, by the relay; forwarded after.
	exitTicket := func(now time.Time) (*actions.Action, error) {
		env := d.env(fan.Address())
		if !now.IsZero() {
			env.Now = now
		}
		return actions.Gateway(fan.Address(), env, &d.info, actions.Call{Sig: actions.SigExitTicket, TokenID: tokenID, To: fan.Address()}, nil, &ev, true)
	}
	if d.sideNow() < ev.StartsAt+exitDelay {
		if a, err := exitTicket(time.Time{}); d.sideNow() < actions.ExitOpensAt(&d.info, &ev) && !errors.Is(err, actions.ErrNotAllowed) {
			t.Fatalf("the wallet prepared an exit before the event is over: %v %v", a, err)
		}
		early, err := exitTicket(time.Unix(int64(ev.StartsAt+exitDelay), 0))
		if err != nil {
			t.Fatal(err)
		}
		if st, err := d.send(early, fan); err == nil || !strings.Contains(err.Error(), "EventNotOver") {
			t.Fatalf("an exit before the event is over: %+v %v", st, err)
		}
	}
	d.waitFor("the event over", 60*time.Second, func() bool { return d.sideNow() >= ev.StartsAt+exitDelay })
	exit, err := exitTicket(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	exited := d.forward(exit, fan)
	w, err := devchain.QueuedWithdrawal(exited.Logs)
	if err != nil {
		t.Fatal(err)
	}
	if w.Kind != merkle.KindTicket || w.Asset != event || w.Value.Cmp(tokenID) != 0 || w.Recipient != fanAddr || w.Data.Sign() == 0 {
		t.Fatalf("queued withdrawal %+v", w)
	}

	// The next checkpoint carries it, and the relay exits it on the main chain (RootGateway.exit
	// from its submitter's wallet), which mints the mirror to the fan, checked in.
	var paid protocol.Withdrawal
	d.waitFor("the relay exits the souvenir", 30*time.Second, func() bool {
		var ws []protocol.Withdrawal
		d.mustRPC(protocol.MethodWithdrawals, []any{fan.Address().Hex()}, &ws)
		for _, x := range ws {
			if x.Index == w.Index {
				paid = x
			}
		}
		return paid.Stage == protocol.WithdrawalExited
	})
	if paid.Kind != "ticket" || !strings.EqualFold(paid.Event, event.Hex()) || paid.Value != tokenID.String() || !paid.CheckedIn ||
		paid.Checkpoint == nil || paid.Block != exited.BlockNumber.Uint64() {
		t.Fatalf("sp_withdrawals: %+v", paid)
	}
	tx, _, err := d.main.TransactionByHash(context.Background(), common.HexToHash(paid.ExitTx))
	if err != nil {
		t.Fatalf("exit transaction %s: %v", paid.ExitTx, err)
	}
	sk, err := master.Account(devnet.SubmitterAccount)
	if err != nil {
		t.Fatal(err)
	}
	if from, err := types.Sender(types.LatestSignerForChainID(d.mainID), tx); err != nil || from != common.Address(sk.Address()) || *tx.To() != root {
		t.Fatalf("exit transaction %s from %s to %s; want the relay's submitter %s to RootGateway", paid.ExitTx, from, tx.To(), sk.Address())
	}
	mirrorABI := mainchain.NewTicketMirror()
	mirror, _ := devchain.RootGW.UnpackMIRROR(d.call(d.main, root, devchain.RootGW.PackMIRROR()))
	id, _ := mirrorABI.UnpackMirrorId(d.call(d.main, mirror, mirrorABI.PackMirrorId(event, tokenID)))
	owner, _ := mirrorABI.UnpackOwnerOf(d.call(d.main, mirror, mirrorABI.PackOwnerOf(id)))
	souvenir, err := mirrorABI.UnpackSouvenir(d.call(d.main, mirror, mirrorABI.PackSouvenir(id)))
	if err != nil || owner != fanAddr || souvenir.TicketEvent != event || souvenir.TokenId.Cmp(tokenID) != 0 || !souvenir.WasCheckedIn {
		t.Fatalf("TicketMirror %s: owner %s, souvenir %+v %v; want the fan's, checked in", id, owner, souvenir, err)
	}
	p.stop(t)
}
