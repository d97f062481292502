package contracts_test

// The transfer gateway (issue 9, claim 9): deposits locked in RootGateway and minted once by
// ChildGateway on the validators' attestation; withdrawals burned on the sidechain and paid
// on the main chain once, against a checkpoint's withdrawal root; tickets exiting to
// TicketMirror after their event is over; ChildGateway's copy of the validator set.

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
)

func TestGatewayDepositsMintOnce(t *testing.T) {
	e := newBridgeEnv(t, devchain.BridgeOptions{})
	v := e.v
	fan := e.main.Accounts[0]
	to := e.side.Accounts[0].Address

	_, err := e.main.Transact(fan, e.b.Root, devchain.RootGW.PackDeposit(to, big.NewInt(0)), nil)
	wantBridgeErr(t, err, "ZeroDeposit")
	_, err = e.main.Transact(fan, e.b.Root, devchain.RootGW.PackDeposit(common.Address{}, devchain.USDC(1)), nil)
	wantBridgeErr(t, err, "InvalidRecipient")

	d0 := e.deposit(fan, to, devchain.USDC(100))
	d1 := e.deposit(fan, to, devchain.USDC(25))
	if d0.DepositId.Int64() != 0 || d1.DepositId.Int64() != 1 || d0.Amount.Cmp(devchain.USDC(100)) != 0 {
		t.Fatalf("deposits %+v %+v", d0, d1)
	}
	if got := e.main.USDBalance(e.b.Root); got.Cmp(devchain.USDC(125)) != 0 {
		t.Fatalf("locked %v", got)
	}
	// The Go EIP-712 encoding and ChildGateway's agree.
	batch := []sidechain.Deposit{d0}
	onChain, _ := devchain.ChildGW.UnpackDepositDigest(e.callSide(e.b.Child, devchain.ChildGW.PackDepositDigest(batch)))
	if want := devchain.DepositDigest(e.b.ChildDomain(), batch); onChain != want {
		t.Fatalf("deposit digest: chain %x, Go %x", onChain, want)
	}
	// Signed under the main chain's domain (another chain id and contract): worthless here.
	wrongDomain := e.b.ChildDomain()
	wrongDomain.ChainId = e.b.StakeDomain().ChainId
	wrongSigs := devchain.SignDigest(devchain.DepositDigest(wrongDomain, batch), v[:3]...)
	inflated := []sidechain.Deposit{{DepositId: d0.DepositId, Recipient: d0.Recipient, Amount: devchain.USDC(1000)}}

	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"two of four validators", e.b.MintDepositsCall(batch, v[:2]...), "NotEnoughPower"},
		{"duplicate signer", e.b.MintDepositsCall(batch, v[0], v[0], v[1]), "DuplicateSigner"},
		{"unsorted signers", e.b.MintDepositsCall(batch, v[1], v[0], v[2]), "SignersNotSorted"},
		{"empty batch", e.b.MintDepositsCall(nil, v[:3]...), "EmptyBatch"},
		{"another chain's domain", devchain.ChildGW.PackMintDeposits(batch, wrongSigs), "NotValidator"},
		{"amount changed after signing", devchain.ChildGW.PackMintDeposits(inflated, devchain.SignDigest(devchain.DepositDigest(e.b.ChildDomain(), batch), v[:3]...)), "NotValidator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.side.Transact(e.side.Deployer, e.b.Child, tc.data, nil)
			wantBridgeErr(t, err, tc.want)
		})
	}
	if got := e.childBalance(to); got.Sign() != 0 {
		t.Fatalf("minted %v before a valid attestation", got)
	}

	// Three of four: minted, once.
	e.okSide(e.side.Deployer, e.b.Child, e.b.MintDepositsCall(batch, v[:3]...))
	if got := e.childBalance(to); got.Cmp(devchain.USDC(100)) != 0 {
		t.Fatalf("minted %v", got)
	}
	_, err = e.side.Transact(e.side.Deployer, e.b.Child, e.b.MintDepositsCall(batch, v[:3]...), nil)
	wantBridgeErr(t, err, "DepositAlreadyMinted")
	// A batch repeating a minted deposit mints nothing at all, not even the new one.
	both := []sidechain.Deposit{d1, d0}
	_, err = e.side.Transact(e.side.Deployer, e.b.Child, e.b.MintDepositsCall(both, v[1:]...), nil)
	wantBridgeErr(t, err, "DepositAlreadyMinted")
	if got := e.childBalance(to); got.Cmp(devchain.USDC(100)) != 0 {
		t.Fatalf("balance after a refused batch %v", got)
	}
	e.okSide(e.side.Deployer, e.b.Child, e.b.MintDepositsCall([]sidechain.Deposit{d1}, v[1:]...))
	if got := e.childBalance(to); got.Cmp(devchain.USDC(125)) != 0 {
		t.Fatalf("balance %v", got)
	}
	minted, _ := devchain.ChildGW.UnpackDepositMinted(e.callSide(e.b.Child, devchain.ChildGW.PackDepositMinted(big.NewInt(1))))
	if !minted {
		t.Fatal("depositMinted(1) false")
	}
}

func TestGatewayValidatorSetFollowsStake(t *testing.T) {
	e := newBridgeEnv(t, devchain.BridgeOptions{})
	v := e.v
	// A fifth validator joins with a large stake on the main chain; the child learns the new
	// set only from a quorum of the set it knows.
	newcomer := devchain.NewAccount("validator", 99)
	if _, err := e.b.Join(newcomer, devchain.USDC(8000)); err != nil {
		t.Fatal(err)
	}
	set, _ := devchain.Stake.UnpackValidatorSet(e.callMain(e.b.Stake, devchain.Stake.PackValidatorSet()))
	accounts := map[common.Address]*devchain.Account{newcomer.Address: newcomer}
	for _, a := range v {
		accounts[a.Address] = a
	}
	var ms []*devchain.Account
	power := map[common.Address]*big.Int{}
	for i, m := range set.Members {
		ms = append(ms, accounts[m])
		power[m] = set.Stakes[i]
	}
	devchain.SortAccounts(ms)
	addrs := devchain.Addresses(ms)
	powers := make([]*big.Int, len(ms))
	for i, a := range addrs {
		powers[i] = power[a]
	}
	digest := devchain.ValidatorSetDigest(e.b.ChildDomain(), addrs, powers, 0)
	onChain, _ := devchain.ChildGW.UnpackSetDigest(e.callSide(e.b.Child, devchain.ChildGW.PackSetDigest(addrs, powers, big.NewInt(0))))
	if onChain != digest {
		t.Fatalf("set digest: chain %x, Go %x", onChain, digest)
	}
	update := func(signers ...*devchain.Account) error {
		_, err := e.side.Transact(e.side.Deployer, e.b.Child, devchain.ChildGW.PackUpdateValidators(addrs, powers, devchain.SignDigest(digest, signers...)), nil)
		return err
	}
	wantBridgeErr(t, update(v[:2]...), "NotEnoughPower")
	// The newcomer is not in the child's set yet: its signature counts for nothing.
	wantBridgeErr(t, update(devchain.SortedAccounts(newcomer, v[0], v[1], v[2])...), "NotValidator")
	if err := update(v[:3]...); err != nil {
		t.Fatalf("update: %s %v", bridgeErr(err), err)
	}
	got, _ := devchain.ChildGW.UnpackValidatorSet(e.callSide(e.b.Child, devchain.ChildGW.PackValidatorSet()))
	if got.CurrentEpoch.Int64() != 1 || len(got.Validators) != 5 {
		t.Fatalf("child set %+v", got)
	}
	// Replaying the update: signed for epoch 0, so it recovers to nobody now.
	wantBridgeErr(t, update(v[:3]...), "NotValidator")

	// Now the newcomer holds 8,000 of 12,000: the four old validators alone are not enough
	// to attest a deposit, the newcomer with one of them is.
	d := e.deposit(e.main.Accounts[0], e.side.Accounts[0].Address, devchain.USDC(10))
	_, err := e.side.Transact(e.side.Deployer, e.b.Child, e.b.MintDepositsCall([]sidechain.Deposit{d}, v...), nil)
	wantBridgeErr(t, err, "NotEnoughPower")
	e.okSide(e.side.Deployer, e.b.Child, e.b.MintDepositsCall([]sidechain.Deposit{d}, devchain.SortedAccounts(newcomer, v[0])...))

	// A set that is not ascending, or has a zero power, is refused even with a quorum.
	bad := []common.Address{addrs[1], addrs[0]}
	badPowers := []*big.Int{powers[1], powers[0]}
	sigs := devchain.SignDigest(devchain.ValidatorSetDigest(e.b.ChildDomain(), bad, badPowers, 1), devchain.SortedAccounts(newcomer, v[0])...)
	_, err = e.side.Transact(e.side.Deployer, e.b.Child, devchain.ChildGW.PackUpdateValidators(bad, badPowers, sigs), nil)
	wantBridgeErr(t, err, "ValidatorsNotSorted")
}

func TestGatewayWithdrawalsExitOnce(t *testing.T) {
	e := newBridgeEnv(t, devchain.BridgeOptions{})
	v := e.v
	q := v[:3]
	fan := e.side.Accounts[0]
	mainFan := e.main.Accounts[0]
	d := e.deposit(mainFan, fan.Address, devchain.USDC(100))
	e.okSide(e.side.Deployer, e.b.Child, e.b.MintDepositsCall([]sidechain.Deposit{d}, q...))

	_, err := e.side.Transact(fan, e.b.Child, devchain.ChildGW.PackWithdraw(mainFan.Address, big.NewInt(0)), nil)
	wantBridgeErr(t, err, "ZeroAmount")
	_, err = e.side.Transact(fan, e.b.Child, devchain.ChildGW.PackWithdraw(mainFan.Address, devchain.USDC(101)), nil)
	wantBridgeErr(t, err, "ERC20InsufficientBalance")

	// Checkpoint 0 covers the deposit's mint but no withdrawal yet.
	if n := e.checkpoint(q...); n != 0 {
		t.Fatalf("checkpoint %d", n)
	}
	w0 := e.queued(e.okSide(fan, e.b.Child, devchain.ChildGW.PackWithdraw(mainFan.Address, devchain.USDC(40))))
	other := e.main.Accounts[1]
	w1 := e.queued(e.okSide(fan, e.b.Child, devchain.ChildGW.PackWithdraw(other.Address, devchain.USDC(10))))
	if e.childBalance(fan.Address).Cmp(devchain.USDC(50)) != 0 {
		t.Fatalf("after burning 50: %v", e.childBalance(fan.Address))
	}
	if w0.Kind != merkle.KindToken || w0.Index != 0 || w1.Index != 1 || w0.Value.Cmp(devchain.USDC(40)) != 0 {
		t.Fatalf("withdrawals %+v %+v", w0, w1)
	}

	exit := func(number uint64, w merkle.Withdrawal) error {
		_, err := e.main.Transact(e.main.Deployer, e.b.Root, e.exitCall(number, w), nil)
		return err
	}
	// Before a checkpoint carries it: against checkpoint 0 the proof fails, checkpoint 1
	// does not exist yet.
	wantBridgeErr(t, exit(0, w0), "InvalidProof")
	wantBridgeErr(t, exit(1, w0), "UnknownCheckpoint")

	if n := e.checkpoint(q...); n != 1 {
		t.Fatalf("checkpoint %d", n)
	}
	forged := func(edit func(w *merkle.Withdrawal)) merkle.Withdrawal {
		f := w0
		f.Value = new(big.Int).Set(w0.Value)
		edit(&f)
		return f
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"more than was burned", devchain.RootGW.PackExit(big.NewInt(1), devchain.MainWithdrawal(forged(func(w *merkle.Withdrawal) { w.Value = devchain.USDC(41) })), proofOf(t, e.tree, 0))},
		{"another recipient", devchain.RootGW.PackExit(big.NewInt(1), devchain.MainWithdrawal(forged(func(w *merkle.Withdrawal) { w.Recipient = other.Address })), proofOf(t, e.tree, 0))},
		{"as a ticket", devchain.RootGW.PackExit(big.NewInt(1), devchain.MainWithdrawal(forged(func(w *merkle.Withdrawal) { w.Kind = merkle.KindTicket })), proofOf(t, e.tree, 0))},
		{"the other leaf's proof", devchain.RootGW.PackExit(big.NewInt(1), devchain.MainWithdrawal(w0), proofOf(t, e.tree, 1))},
		{"a truncated proof", devchain.RootGW.PackExit(big.NewInt(1), devchain.MainWithdrawal(w0), proofOf(t, e.tree, 0)[:31])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.main.Transact(e.main.Deployer, e.b.Root, tc.data, nil)
			wantBridgeErr(t, err, "InvalidProof")
		})
	}

	before := e.main.USDBalance(mainFan.Address)
	if err := exit(1, w0); err != nil {
		t.Fatalf("exit: %s %v", bridgeErr(err), err)
	}
	if got := new(big.Int).Sub(e.main.USDBalance(mainFan.Address), before); got.Cmp(devchain.USDC(40)) != 0 {
		t.Fatalf("paid %v", got)
	}
	wantBridgeErr(t, exit(1, w0), "AlreadyExited")
	// A later checkpoint's root holds the same leaf: still paid only once.
	e.side.Commit()
	e.checkpoint(q...)
	wantBridgeErr(t, exit(2, w0), "AlreadyExited")
	if err := exit(2, w1); err != nil {
		t.Fatalf("exit 1: %s %v", bridgeErr(err), err)
	}
	if got := e.main.USDBalance(other.Address); got.Cmp(devchain.USDC(10)) != 0 {
		t.Fatalf("second recipient got %v", got)
	}
	if got := e.main.USDBalance(e.b.Root); got.Cmp(devchain.USDC(50)) != 0 {
		t.Fatalf("still locked %v, want the 50 not withdrawn", got)
	}

	// Nine more leaves (the tree carries up three levels on the way; each root is checked
	// against ChildGateway's in queued), then any of them exits against the next checkpoint.
	var more []merkle.Withdrawal
	for range 9 {
		more = append(more, e.queued(e.okSide(fan, e.b.Child, devchain.ChildGW.PackWithdraw(other.Address, devchain.USDC(1)))))
	}
	e.checkpoint(q...)
	for _, w := range []merkle.Withdrawal{more[0], more[5], more[8]} {
		if err := exit(3, w); err != nil {
			t.Fatalf("exit %d: %s %v", w.Index, bridgeErr(err), err)
		}
	}
	if got := e.main.USDBalance(other.Address); got.Cmp(devchain.USDC(13)) != 0 {
		t.Fatalf("second recipient got %v in all", got)
	}
}

func proofOf(t *testing.T, tree *merkle.Tree, i int) [][32]byte {
	t.Helper()
	p, err := tree.Proof(i)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][32]byte, len(p))
	for j, h := range p {
		out[j] = h
	}
	return out
}

// A fan bridges stablecoin to the sidechain, buys tickets there with it, one is checked in;
// once the event is over both exit to the main chain as mirrors keeping their metadata.
func TestGatewayTicketExitAfterEvent(t *testing.T) {
	e := newBridgeEnv(t, devchain.BridgeOptions{ExitDelay: 3600})
	q := e.v[:3]
	issuer, artist, venue, gate := e.side.Accounts[0], e.side.Accounts[1], e.side.Accounts[2], e.side.Accounts[3]
	fan, other := e.side.Accounts[4], e.side.Accounts[5]
	mainFan := e.main.Accounts[0]

	d := e.deposit(mainFan, fan.Address, devchain.USDC(100))
	e.okSide(e.side.Deployer, e.b.Child, e.b.MintDepositsCall([]sidechain.Deposit{d}, q...))

	cfg := e.side.DefaultConfig(issuer.Address, artist.Address, venue.Address)
	cfg.Currency = e.b.ChildToken
	cfg.Gates = []common.Address{gate.Address}
	ev, err := e.side.CreateEvent(issuer, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.okSide(fan, e.b.ChildToken, childToken.PackApprove(ev, devchain.USDC(100)))
	r := e.okSide(fan, ev, ticket.PackBuy(zero, u(2), devchain.USDC(50)))
	var first *big.Int
	for _, l := range r.Logs {
		if p, err := ticket.UnpackPurchasedEvent(l); err == nil {
			first = p.FirstTokenId
		}
	}
	if first == nil || e.childBalance(fan.Address).Sign() != 0 {
		t.Fatalf("purchase: first %v, bridged balance left %v", first, e.childBalance(fan.Address))
	}
	second := new(big.Int).Add(first, u(1))
	exitTicket := func(from *devchain.Account, event common.Address, id *big.Int) error {
		_, err := e.side.Transact(from, e.b.Child, devchain.ChildGW.PackExitTicket(event, id, mainFan.Address), nil)
		return err
	}

	// Before the event is over the ticket cannot leave, at any stage.
	wantBridgeErr(t, exitTicket(fan, ev, first), "EventNotOver")
	e.side.Warp(7*24*time.Hour - 2*time.Hour) // doors open
	e.okSide(gate, ev, ticket.PackCheckIn(first))
	wantBridgeErr(t, exitTicket(fan, ev, first), "EventNotOver")
	e.side.Warp(2*time.Hour + 30*time.Minute) // the show has started; exit delay (1 h) not over
	wantBridgeErr(t, exitTicket(fan, ev, second), "EventNotOver")
	e.side.Warp(time.Hour)

	// Over: only the holder, only genuine events, each ticket once.
	wantBridgeErr(t, exitTicket(other, ev, first), "NotTicketHolder")
	wantBridgeErr(t, exitTicket(fan, e.side.USD, first), "NotGenuineEvent")
	souvenir := e.queued(e.okSide(fan, e.b.Child, devchain.ChildGW.PackExitTicket(ev, first, mainFan.Address)))
	plain := e.queued(e.okSide(fan, e.b.Child, devchain.ChildGW.PackExitTicket(ev, second, mainFan.Address)))
	wantBridgeErr(t, exitTicket(fan, ev, first), "TicketAlreadyExited")
	if souvenir.Kind != merkle.KindTicket || souvenir.Asset != ev || souvenir.Value.Cmp(first) != 0 || souvenir.Data.Int64() != 1 || plain.Data.Int64() != 0 {
		t.Fatalf("ticket withdrawals %+v %+v", souvenir, plain)
	}
	// The sidechain ticket stays frozen where it is: the event moves nothing any more.
	_, err = e.side.Transact(fan, ev, ticket.PackTransferFrom(fan.Address, other.Address, second), nil)
	if name := errName(err); name != "SalesClosed" {
		t.Fatalf("transfer after exit: %q %v", name, err)
	}

	// A cancelled event's tickets do not exit.
	cfg2 := e.side.DefaultConfig(issuer.Address, artist.Address, venue.Address)
	ev2, err := e.side.CreateEvent(issuer, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	e.okSide(issuer, ev2, ticket.PackCancelEvent(zero))
	wantBridgeErr(t, exitTicket(fan, ev2, first), "EventCancelled")

	// On the main chain, against the next checkpoint.
	n := e.checkpoint(q...)
	e.okMain(e.main.Deployer, e.b.Root, e.exitCall(n, souvenir))
	e.okMain(e.main.Deployer, e.b.Root, e.exitCall(n, plain))
	_, err = e.main.Transact(e.main.Deployer, e.b.Root, e.exitCall(n, souvenir), nil)
	wantBridgeErr(t, err, "AlreadyExited")
	for _, tc := range []struct {
		id        *big.Int
		checkedIn bool
	}{{first, true}, {second, false}} {
		mid, _ := devchain.Mirror.UnpackMirrorId(e.callMain(e.b.Mirror, devchain.Mirror.PackMirrorId(ev, tc.id)))
		owner, _ := devchain.Mirror.UnpackOwnerOf(e.callMain(e.b.Mirror, devchain.Mirror.PackOwnerOf(mid)))
		s, err := devchain.Mirror.UnpackSouvenir(e.callMain(e.b.Mirror, devchain.Mirror.PackSouvenir(mid)))
		if err != nil {
			t.Fatal(err)
		}
		if owner != mainFan.Address || s.TicketEvent != ev || s.TokenId.Cmp(tc.id) != 0 || s.Tier.Sign() != 0 || s.WasCheckedIn != tc.checkedIn {
			t.Fatalf("mirror of %v: owner %s, %+v", tc.id, owner, s)
		}
	}
	// Only the gateway mints mirrors.
	_, err = e.main.Transact(mainFan, e.b.Mirror, devchain.Mirror.PackMint(mainFan.Address, ev, u(7), true), nil)
	wantBridgeErr(t, err, "NotGateway")
}

// Fans hold no sidechain gas: withdrawals (and ticket exits) go through the forwarder, and
// the gateway burns the signer's tokens, not the relayer's.
func TestGatewayWithdrawThroughForwarder(t *testing.T) {
	e := newBridgeEnv(t, devchain.BridgeOptions{})
	fan := devchain.NewAccount("gateway fan without sidechain gas", 0)
	mainFan := e.main.Accounts[0]
	relayer := e.side.Deployer
	d := e.deposit(mainFan, fan.Address, devchain.USDC(30))
	e.okSide(relayer, e.b.Child, e.b.MintDepositsCall([]sidechain.Deposit{d}, e.v[:3]...))

	req, sig := e.side.SignForward(fan, e.b.Child, devchain.ChildGW.PackWithdraw(mainFan.Address, devchain.USDC(12)), 300_000, e.side.Now()+600)
	data := forwarder.NewStagepassForwarder().PackExecute(forwarder.ERC2771ForwarderForwardRequestData{
		From: fan.Address, To: e.b.Child, Value: req.Value, Gas: req.Gas,
		Deadline: new(big.Int).SetUint64(req.Deadline), Data: req.Data, Signature: sig,
	})
	// Were the gateway to burn from its caller, the relayer (who holds no spUSD) would revert.
	if _, err := e.side.Transact(relayer, e.side.Forwarder, data, nil); err != nil {
		t.Fatalf("forwarded withdraw: %s %v", bridgeErr(err), err)
	}
	if got := e.childBalance(fan.Address); got.Cmp(devchain.USDC(18)) != 0 {
		t.Fatalf("fan's bridged balance %v after withdrawing 12 of 30", got)
	}
}

// A deposit authorized by the owner's EIP-2612 permit and sent by someone else (the relay):
// credited to the owner, whoever submits; a permit used once, expired or signed by another
// key deposits nothing; a permit front-run straight to the token still deposits.
func TestGatewayDepositWithPermit(t *testing.T) {
	e := newBridgeEnv(t, devchain.BridgeOptions{})
	relayer, fan, other := e.main.Accounts[0], e.main.Accounts[1], e.main.Accounts[2]
	e.main.MustTransact(relayer, e.main.USD, devchain.USD.PackMint(fan.Address, devchain.USDC(50)), nil)
	amount := big.NewInt(12_500_000) // 12.50
	deadline := new(big.Int).SetUint64(e.main.Now() + 3600)
	call := func(owner *devchain.Account, signer *devchain.Account, amount, deadline *big.Int) []byte {
		v, r, s := e.main.SignPermit(signer, e.b.Root, amount, deadline)
		return devchain.RootGW.PackDepositWithPermit(owner.Address, amount, deadline, v, r, s)
	}

	_, err := e.main.Transact(relayer, e.b.Root, call(fan, fan, big.NewInt(0), deadline), nil)
	wantBridgeErr(t, err, "ZeroDeposit")
	_, err = e.main.Transact(relayer, e.b.Root, devchain.RootGW.PackDepositWithPermit(common.Address{}, amount, deadline, 27, [32]byte{}, [32]byte{}), nil)
	wantBridgeErr(t, err, "InvalidRecipient")
	_, err = e.main.Transact(relayer, e.b.Root, call(fan, other, amount, deadline), nil)
	wantBridgeErr(t, err, "PermitNotUsable")
	expired := new(big.Int).SetUint64(e.main.Now() - 1)
	_, err = e.main.Transact(relayer, e.b.Root, call(fan, fan, amount, expired), nil)
	wantBridgeErr(t, err, "PermitNotUsable")

	signed := call(fan, fan, amount, deadline)
	r := e.okMain(relayer, e.b.Root, signed)
	var d sidechain.Deposit
	for _, l := range r.Logs {
		if ev, err := devchain.RootGW.UnpackDepositedEvent(l); err == nil {
			if ev.From != fan.Address || ev.Recipient != fan.Address {
				t.Fatalf("deposited from %s for %s, want the owner %s", ev.From.Hex(), ev.Recipient.Hex(), fan.Address.Hex())
			}
			d = sidechain.Deposit{DepositId: ev.DepositId, Recipient: ev.Recipient, Amount: ev.Amount}
		}
	}
	if d.Amount == nil || d.Amount.Cmp(amount) != 0 || d.DepositId.Sign() != 0 {
		t.Fatalf("deposit %+v", d)
	}
	if got := e.main.USDBalance(fan.Address); got.Cmp(big.NewInt(37_500_000)) != 0 {
		t.Fatalf("owner's balance %v after depositing 12.5 of 50", got)
	}
	if got := e.main.USDBalance(relayer.Address); got.Sign() != 0 {
		t.Fatalf("submitter's balance %v", got)
	}
	// The same permit again: its nonce is spent and the allowance used.
	_, err = e.main.Transact(relayer, e.b.Root, signed, nil)
	wantBridgeErr(t, err, "PermitNotUsable")

	// Minted on the sidechain to the owner's address (the same key on both chains).
	e.okSide(e.side.Deployer, e.b.Child, e.b.MintDepositsCall([]sidechain.Deposit{d}, e.v[:3]...))
	if got := e.childBalance(fan.Address); got.Cmp(amount) != 0 {
		t.Fatalf("owner credited %v on the sidechain", got)
	}

	// Front-run: someone submits the permit to the token first; the deposit still goes in.
	v, rr, s := e.main.SignPermit(fan, e.b.Root, amount, deadline)
	e.okMain(other, e.main.USD, devchain.USD.PackPermit(fan.Address, e.b.Root, amount, deadline, v, rr, s))
	e.okMain(relayer, e.b.Root, devchain.RootGW.PackDepositWithPermit(fan.Address, amount, deadline, v, rr, s))
	if got := e.main.USDBalance(e.b.Root); got.Cmp(devchain.USDC(25)) != 0 {
		t.Fatalf("locked %v after two deposits of 12.5", got)
	}
}
