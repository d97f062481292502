package server

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/relay/exits/bridge"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/relay/permit"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/relay/validator"
	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Deposits from the main chain without main-chain gas: the fan's EIP-2612 permit for
// RootGateway, checked here and sent as RootGateway.depositWithPermit from the main-chain
// wallet the validator aggregator (and the exits) send from.

var (
	rootGW  = mainchain.NewRootGateway()
	childGW = sidechain.NewChildGateway()
)

// sentPermits remembers the permits sent and not yet mined (owner → permit nonce), so the
// same permit submitted twice is sent once.
type sentPermits struct {
	mu sync.Mutex
	m  map[common.Address]uint64
}

func (s *sentPermits) claim(owner common.Address, nonce uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.m[owner]; ok && n == nonce {
		return false
	}
	if s.m == nil {
		s.m = map[common.Address]uint64{}
	}
	s.m[owner] = nonce
	return true
}

func (s *sentPermits) release(owner common.Address) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, owner)
}

// sentDeposit is a deposit the relay sent for a permit, followed until it is mined.
type sentDeposit struct {
	owner    common.Address
	data     []byte // RootGateway.depositWithPermit's calldata
	deadline time.Time
	tx       common.Hash
}

// depositFollower holds the deposits sent and not yet mined, by owner.
type depositFollower struct {
	mu   sync.Mutex
	sent map[common.Address]*sentDeposit
}

func (f *depositFollower) add(d *sentDeposit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent == nil {
		f.sent = map[common.Address]*sentDeposit{}
	}
	f.sent[d.owner] = d
}

func (f *depositFollower) list() []*sentDeposit {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*sentDeposit, 0, len(f.sent))
	for _, d := range f.sent {
		out = append(out, d)
	}
	return out
}

func (f *depositFollower) done(d *sentDeposit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent[d.owner] == d {
		delete(f.sent, d.owner)
	}
}

// followDeposits follows each deposit sent until it is mined: the wallet re-prices one
// stuck under a risen base fee (oracle.Wallet.Receipt), and one the main chain's node
// dropped is sent again with the same permit while its deadline allows, so a fan's signed
// deposit is not lost with a node's pool. One that can no longer go (the permit expired, or
// used by someone else: the gas estimate reverts) is logged, and the fan signs again.
func (r *Relay) followDeposits(ctx context.Context) error {
	w := r.vagg.MainWallet()
	var errs []error
	for _, d := range r.depositsSent.list() {
		rcpt, err := w.Receipt(ctx, d.tx)
		switch {
		case rcpt != nil:
			r.depositsSent.done(d)
			if rcpt.Status != types.ReceiptStatusSuccessful {
				r.cfg.Logger.Warn("deposit by permit reverted on the main chain", "owner", d.owner, "tx", d.tx)
			}
		case errors.Is(err, oracle.ErrDropped):
			if !time.Now().Before(d.deadline) {
				r.depositsSent.done(d)
				r.cfg.Logger.Warn("deposit by permit dropped by the main chain after its permit expired; the fan signs again", "owner", d.owner, "tx", d.tx)
				continue
			}
			tx, err := w.Send(ctx, r.vagg.Contracts().Root, d.data, 0)
			if err != nil {
				r.depositsSent.done(d)
				r.cfg.Logger.Warn("deposit by permit dropped by the main chain and cannot be sent again; the fan signs again", "owner", d.owner, "tx", d.tx, "err", err)
				continue
			}
			r.cfg.Logger.Info("deposit by permit dropped by the main chain; sent again", "owner", d.owner, "was", d.tx, "tx", tx.Hash())
			d.tx = tx.Hash()
		case err != nil:
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// depositConfirmations is M as this relay reports it.
func (r *Relay) depositConfirmations() uint64 {
	if m := r.cfg.Validators.DepositConfirmations; m != 0 {
		return m
	}
	return validator.DefaultConfirmations
}

// DefaultMinGaslessDeposit is ValidatorConfig.MinGaslessDeposit when unset: one whole unit
// of the main chain's stablecoin (1 USDC).
var DefaultMinGaslessDeposit = big.NewRat(1, 1)

// minGaslessDeposit is ValidatorConfig.MinGaslessDeposit in base units of a token with
// decimals, rounded up: a fraction of a base unit is not a deposit the relay can send.
func (r *Relay) minGaslessDeposit(decimals uint8) *big.Int {
	m := r.cfg.Validators.MinGaslessDeposit
	if m == nil {
		m = DefaultMinGaslessDeposit
	}
	scaled := new(big.Rat).Mul(m, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)))
	q, rem := new(big.Int).QuoRem(scaled.Num(), scaled.Denom(), new(big.Int))
	if rem.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q
}

// mainToken reads RootGateway's stablecoin.
func (r *Relay) mainToken(ctx context.Context) (common.Address, error) {
	root := r.vagg.Contracts().Root
	out, err := r.cfg.Validators.Main.CallContract(ctx, ethereum.CallMsg{To: &root, Data: rootGW.PackTOKEN()}, nil)
	if err == nil {
		var token common.Address
		if token, err = rootGW.UnpackTOKEN(out); err == nil {
			return token, nil
		}
	}
	return common.Address{}, fmt.Errorf("read RootGateway %s's token: %w", root.Hex(), err)
}

// mainPermit reads what owner signs a permit for RootGateway with.
func (r *Relay) mainPermit(ctx context.Context, owner common.Address) (protocol.MainPermitInfo, error) {
	token, err := r.mainToken(ctx)
	if err != nil {
		return protocol.MainPermitInfo{}, err
	}
	p, err := permit.Read(ctx, r.cfg.Validators.Main, token, owner)
	if err != nil {
		return protocol.MainPermitInfo{}, fmt.Errorf("main chain: %w", err)
	}
	return protocol.MainPermitInfo{
		ChainID: r.cfg.Validators.MainChainID.Uint64(), Gateway: strings.ToLower(r.vagg.Contracts().Root.Hex()),
		Confirmations: r.depositConfirmations(), MinAmount: r.minGaslessDeposit(p.Decimals).String(), Token: p,
	}, nil
}

// mainPermitInfo is sp_mainPermitInfo [owner].
func (r *Relay) mainPermitInfo(ctx context.Context, req *rpcserver.Request) (any, error) {
	var owner common.Address
	if err := positional(req, addressParam(&owner, "owner")); err != nil {
		return nil, err
	}
	if r.vagg == nil {
		return nil, bridge.NoDeposits()
	}
	return r.mainPermit(ctx, owner)
}

// depositWithPermit is sp_depositWithPermit [DepositPermit]: the permit is checked against
// the main chain (the owner's signature over the token's domain for RootGateway at the
// owner's current nonce, an amount at least the minimum (MainPermitInfo.MinAmount) and
// within the owner's balance, a deadline ahead) and only then sent; nothing is sent for a
// permit refused.
func (r *Relay) depositWithPermit(ctx context.Context, req *rpcserver.Request) (any, error) {
	var p protocol.DepositPermit
	if err := positional(req, &p); err != nil {
		return nil, err
	}
	if r.vagg == nil {
		return nil, bridge.NoDeposits()
	}
	if !common.IsHexAddress(p.Owner) {
		return nil, rpcserver.InvalidParams("owner must be a 0x address, got %q", p.Owner)
	}
	owner := common.HexToAddress(p.Owner)
	amount, ok := new(big.Int).SetString(p.Amount, 10)
	if !ok || amount.Sign() <= 0 || amount.BitLen() > 256 {
		return nil, rpcserver.InvalidParams("amount must be a whole number of base units above zero, got %q", p.Amount)
	}
	if now := uint64(time.Now().Unix()); p.Deadline <= now {
		return nil, rpcserver.InvalidParams("the permit expired at %s (now %s)", time.Unix(int64(p.Deadline), 0).UTC().Format(time.RFC3339), time.Unix(int64(now), 0).UTC().Format(time.RFC3339))
	}
	rb, errR := hexutil.Decode(p.R)
	sb, errS := hexutil.Decode(p.S)
	if errR != nil || errS != nil || len(rb) != 32 || len(sb) != 32 || (p.V != 27 && p.V != 28) {
		return nil, rpcserver.InvalidParams("signature: r and s must be 32 bytes of 0x hex and v 27 or 28")
	}
	rs, ss := new(big.Int).SetBytes(rb), new(big.Int).SetBytes(sb)
	if !crypto.ValidateSignatureValues(p.V-27, rs, ss, true) {
		return nil, rpcserver.InvalidParams("signature: r or s out of range")
	}
	info, err := r.mainPermit(ctx, owner)
	if err != nil {
		return nil, err
	}
	if least, _ := new(big.Int).SetString(info.MinAmount, 10); least != nil && amount.Cmp(least) < 0 {
		return nil, rpcserver.InvalidParams("%s base units is below the %s %s base units this relay brings over for you (it pays the main-chain gas); deposit less with RootGateway.deposit and gas of your own",
			amount, least, info.Token.Symbol)
	}
	balance, _ := new(big.Int).SetString(info.Token.Balance, 10)
	if balance == nil || balance.Cmp(amount) < 0 {
		return nil, rpcserver.InvalidParams("%s holds %s %s base units on the main chain, less than the %s to deposit", owner.Hex(), info.Token.Balance, info.Token.Symbol, amount)
	}
	nonce, _ := new(big.Int).SetString(info.Token.Nonce, 10)
	if nonce == nil || !nonce.IsUint64() {
		return nil, fmt.Errorf("main chain: permit nonce %q", info.Token.Nonce)
	}
	ownerE, tokenE, rootE := ethcrypto.Address(owner), ethcrypto.MustParseAddress(info.Token.Token), ethcrypto.Address(r.vagg.Contracts().Root)
	digest, err := actions.PermitTypedData(info.ChainID, &info.Token, tokenE, ownerE, rootE, amount, nonce, new(big.Int).SetUint64(p.Deadline)).Digest()
	if err != nil {
		return nil, err
	}
	sig := append(append(rb, sb...), p.V-27)
	pub, err := crypto.SigToPub(digest[:], sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != owner {
		return nil, rpcserver.InvalidParams("the permit is not signed by %s for RootGateway %s, %s at permit nonce %s on chain %d (signed by another key, for other terms, or already used)",
			owner.Hex(), rootE.Hex(), amount, nonce, info.ChainID)
	}
	if !r.permitsSent.claim(owner, nonce.Uint64()) {
		return nil, rpcserver.InvalidParams("this permit (nonce %s of %s) was already sent", nonce, owner.Hex())
	}
	data := rootGW.PackDepositWithPermit(owner, amount, new(big.Int).SetUint64(p.Deadline), p.V, [32]byte(rb), [32]byte(sb))
	tx, err := r.vagg.MainWallet().Send(ctx, r.vagg.Contracts().Root, data, 0)
	if err != nil {
		r.permitsSent.release(owner)
		return nil, fmt.Errorf("main chain: send the deposit: %w", err)
	}
	r.cfg.Logger.Info("deposit by permit sent", "owner", owner, "amount", amount, "tx", tx.Hash())
	r.depositsSent.add(&sentDeposit{owner: owner, data: data, deadline: time.Unix(int64(p.Deadline), 0), tx: tx.Hash()})
	return protocol.DepositSent{TxHash: tx.Hash().Hex()}, nil
}

// deposits is sp_deposits [owner]: RootGateway's deposits to owner, as the withdrawal
// tracker follows them (relay/exits: Deposited logs from ValidatorConfig.MainStartBlock,
// and the blocks since its last step read for this owner), each pending until
// ChildGateway minted it; depositMinted is read only for those not yet seen minted.
func (r *Relay) deposits(ctx context.Context, req *rpcserver.Request) (any, error) {
	var owner common.Address
	if err := positional(req, addressParam(&owner, "owner")); err != nil {
		return nil, err
	}
	if r.vagg == nil || r.exits == nil {
		return nil, bridge.NoDeposits()
	}
	return r.depositViews(ctx, owner)
}

// depositViews are owner's deposits as sp_deposits answers them (also the "bridge"
// topic's first push).
func (r *Relay) depositViews(ctx context.Context, owner common.Address) ([]protocol.Deposit, error) {
	ds, head, err := r.exits.Deposits(ctx, owner)
	if err != nil {
		return nil, bridge.RPCError(err)
	}
	child := r.vagg.Contracts().Child
	m := r.depositConfirmations()
	out := make([]protocol.Deposit, 0, len(ds))
	for _, dep := range ds {
		_, minted := r.minted.Load(dep.ID.String())
		if !minted {
			if minted, err = bridge.DepositMinted(ctx, r.cfg.Client, child, dep.ID); err != nil {
				return nil, err
			}
			if minted {
				r.minted.Store(dep.ID.String(), true)
			}
		}
		out = append(out, bridge.DepositView(dep, head, m, minted))
	}
	return out, nil
}
