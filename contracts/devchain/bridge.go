package devchain

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/merkle"
)

// Bindings of the main-chain and sidechain contracts.
var (
	Stake        = mainchain.NewStakeManager()
	Checkpoints  = mainchain.NewCheckpointManager()
	RootGW       = mainchain.NewRootGateway()
	Mirror       = mainchain.NewTicketMirror()
	ChildGW      = sidechain.NewChildGateway()
	bridgeDomain = map[string]string{"StakeManager": "Stagepass Validators", "ChildGateway": "Stagepass ChildGateway"}
)

// BridgeOptions configure NewBridge.
type BridgeOptions struct {
	// Validators is how many validators join (default 4); each stakes Stake (default
	// 1,000 TestUSD) unless Stakes gives each its own.
	Validators int
	Stake      *big.Int
	Stakes     []*big.Int
	// MinStake (default 100 TestUSD) and UnbondingDelay (seconds, default 7 days) configure
	// StakeManager; ExitDelay (seconds, default 1 day) ChildGateway.
	MinStake       *big.Int
	UnbondingDelay uint64
	ExitDelay      uint64
	// Rewards is what the deployer funds StakeManager's reward pool with (nil: 10,000
	// TestUSD; zero: nothing): each checkpoint pays its signers up to 1/1000 of the pool.
	Rewards *big.Int
}

// Bridge is the main chain with StakeManager, CheckpointManager and RootGateway (staking and
// bridging its TestUSD) and the sidechain with ChildGateway, whose validator set is the
// StakeManager's at deployment.
type Bridge struct {
	Main, Side *Chain
	// Validators in ascending address order (the order signatures come in); Stakes theirs.
	Validators []*Account
	Stakes     []*big.Int

	Stake, Checkpoints, Root, Mirror common.Address
	Child, ChildToken                common.Address
	// FirstBlock is the sidechain block the first checkpoint starts at.
	FirstBlock uint64
}

// NewBridge deploys the main-chain contracts on `main` and ChildGateway on `side`, funds the
// validators (keys derived from main's seed) and has each join with its stake.
func NewBridge(main, side *Chain, opts BridgeOptions) (*Bridge, error) {
	if opts.Validators == 0 {
		opts.Validators = 4
	}
	if opts.Stake == nil {
		opts.Stake = USDC(1000)
	}
	if opts.MinStake == nil {
		opts.MinStake = USDC(100)
	}
	if opts.UnbondingDelay == 0 {
		opts.UnbondingDelay = 7 * 24 * 3600
	}
	if opts.ExitDelay == 0 {
		opts.ExitDelay = 24 * 3600
	}
	b := &Bridge{Main: main, Side: side}
	var err error
	if b.Stake, err = main.Deploy(main.Deployer, &mainchain.StakeManagerMetaData,
		Stake.PackConstructor(main.USD, opts.MinStake, opts.UnbondingDelay)); err != nil {
		return nil, fmt.Errorf("deploy StakeManager: %w", err)
	}
	head, err := side.Client.BlockNumber(context.Background())
	if err != nil {
		return nil, err
	}
	b.FirstBlock = head + 1
	if b.Checkpoints, err = main.Deploy(main.Deployer, &mainchain.CheckpointManagerMetaData,
		Checkpoints.PackConstructor(b.Stake, new(big.Int).SetUint64(b.FirstBlock))); err != nil {
		return nil, fmt.Errorf("deploy CheckpointManager: %w", err)
	}
	if _, err := main.Transact(main.Deployer, b.Stake, Stake.PackSetCheckpoints(b.Checkpoints), nil); err != nil {
		return nil, fmt.Errorf("StakeManager.setCheckpoints: %w", err)
	}
	if opts.Rewards == nil {
		opts.Rewards = USDC(10_000)
	}
	if opts.Rewards.Sign() > 0 {
		main.FundUSD(b.Stake, opts.Rewards, main.Deployer)
		if _, err := main.Transact(main.Deployer, b.Stake, Stake.PackFundRewards(opts.Rewards), nil); err != nil {
			return nil, fmt.Errorf("StakeManager.fundRewards: %w", err)
		}
	}
	if b.Root, err = main.Deploy(main.Deployer, &mainchain.RootGatewayMetaData,
		RootGW.PackConstructor(main.USD, b.Checkpoints)); err != nil {
		return nil, fmt.Errorf("deploy RootGateway: %w", err)
	}
	out, err := main.Call(b.Root, RootGW.PackMIRROR())
	if err != nil {
		return nil, err
	}
	if b.Mirror, err = RootGW.UnpackMIRROR(out); err != nil {
		return nil, err
	}

	vals := make([]*Account, opts.Validators)
	for i := range vals {
		vals[i] = NewAccount("validator", i)
	}
	SortAccounts(vals)
	b.Validators = vals
	for i, v := range vals {
		stake := opts.Stake
		if i < len(opts.Stakes) {
			stake = opts.Stakes[i]
		}
		if _, err := b.Join(v, stake); err != nil {
			return nil, fmt.Errorf("validator %d joins: %w", i, err)
		}
		b.Stakes = append(b.Stakes, stake)
	}
	if b.Child, err = side.Deploy(side.Deployer, &sidechain.ChildGatewayMetaData,
		ChildGW.PackConstructor(Addresses(vals), b.Stakes, side.Factory, opts.ExitDelay)); err != nil {
		return nil, fmt.Errorf("deploy ChildGateway: %w", err)
	}
	if out, err = side.Call(b.Child, ChildGW.PackTOKEN()); err != nil {
		return nil, err
	}
	if b.ChildToken, err = ChildGW.UnpackTOKEN(out); err != nil {
		return nil, err
	}
	return b, nil
}

// Join funds `v` on the main chain (native coin for gas, TestUSD for its stake) and has it
// join StakeManager with `stake`.
func (b *Bridge) Join(v *Account, stake *big.Int) (uint64, error) {
	m := b.Main
	if m.Balance(v.Address).Sign() == 0 {
		if _, err := m.Transact(m.Deployer, v.Address, nil, ether(10)); err != nil {
			return 0, err
		}
		// On a chain that also commits on a timer the receipt can be seen a moment before
		// the head that holds it; the validator's next transaction must see its coins.
		for i := 0; i < 200 && m.Balance(v.Address).Sign() == 0; i++ {
			time.Sleep(5 * time.Millisecond)
		}
	}
	m.FundUSD(b.Stake, stake, v)
	r, err := m.Transact(v, b.Stake, Stake.PackJoin(stake), nil)
	if err != nil {
		return 0, err
	}
	return r.GasUsed, nil
}

// SortedAccounts returns the accounts in ascending address order (the order signatures
// come in), leaving the arguments as they were.
func SortedAccounts(accounts ...*Account) []*Account {
	out := append([]*Account(nil), accounts...)
	SortAccounts(out)
	return out
}

// Addresses lists the accounts' addresses in order.
func Addresses(accounts []*Account) []common.Address {
	out := make([]common.Address, len(accounts))
	for i, a := range accounts {
		out[i] = a.Address
	}
	return out
}

// StakeDomain is the EIP-712 domain validators sign checkpoints under.
func (b *Bridge) StakeDomain() apitypes.TypedDataDomain {
	return bridgeDomainOf("StakeManager", b.Main.ChainID, b.Stake)
}

// ChildDomain is the EIP-712 domain validators sign deposits and set changes under.
func (b *Bridge) ChildDomain() apitypes.TypedDataDomain {
	return bridgeDomainOf("ChildGateway", b.Side.ChainID, b.Child)
}

func bridgeDomainOf(contract string, chainID *big.Int, at common.Address) apitypes.TypedDataDomain {
	return apitypes.TypedDataDomain{
		Name: bridgeDomain[contract], Version: "1",
		ChainId: (*math.HexOrDecimal256)(chainID), VerifyingContract: at.Hex(),
	}
}

var bridgeTypes = apitypes.Types{
	"EIP712Domain": hubTypes["EIP712Domain"],
	"Checkpoint": {
		{Name: "startBlock", Type: "uint256"}, {Name: "endBlock", Type: "uint256"},
		{Name: "blockRoot", Type: "bytes32"}, {Name: "withdrawalRoot", Type: "bytes32"},
	},
	"Deposit": {
		{Name: "depositId", Type: "uint256"}, {Name: "recipient", Type: "address"}, {Name: "amount", Type: "uint256"},
	},
	"DepositBatch": {{Name: "deposits", Type: "Deposit[]"}},
	"ValidatorSet": {
		{Name: "validators", Type: "address[]"}, {Name: "powers", Type: "uint256[]"}, {Name: "epoch", Type: "uint256"},
	},
}

func bridgeDigest(dom apitypes.TypedDataDomain, primary string, msg apitypes.TypedDataMessage) [32]byte {
	hash, _, err := apitypes.TypedDataAndHash(apitypes.TypedData{Types: bridgeTypes, PrimaryType: primary, Domain: dom, Message: msg})
	if err != nil {
		panic(fmt.Sprintf("devchain: EIP-712 %s: %v", primary, err))
	}
	return [32]byte(hash)
}

// CheckpointDigest is the EIP-712 digest a validator signs for checkpoint `cp`.
func CheckpointDigest(dom apitypes.TypedDataDomain, cp mainchain.Checkpoint) [32]byte {
	return bridgeDigest(dom, "Checkpoint", apitypes.TypedDataMessage{
		"startBlock": cp.StartBlock.String(), "endBlock": cp.EndBlock.String(),
		"blockRoot": hexutil.Encode(cp.BlockRoot[:]), "withdrawalRoot": hexutil.Encode(cp.WithdrawalRoot[:]),
	})
}

// DepositDigest is the EIP-712 digest validators sign to attest RootGateway deposits.
func DepositDigest(dom apitypes.TypedDataDomain, deposits []sidechain.Deposit) [32]byte {
	items := make([]interface{}, len(deposits))
	for i, d := range deposits {
		items[i] = map[string]interface{}{
			"depositId": d.DepositId.String(), "recipient": d.Recipient.Hex(), "amount": d.Amount.String(),
		}
	}
	return bridgeDigest(dom, "DepositBatch", apitypes.TypedDataMessage{"deposits": items})
}

// ValidatorSetDigest is the EIP-712 digest the current validators sign to replace
// ChildGateway's copy of the set at `epoch`.
func ValidatorSetDigest(dom apitypes.TypedDataDomain, validators []common.Address, powers []*big.Int, epoch uint64) [32]byte {
	vs := make([]interface{}, len(validators))
	ps := make([]interface{}, len(powers))
	for i, v := range validators {
		vs[i] = v.Hex()
	}
	for i, p := range powers {
		ps[i] = p.String()
	}
	return bridgeDigest(dom, "ValidatorSet", apitypes.TypedDataMessage{"validators": vs, "powers": ps, "epoch": fmt.Sprint(epoch)})
}

// BlockRoot is the Merkle root over sidechain blocks start..end's hashes (merkle.BlockRoot).
func (b *Bridge) BlockRoot(start, end uint64) (merkle.Hash, error) {
	hashes := make([]merkle.Hash, 0, end-start+1)
	for n := start; n <= end; n++ {
		h, err := b.Side.Client.HeaderByNumber(context.Background(), new(big.Int).SetUint64(n))
		if err != nil {
			return merkle.Hash{}, fmt.Errorf("sidechain block %d: %w", n, err)
		}
		hashes = append(hashes, h.Hash())
	}
	return merkle.BlockRoot(start, hashes), nil
}

// NextCheckpoint builds the checkpoint from the next expected start block to the
// sidechain's head: the block root over its blocks and ChildGateway's withdrawal root now.
func (b *Bridge) NextCheckpoint() (mainchain.Checkpoint, error) {
	ctx := context.Background()
	out, err := b.Main.Call(b.Checkpoints, Checkpoints.PackNextStartBlock())
	if err != nil {
		return mainchain.Checkpoint{}, err
	}
	start, err := Checkpoints.UnpackNextStartBlock(out)
	if err != nil {
		return mainchain.Checkpoint{}, err
	}
	end, err := b.Side.Client.BlockNumber(ctx)
	if err != nil {
		return mainchain.Checkpoint{}, err
	}
	if end < start.Uint64() {
		return mainchain.Checkpoint{}, fmt.Errorf("no new sidechain blocks since %d", start)
	}
	root, err := b.BlockRoot(start.Uint64(), end)
	if err != nil {
		return mainchain.Checkpoint{}, err
	}
	wroot, err := b.WithdrawalRoot()
	if err != nil {
		return mainchain.Checkpoint{}, err
	}
	return mainchain.Checkpoint{StartBlock: start, EndBlock: new(big.Int).SetUint64(end), BlockRoot: root, WithdrawalRoot: wroot}, nil
}

// SubmitCheckpointCall is the calldata of CheckpointManager.submit for `cp`, signed by
// `signers` in the order given.
func (b *Bridge) SubmitCheckpointCall(cp mainchain.Checkpoint, signers ...*Account) []byte {
	return Checkpoints.PackSubmit(cp, SignDigest(CheckpointDigest(b.StakeDomain(), cp), signers...))
}

// CheckpointNumber is the number of the checkpoint a CheckpointManager.submit receipt
// accepted (its CheckpointSubmitted log; StakeManager's reward log comes first).
func CheckpointNumber(r *types.Receipt) (uint64, error) {
	for _, l := range r.Logs {
		if ev, err := Checkpoints.UnpackCheckpointSubmittedEvent(l); err == nil {
			return ev.Number.Uint64(), nil
		}
	}
	return 0, fmt.Errorf("no CheckpointSubmitted log in %s", r.TxHash.Hex())
}

// MintDepositsCall is the calldata of ChildGateway.mintDeposits, signed by `signers`.
func (b *Bridge) MintDepositsCall(deposits []sidechain.Deposit, signers ...*Account) []byte {
	return ChildGW.PackMintDeposits(deposits, SignDigest(DepositDigest(b.ChildDomain(), deposits), signers...))
}

// ExitCall is the calldata of RootGateway.exit for withdrawal `w` of `tree`, proven against
// checkpoint `number` (whose withdrawal root must be tree's root when w was in it).
func ExitCall(number uint64, w merkle.Withdrawal, tree *merkle.Tree) ([]byte, error) {
	proof, err := tree.Proof(int(w.Index))
	if err != nil {
		return nil, err
	}
	ps := make([][32]byte, len(proof))
	for i, p := range proof {
		ps[i] = p
	}
	return RootGW.PackExit(new(big.Int).SetUint64(number), MainWithdrawal(w), ps), nil
}

// MainWithdrawal converts a merkle.Withdrawal to RootGateway's binding type.
func MainWithdrawal(w merkle.Withdrawal) mainchain.Withdrawal {
	value, data := w.Value, w.Data
	if value == nil {
		value = new(big.Int)
	}
	if data == nil {
		data = new(big.Int)
	}
	return mainchain.Withdrawal{Kind: w.Kind, Index: new(big.Int).SetUint64(w.Index), Recipient: w.Recipient, Asset: w.Asset, Value: value, Data: data}
}

// QueuedWithdrawal reads the withdrawal a ChildGateway receipt's WithdrawalQueued log queued.
func QueuedWithdrawal(logs []*types.Log) (merkle.Withdrawal, error) {
	for _, l := range logs {
		if ev, err := ChildGW.UnpackWithdrawalQueuedEvent(l); err == nil {
			w := merkle.Withdrawal{Kind: ev.Kind, Index: ev.Index.Uint64(), Recipient: ev.Recipient, Asset: ev.Asset, Value: ev.Value, Data: ev.Data}
			if w.Leaf() != ev.Leaf {
				return merkle.Withdrawal{}, fmt.Errorf("withdrawal %d: Go leaf %x, ChildGateway's %x", w.Index, w.Leaf(), ev.Leaf)
			}
			return w, nil
		}
	}
	return merkle.Withdrawal{}, fmt.Errorf("no WithdrawalQueued log")
}

// WithdrawalRoot reads ChildGateway's withdrawal root now.
func (b *Bridge) WithdrawalRoot() (merkle.Hash, error) {
	out, err := b.Side.Call(b.Child, ChildGW.PackWithdrawalRoot())
	if err != nil {
		return merkle.Hash{}, err
	}
	return ChildGW.UnpackWithdrawalRoot(out)
}

// TB is what NewTestBridge needs of a test (testing.TB has it), so that this package does
// not link the testing package into the stagepass binary.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// NewTestBridge starts a simulated main chain and sidechain (chain ids mainID and sideID,
// accounts from seed+"/main" and seed+"/side"), closed when t ends, and deploys the bridge
// between them; it fails t on any error.
func NewTestBridge(t TB, seed string, mainID, sideID int64, opts BridgeOptions) *Bridge {
	t.Helper()
	chains := make([]*Chain, 2)
	for i, id := range []int64{mainID, sideID} {
		c, err := New(Options{Seed: seed + []string{"/main", "/side"}[i], ChainID: big.NewInt(id)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		chains[i] = c
	}
	b, err := NewBridge(chains[0], chains[1], opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
