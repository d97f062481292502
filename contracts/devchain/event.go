package devchain

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/bindings/testusd"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Bindings shared by tests; the v2 bindings are stateless packers and unpackers.
var (
	Factory = events.NewEventFactory()
	Ticket  = events.NewEventTicket()
	USD     = testusd.NewTestUSD()
)

// Category numbers as EventTypes.sol defines them.
const (
	Unclassified uint8 = iota
	Fan
	Superfan
	Scalper
	Bot
)

// USDC is n whole TestUSD (6 decimals).
func USDC(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1_000_000)) }

// DefaultConfig is a one-tier event priced in the chain's TestUSD, with 3 revenue splits
// (originator 70%, artist 20%, venue 10%), starting a week after `now`.
func (c *Chain) DefaultConfig(issuer common.Address, artist, venue common.Address) events.EventConfig {
	now := c.Now()
	return events.EventConfig{
		Name:        "Night at the Arena",
		Venue:       "The Arena, Hall 1",
		BaseURI:     "https://stagepass.example/meta/",
		StartsAt:    big.NewInt(int64(now + 7*86400)),
		DoorsOpenAt: big.NewInt(int64(now + 7*86400 - 2*3600)),
		Currency:    c.USD,
		Tiers: []events.TierConfig{
			{Name: "General admission", FaceValue: USDC(50), Supply: 1000},
		},
		Rules: events.Rules{
			MaxPerBuyer:           4,
			MaxResaleMarkupBps:    2000,
			SellerMarkupShareBps:  5000,
			GiftsAllowed:          true,
			ResaleClosesAt:        big.NewInt(int64(now + 7*86400 - 3*3600)),
			CategoryQuotaBps:      [5]uint16{10000, 10000, 10000, 10000, 10000},
			PresaleEndsAt:         new(big.Int),
			SuperfanPresaleEndsAt: new(big.Int),
		},
		Splits: []events.Split{
			{Account: issuer, Bps: 7000, Role: 0},
			{Account: artist, Bps: 2000, Role: 1},
			{Account: venue, Bps: 1000, Role: 3},
		},
	}
}

// CreateEvent creates an event as `issuer` and returns its contract address.
func (c *Chain) CreateEvent(issuer *Account, cfg events.EventConfig) (common.Address, error) {
	rcpt, err := c.Transact(issuer, c.Factory, Factory.PackCreateEvent(cfg), nil)
	if err != nil {
		return common.Address{}, err
	}
	for _, l := range rcpt.Logs {
		if ev, err := Factory.UnpackEventCreatedEvent(l); err == nil {
			return ev.EventAddress, nil
		}
	}
	return common.Address{}, fmt.Errorf("create event: no EventCreated log")
}

// FundUSD mints `amount` TestUSD to each account and approves `spender` for all of it.
func (c *Chain) FundUSD(spender common.Address, amount *big.Int, accounts ...*Account) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	for _, a := range accounts {
		c.MustTransact(a, c.USD, USD.PackMint(a.Address, amount), nil)
		c.MustTransact(a, c.USD, USD.PackApprove(spender, max), nil)
	}
}

// USDBalance is an account's TestUSD balance.
func (c *Chain) USDBalance(a common.Address) *big.Int {
	out, err := c.Call(c.USD, USD.PackBalanceOf(a))
	if err != nil {
		panic(err)
	}
	b, err := USD.UnpackBalanceOf(out)
	if err != nil {
		panic(err)
	}
	return b
}

// SignPermit signs an EIP-2612 permit of TestUSD from `owner` to `spender`.
func (c *Chain) SignPermit(owner *Account, spender common.Address, value, deadline *big.Int) (v uint8, r, s [32]byte) {
	out, err := c.Call(c.USD, USD.PackNonces(owner.Address))
	if err != nil {
		panic(err)
	}
	nonce, err := USD.UnpackNonces(out)
	if err != nil {
		panic(err)
	}
	td := apitypes.TypedData{
		Types: apitypes.Types{
			"EIP712Domain": {
				{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
				{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
			},
			"Permit": {
				{Name: "owner", Type: "address"}, {Name: "spender", Type: "address"},
				{Name: "value", Type: "uint256"}, {Name: "nonce", Type: "uint256"},
				{Name: "deadline", Type: "uint256"},
			},
		},
		PrimaryType: "Permit",
		Domain: apitypes.TypedDataDomain{
			Name: "Test USD", Version: "1",
			ChainId: (*math.HexOrDecimal256)(c.ChainID), VerifyingContract: c.USD.Hex(),
		},
		Message: apitypes.TypedDataMessage{
			"owner": owner.Address.Hex(), "spender": spender.Hex(),
			"value": value.String(), "nonce": nonce.String(), "deadline": deadline.String(),
		},
	}
	hash, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		panic(err)
	}
	sig, err := crypto.Sign(hash, owner.Key)
	if err != nil {
		panic(err)
	}
	copy(r[:], sig[:32])
	copy(s[:], sig[32:64])
	return sig[64] + 27, r, s
}

// SignForward builds and signs, as `from`, an ERC-2771 forward request to call `to` with
// `data` through the platform's forwarder: what a wallet sends the relay for a gasless call.
// The signature is r || s || v with v 27 or 28, as the forwarder expects.
func (c *Chain) SignForward(from *Account, to common.Address, data []byte, gas uint64, deadline uint64) (*protocol.ForwardRequest, []byte) {
	fwd := forwarder.NewStagepassForwarder()
	out, err := c.Call(c.Forwarder, fwd.PackNonces(from.Address))
	if err != nil {
		panic(err)
	}
	nonce, err := fwd.UnpackNonces(out)
	if err != nil {
		panic(err)
	}
	req := &protocol.ForwardRequest{
		From: ethcrypto.Address(from.Address), To: ethcrypto.Address(to), Value: new(big.Int),
		Gas: new(big.Int).SetUint64(gas), Nonce: nonce, Deadline: deadline, Data: data,
	}
	digest, err := req.Digest(protocol.ForwarderDomain(c.ChainID.Uint64(), ethcrypto.Address(c.Forwarder)))
	if err != nil {
		panic(err)
	}
	sig, err := crypto.Sign(digest[:], from.Key)
	if err != nil {
		panic(err)
	}
	sig[64] += 27
	return req, sig
}

// BuyWithPermitCall is the calldata of a gasless primary purchase of `qty` tickets of `tier`
// at up to `unitPrice` each, paid in TestUSD with an EIP-2612 permit signed by `buyer`.
func (c *Chain) BuyWithPermitCall(buyer *Account, event common.Address, tier, qty int64, unitPrice *big.Int, deadline uint64) []byte {
	total := new(big.Int).Mul(unitPrice, big.NewInt(qty))
	dl := new(big.Int).SetUint64(deadline)
	v, r, s := c.SignPermit(buyer, event, total, dl)
	return Ticket.PackBuyWithPermit(big.NewInt(tier), big.NewInt(qty), unitPrice, dl, v, r, s)
}
