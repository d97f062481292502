package contracts_test

// Checkpoints and stake (issue 9, claims 11 and 13): StakeManager's validators, their
// EIP-712 checkpoint signatures, CheckpointManager's ≥ 2/3-of-stake and contiguity rules,
// slashing on equivocation and unbonding.

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/devchain"
)

func (e *bridgeEnv) totalStake() *big.Int {
	n, _ := devchain.Stake.UnpackTotalStake(e.callMain(e.b.Stake, devchain.Stake.PackTotalStake()))
	return n
}

func (e *bridgeEnv) stakeOf(a common.Address) *big.Int {
	v, err := devchain.Stake.UnpackValidators(e.callMain(e.b.Stake, devchain.Stake.PackValidators(a)))
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Stake
}

func TestCheckpointQuorumAndContiguity(t *testing.T) {
	// Unequal stakes: the first validator (ascending order) holds 4,000 of 7,000, so two
	// thirds (4,667) is a matter of stake, not of head count.
	e := newBridgeEnv(t, devchain.BridgeOptions{Stakes: []*big.Int{devchain.USDC(4000), devchain.USDC(1000), devchain.USDC(1000), devchain.USDC(1000)}})
	v := e.v
	stranger := devchain.NewAccount("not a validator", 0)

	cp, err := e.b.NextCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	// The Go EIP-712 encoding (what validators sign) and StakeManager's agree.
	onChain, _ := devchain.Stake.UnpackCheckpointDigest(e.callMain(e.b.Stake, devchain.Stake.PackCheckpointDigest(cp)))
	if want := devchain.CheckpointDigest(e.b.StakeDomain(), cp); onChain != want {
		t.Fatalf("checkpoint digest: chain %x, Go %x", onChain, want)
	}
	shifted := func(d int64) mainchain.Checkpoint {
		c := cp
		c.StartBlock = new(big.Int).Add(cp.StartBlock, big.NewInt(d))
		return c
	}
	backwards := cp
	backwards.EndBlock = new(big.Int).Sub(cp.StartBlock, big.NewInt(1))

	for _, tc := range []struct {
		name    string
		cp      mainchain.Checkpoint
		signers []*devchain.Account
		want    string
	}{
		{"three smaller validators: 3/7 of the stake", cp, v[1:], "NotEnoughStake"},
		{"largest alone: 4/7", cp, v[:1], "NotEnoughStake"},
		{"largest twice", cp, []*devchain.Account{v[0], v[0]}, "DuplicateSigner"},
		{"unsorted signers", cp, []*devchain.Account{v[1], v[0]}, "SignersNotSorted"},
		{"a non-validator signs", cp, devchain.SortedAccounts(v[0], v[1], stranger), "NotValidator"},
		{"no signatures", cp, nil, "NotEnoughStake"},
		{"gap after the first block", shifted(1), v[:2], "CheckpointGap"},
		{"starts before the first block", shifted(-1), v[:2], "CheckpointOverlap"},
		{"ends before it starts", backwards, v[:2], "InvalidRange"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.main.Transact(e.main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(tc.cp, tc.signers...), nil)
			wantBridgeErr(t, err, tc.want)
		})
	}
	// A signature over another checkpoint counts for nobody it could be checked against.
	other := cp
	other.BlockRoot[0] ^= 1
	sigs := devchain.SignDigest(devchain.CheckpointDigest(e.b.StakeDomain(), other), v[:2]...)
	_, err = e.main.Transact(e.main.Deployer, e.b.Checkpoints, devchain.Checkpoints.PackSubmit(cp, sigs), nil)
	if name := bridgeErr(err); name != "NotValidator" && name != "SignersNotSorted" {
		t.Fatalf("signatures over another checkpoint: %q %v", name, err)
	}

	// 5/7 of the stake: accepted and stored.
	r := e.okMain(e.main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(cp, v[:2]...))
	var ev *mainchain.CheckpointManagerCheckpointSubmitted
	for _, l := range r.Logs {
		if x, err := devchain.Checkpoints.UnpackCheckpointSubmittedEvent(l); err == nil {
			ev = x
		}
	}
	if ev == nil || ev.Number.Sign() != 0 || ev.SignedStake.Cmp(devchain.USDC(5000)) != 0 || ev.Digest != onChain {
		t.Fatalf("CheckpointSubmitted %+v", ev)
	}
	st, _ := devchain.Checkpoints.UnpackCheckpoint(e.callMain(e.b.Checkpoints, devchain.Checkpoints.PackCheckpoint(big.NewInt(0))))
	if st.StartBlock != cp.StartBlock.Uint64() || st.EndBlock != cp.EndBlock.Uint64() || st.BlockRoot != cp.BlockRoot || st.WithdrawalRoot != cp.WithdrawalRoot {
		t.Fatalf("stored %+v, submitted %+v", st, cp)
	}

	// The same range again overlaps; so does one starting inside it; one past the next
	// block leaves a gap. The next range is accepted.
	e.side.Commit()
	e.side.Commit()
	next, err := e.b.NextCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		start *big.Int
		want  string
	}{
		{"the same range again", cp.StartBlock, "CheckpointOverlap"},
		{"starting on the last checkpointed block", cp.EndBlock, "CheckpointOverlap"},
		{"skipping a block", new(big.Int).Add(next.StartBlock, big.NewInt(1)), "CheckpointGap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := next
			c.StartBlock = tc.start
			_, err := e.main.Transact(e.main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(c, v[:2]...), nil)
			wantBridgeErr(t, err, tc.want)
		})
	}
	if next.StartBlock.Uint64() != cp.EndBlock.Uint64()+1 {
		t.Fatalf("next checkpoint starts at %v, previous ended at %v", next.StartBlock, cp.EndBlock)
	}
	if n := e.checkpoint(v[0], v[2]); n != 1 {
		t.Fatalf("second checkpoint number %d", n)
	}
}

func TestCheckpointEquivocationSlashes(t *testing.T) {
	e := newBridgeEnv(t, devchain.BridgeOptions{Rewards: new(big.Int)}) // balances: stakes only
	v := e.v
	cp, err := e.b.NextCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	dom := e.b.StakeDomain()
	forked := cp
	forked.WithdrawalRoot[31] ^= 1
	sign := func(c mainchain.Checkpoint, a *devchain.Account) []byte {
		return devchain.SignDigest(devchain.CheckpointDigest(dom, c), a)[0]
	}
	otherRange := cp
	otherRange.EndBlock = new(big.Int).Add(cp.EndBlock, big.NewInt(1))

	for _, tc := range []struct {
		name   string
		a, b   mainchain.Checkpoint
		sa, sb []byte
		want   string
	}{
		{"the same checkpoint twice", cp, cp, sign(cp, v[0]), sign(cp, v[0]), "NotEquivocation"},
		{"different ranges", cp, otherRange, sign(cp, v[0]), sign(otherRange, v[0]), "NotEquivocation"},
		{"two different signers", cp, forked, sign(cp, v[0]), sign(forked, v[1]), "NotEquivocation"},
		{"a stranger signed both", cp, forked, sign(cp, devchain.NewAccount("x", 1)), sign(forked, devchain.NewAccount("x", 1)), "NotValidator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.main.Transact(e.main.Deployer, e.b.Stake, devchain.Stake.PackSlash(tc.a, tc.sa, tc.b, tc.sb), nil)
			wantBridgeErr(t, err, tc.want)
		})
	}

	// v[1] signs two roots for one range, and has started leaving: still slashable.
	e.okMain(v[1], e.b.Stake, devchain.Stake.PackLeave())
	reporter := e.main.Accounts[0]
	paidBefore := e.main.USDBalance(reporter.Address)
	r := e.okMain(reporter, e.b.Stake, devchain.Stake.PackSlash(cp, sign(cp, v[1]), forked, sign(forked, v[1])))
	var slashed *mainchain.StakeManagerSlashed
	for _, l := range r.Logs {
		if x, err := devchain.Stake.UnpackSlashedEvent(l); err == nil {
			slashed = x
		}
	}
	if slashed == nil || slashed.Validator != v[1].Address || slashed.Stake.Cmp(devchain.USDC(1000)) != 0 || slashed.Reporter != reporter.Address ||
		slashed.Reward.Cmp(devchain.USDC(100)) != 0 {
		t.Fatalf("Slashed %+v", slashed)
	}
	// The reporter is paid 10% of the stake; the rest stays locked.
	if got := new(big.Int).Sub(e.main.USDBalance(reporter.Address), paidBefore); got.Cmp(devchain.USDC(100)) != 0 {
		t.Fatalf("the reporter was paid %v, want 100 TestUSD", got)
	}
	if got := e.totalStake(); got.Cmp(devchain.USDC(3000)) != 0 {
		t.Fatalf("total stake after slashing %v", got)
	}
	if s := e.stakeOf(v[1].Address); s.Sign() != 0 {
		t.Fatalf("slashed validator keeps stake %v", s)
	}
	gone, _ := devchain.Stake.UnpackSlashedStake(e.callMain(e.b.Stake, devchain.Stake.PackSlashedStake()))
	if gone.Cmp(devchain.USDC(900)) != 0 || e.main.USDBalance(e.b.Stake).Cmp(devchain.USDC(3900)) != 0 {
		t.Fatalf("slashed stake %v, held %v", gone, e.main.USDBalance(e.b.Stake))
	}
	// Its signatures count for nothing now, it cannot unbond, and the evidence is spent.
	_, err = e.main.Transact(e.main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(cp, v[:3]...), nil)
	wantBridgeErr(t, err, "NotValidator")
	_, err = e.main.Transact(reporter, e.b.Stake, devchain.Stake.PackSlash(cp, sign(cp, v[1]), forked, sign(forked, v[1])), nil)
	wantBridgeErr(t, err, "NotValidator")
	_, err = e.main.Transact(v[1], e.b.Stake, devchain.Stake.PackUnbond(v[1].Address), nil)
	wantBridgeErr(t, err, "NotValidator")
	set, _ := devchain.Stake.UnpackValidatorSet(e.callMain(e.b.Stake, devchain.Stake.PackValidatorSet()))
	if len(set.Members) != 3 {
		t.Fatalf("validator set %v", set.Members)
	}
	for _, m := range set.Members {
		if m == v[1].Address {
			t.Fatal("slashed validator still in the set")
		}
	}
	// The three left hold all the stake: their checkpoint is accepted.
	e.checkpoint(v[0], v[2], v[3])
}

func TestCheckpointLeavingValidatorKeepsPowerUntilUnbonded(t *testing.T) {
	e := newBridgeEnv(t, devchain.BridgeOptions{UnbondingDelay: 3600, Rewards: new(big.Int)}) // stakes only
	v := e.v
	leaver := v[3]
	wantBridgeErr(t, func() error {
		_, err := e.main.Transact(leaver, e.b.Stake, devchain.Stake.PackUnbond(leaver.Address), nil)
		return err
	}(), "NotLeaving")
	e.okMain(leaver, e.b.Stake, devchain.Stake.PackLeave())
	_, err := e.main.Transact(leaver, e.b.Stake, devchain.Stake.PackLeave(), nil)
	wantBridgeErr(t, err, "AlreadyLeaving")
	_, err = e.main.Transact(e.main.Deployer, e.b.Stake, devchain.Stake.PackUnbond(leaver.Address), nil)
	wantBridgeErr(t, err, "StillBonded")

	// While unbonding it still counts: v1, v2 and the leaver are 3/4 of the stake.
	e.checkpoint(v[1], v[2], leaver)
	if got := e.totalStake(); got.Cmp(devchain.USDC(4000)) != 0 {
		t.Fatalf("total stake while unbonding %v", got)
	}

	// After the delay anyone unbonds it: its stake goes back to it, its power goes.
	e.main.Warp(time.Hour)
	before := e.main.USDBalance(leaver.Address)
	e.okMain(e.main.Accounts[0], e.b.Stake, devchain.Stake.PackUnbond(leaver.Address))
	if got := new(big.Int).Sub(e.main.USDBalance(leaver.Address), before); got.Cmp(devchain.USDC(1000)) != 0 {
		t.Fatalf("stake paid back %v", got)
	}
	if got := e.totalStake(); got.Cmp(devchain.USDC(3000)) != 0 {
		t.Fatalf("total stake after unbonding %v", got)
	}
	e.side.Commit()
	cp, err := e.b.NextCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.main.Transact(e.main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(cp, v[1], v[2], leaver), nil)
	wantBridgeErr(t, err, "NotValidator")
	// Two of the three remaining are now two thirds.
	e.okMain(e.main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(cp, v[1], v[2]))

	// It can join again (with at least the minimum stake).
	_, err = e.main.Transact(leaver, e.b.Stake, devchain.Stake.PackJoin(devchain.USDC(99)), nil)
	wantBridgeErr(t, err, "StakeTooLow")
	if _, err := e.b.Join(leaver, devchain.USDC(500)); err != nil {
		t.Fatalf("join again: %s %v", bridgeErr(err), err)
	}
	_, err = e.main.Transact(leaver, e.b.Stake, devchain.Stake.PackJoin(devchain.USDC(500)), nil)
	wantBridgeErr(t, err, "AlreadyValidator")
}

func (e *bridgeEnv) rewardOf(a common.Address) *big.Int {
	v, err := devchain.Stake.UnpackValidators(e.callMain(e.b.Stake, devchain.Stake.PackValidators(a)))
	if err != nil {
		e.t.Fatal(err)
	}
	return v.Reward
}

func (e *bridgeEnv) rewardPool() *big.Int {
	n, _ := devchain.Stake.UnpackRewardPool(e.callMain(e.b.Stake, devchain.Stake.PackRewardPool()))
	return n
}

// TestCheckpointRewardsPaySigners: each accepted checkpoint pays 1/1000 of the pool to the
// validators that signed it, in proportion to their stake out of the total; the share of a
// validator that did not sign stays in the pool. Rewards are claimed once, paid with the
// stake on unbonding, returned to the pool on slashing; only the CheckpointManager can pay
// them, and only the deployer names it, once.
func TestCheckpointRewardsPaySigners(t *testing.T) {
	// Stakes 4,000 / 2,000 / 1,000 / 1,000 of 8,000; a pool of 8,000 TestUSD.
	e := newBridgeEnv(t, devchain.BridgeOptions{UnbondingDelay: 3600, Rewards: devchain.USDC(8000),
		Stakes: []*big.Int{devchain.USDC(4000), devchain.USDC(2000), devchain.USDC(1000), devchain.USDC(1000)}})
	v := e.v
	// v0, v1 and v2 sign (7/8 of the stake); v3 does not. The payout is 8 TestUSD.
	e.checkpoint(v[0], v[1], v[2])
	for i, want := range []*big.Int{devchain.USDC(4), devchain.USDC(2), devchain.USDC(1), new(big.Int)} {
		if got := e.rewardOf(v[i].Address); got.Cmp(want) != 0 {
			t.Errorf("validator %d earned %v, want %v", i, got, want)
		}
	}
	if got := e.rewardPool(); got.Cmp(devchain.USDC(7993)) != 0 {
		t.Fatalf("pool after one checkpoint %v, want 7,993 (v3's share stays)", got)
	}
	// The next checkpoint pays 1/1000 of what is left: 7.993 × 4/8 to v0.
	e.side.Commit()
	e.checkpoint(v[0], v[1], v[3])
	if got := e.rewardOf(v[0].Address); got.Cmp(big.NewInt(4_000_000+3_996_500)) != 0 {
		t.Fatalf("v0 after two checkpoints %v", got)
	}
	if got := e.rewardOf(v[3].Address); got.Cmp(big.NewInt(999_125)) != 0 {
		t.Fatalf("v3 after signing the second %v", got)
	}

	// Claimed once.
	before := e.main.USDBalance(v[1].Address)
	e.okMain(v[1], e.b.Stake, devchain.Stake.PackClaimRewards())
	if got := new(big.Int).Sub(e.main.USDBalance(v[1].Address), before); got.Cmp(big.NewInt(2_000_000+1_998_250)) != 0 {
		t.Fatalf("v1 claimed %v", got)
	}
	_, err := e.main.Transact(v[1], e.b.Stake, devchain.Stake.PackClaimRewards(), nil)
	wantBridgeErr(t, err, "NothingToClaim")
	_, err = e.main.Transact(e.main.Accounts[0], e.b.Stake, devchain.Stake.PackClaimRewards(), nil)
	wantBridgeErr(t, err, "NothingToClaim")

	// Unbonding pays the stake and the unclaimed rewards.
	e.okMain(v[3], e.b.Stake, devchain.Stake.PackLeave())
	e.main.Warp(time.Hour)
	before = e.main.USDBalance(v[3].Address)
	e.okMain(e.main.Accounts[0], e.b.Stake, devchain.Stake.PackUnbond(v[3].Address))
	if got := new(big.Int).Sub(e.main.USDBalance(v[3].Address), before); got.Cmp(big.NewInt(1_000_000_000+999_125)) != 0 {
		t.Fatalf("unbonding paid %v", got)
	}

	// Slashing returns the unclaimed rewards to the pool.
	e.side.Commit()
	cp, err := e.b.NextCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	forked := cp
	forked.BlockRoot[0] ^= 1
	dom := e.b.StakeDomain()
	sign := func(c mainchain.Checkpoint) []byte {
		return devchain.SignDigest(devchain.CheckpointDigest(dom, c), v[2])[0]
	}
	pool, owed := e.rewardPool(), e.rewardOf(v[2].Address)
	e.okMain(e.main.Accounts[0], e.b.Stake, devchain.Stake.PackSlash(cp, sign(cp), forked, sign(forked)))
	if got := e.rewardPool(); got.Cmp(new(big.Int).Add(pool, owed)) != 0 || owed.Sign() == 0 {
		t.Fatalf("pool after slashing %v, want %v + %v", got, pool, owed)
	}
	// What the contract holds is exactly the stakes, the slashed stake, the pool and what is owed.
	gone, _ := devchain.Stake.UnpackSlashedStake(e.callMain(e.b.Stake, devchain.Stake.PackSlashedStake()))
	if gone.Cmp(devchain.USDC(900)) != 0 {
		t.Fatalf("slashed stake locked %v, want 900 of v2's 1,000 (100 paid the reporter)", gone)
	}
	held := new(big.Int).Add(e.totalStake(), gone)
	held.Add(held, e.rewardPool()).Add(held, e.rewardOf(v[0].Address)).Add(held, e.rewardOf(v[1].Address))
	if got := e.main.USDBalance(e.b.Stake); got.Cmp(held) != 0 {
		t.Fatalf("StakeManager holds %v, accounts for %v", got, held)
	}

	// Funding adds to the pool; only the CheckpointManager pays, named once by the deployer.
	pool = e.rewardPool()
	e.main.FundUSD(e.b.Stake, devchain.USDC(5), e.main.Accounts[1])
	e.okMain(e.main.Accounts[1], e.b.Stake, devchain.Stake.PackFundRewards(devchain.USDC(5)))
	if got := e.rewardPool(); got.Cmp(new(big.Int).Add(pool, devchain.USDC(5))) != 0 {
		t.Fatalf("pool after funding %v", got)
	}
	_, err = e.main.Transact(v[0], e.b.Stake, devchain.Stake.PackCheckpointQuorum(devchain.CheckpointDigest(dom, cp), nil), nil)
	wantBridgeErr(t, err, "NotCheckpoints")
	_, err = e.main.Transact(e.main.Deployer, e.b.Stake, devchain.Stake.PackSetCheckpoints(v[0].Address), nil)
	wantBridgeErr(t, err, "CheckpointsAlreadySet")
	_, err = e.main.Transact(v[0], e.b.Stake, devchain.Stake.PackSetCheckpoints(v[0].Address), nil)
	wantBridgeErr(t, err, "NotDeployer")
}
