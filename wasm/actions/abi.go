// Package actions builds the wallet's gasless Stagepass actions — a primary purchase paid
// with an EIP-2612 permit, a resale listing, a gift, a door check-in — as ERC-2771 forward
// requests: the calldata (hand-encoded ABI, checked against go-ethereum's abi package in
// the tests), a summary for the fan built by decoding that very calldata against the
// event's configuration, and the signatures on approval.
package actions

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/signing"
)

// The EventTicket functions the wallet calls (contracts/src/EventTicket.sol).
const (
	SigBuyWithPermit = "buyWithPermit(uint256,uint256,uint256,uint256,uint8,bytes32,bytes32)"
	SigList          = "list(uint256,uint256)"
	SigCancelListing = "cancelListing(uint256)"
	SigTransferFrom  = "transferFrom(address,address,uint256)"
	SigCheckIn       = "checkIn(uint256)"
	SigCheckInBatch  = "checkInBatch(uint256[])"
)

// ErrCalldata is calldata that is not one of the calls above, well formed.
var ErrCalldata = errors.New("actions: calldata is not a known Stagepass call")

func selector(sig string) [4]byte { return [4]byte(ethcrypto.Keccak256([]byte(sig))[:4]) }

var selectors = func() map[[4]byte]string {
	m := map[[4]byte]string{}
	for _, s := range []string{SigBuyWithPermit, SigList, SigCancelListing, SigTransferFrom, SigCheckIn, SigCheckInBatch, SigRequestPurchase, SigBuyListed, SigRequestResale, SigWithdraw, SigExitTicket} {
		m[selector(s)] = s
	}
	return m
}()

func word(x *big.Int) []byte {
	var w [32]byte
	x.FillBytes(w[:])
	return w[:]
}

func addrWord(a ethcrypto.Address) []byte {
	var w [32]byte
	copy(w[12:], a[:])
	return w[:]
}

func encode(sig string, words ...[]byte) []byte {
	sel := selector(sig)
	out := append(make([]byte, 0, 4+32*len(words)), sel[:]...)
	for _, w := range words {
		out = append(out, w...)
	}
	return out
}

func checkUint(name string, x *big.Int, bits int) error {
	if x == nil || x.Sign() < 0 || x.BitLen() > bits {
		return fmt.Errorf("actions: %s missing or out of uint%d range", name, bits)
	}
	return nil
}

// Permit is an EIP-2612 signature (v = 27/28).
type Permit struct {
	Deadline *big.Int
	V        uint8
	R, S     [32]byte
}

// Call is a decoded Stagepass call.
type Call struct {
	Sig       string
	PaymentID [32]byte // requestPurchase, requestResale
	Tier      *big.Int // buyWithPermit, requestPurchase
	Qty       *big.Int
	MaxUnit   *big.Int
	Permit    Permit
	TokenID   *big.Int // list, cancelListing, transferFrom, checkIn, buyListed, requestResale
	Price     *big.Int // list; buyListed's maxPrice
	From, To  ethcrypto.Address
	TokenIDs  []*big.Int        // checkInBatch
	Amount    *big.Int          // withdraw (its recipient in To)
	Event     ethcrypto.Address // exitTicket (its recipient in To)
}

// Encode returns the calldata of c.
func (c *Call) Encode() ([]byte, error) {
	switch c.Sig {
	case SigBuyWithPermit:
		for _, f := range []struct {
			n string
			x *big.Int
		}{{"tier", c.Tier}, {"quantity", c.Qty}, {"max unit price", c.MaxUnit}, {"permit deadline", c.Permit.Deadline}} {
			if err := checkUint(f.n, f.x, 256); err != nil {
				return nil, err
			}
		}
		return encode(SigBuyWithPermit, word(c.Tier), word(c.Qty), word(c.MaxUnit), word(c.Permit.Deadline),
			word(big.NewInt(int64(c.Permit.V))), c.Permit.R[:], c.Permit.S[:]), nil
	case SigList, SigBuyListed:
		if err := errors.Join(checkUint("token id", c.TokenID, 256), checkUint("price", c.Price, 256)); err != nil {
			return nil, err
		}
		return encode(c.Sig, word(c.TokenID), word(c.Price)), nil
	case SigRequestPurchase:
		if err := errors.Join(checkUint("tier", c.Tier, 256), checkUint("quantity", c.Qty, 256)); err != nil {
			return nil, err
		}
		return encode(SigRequestPurchase, c.PaymentID[:], word(c.Tier), word(c.Qty)), nil
	case SigRequestResale:
		if err := checkUint("token id", c.TokenID, 256); err != nil {
			return nil, err
		}
		return encode(SigRequestResale, c.PaymentID[:], word(c.TokenID)), nil
	case SigCancelListing, SigCheckIn:
		if err := checkUint("token id", c.TokenID, 256); err != nil {
			return nil, err
		}
		return encode(c.Sig, word(c.TokenID)), nil
	case SigTransferFrom:
		if err := checkUint("token id", c.TokenID, 256); err != nil {
			return nil, err
		}
		return encode(SigTransferFrom, addrWord(c.From), addrWord(c.To), word(c.TokenID)), nil
	case SigWithdraw:
		if err := checkUint("amount", c.Amount, 256); err != nil {
			return nil, err
		}
		return encode(SigWithdraw, addrWord(c.To), word(c.Amount)), nil
	case SigExitTicket:
		if err := checkUint("token id", c.TokenID, 256); err != nil {
			return nil, err
		}
		return encode(SigExitTicket, addrWord(c.Event), word(c.TokenID), addrWord(c.To)), nil
	case SigCheckInBatch:
		words := [][]byte{word(big.NewInt(32)), word(big.NewInt(int64(len(c.TokenIDs))))}
		for _, id := range c.TokenIDs {
			if err := checkUint("token id", id, 256); err != nil {
				return nil, err
			}
			words = append(words, word(id))
		}
		return encode(SigCheckInBatch, words...), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrCalldata, c.Sig)
}

// Decode parses calldata strictly: the exact length, canonical padding, nothing extra.
func Decode(data []byte) (*Call, error) {
	if len(data) < 4 {
		return nil, fmt.Errorf("%w: %d bytes", ErrCalldata, len(data))
	}
	sig, ok := selectors[[4]byte(data[:4])]
	if !ok {
		return nil, fmt.Errorf("%w: selector 0x%x", ErrCalldata, data[:4])
	}
	args := data[4:]
	if len(args)%32 != 0 {
		return nil, fmt.Errorf("%w: %s arguments are %d bytes", ErrCalldata, sig, len(args))
	}
	n := len(args) / 32
	w := func(i int) *big.Int { return new(big.Int).SetBytes(args[32*i : 32*i+32]) }
	addr := func(i int) (ethcrypto.Address, error) {
		var a ethcrypto.Address
		for _, b := range args[32*i : 32*i+12] {
			if b != 0 {
				return a, fmt.Errorf("%w: address argument %d is not canonical", ErrCalldata, i)
			}
		}
		copy(a[:], args[32*i+12:32*i+32])
		return a, nil
	}
	want := map[string]int{SigBuyWithPermit: 7, SigList: 2, SigCancelListing: 1, SigCheckIn: 1, SigTransferFrom: 3,
		SigRequestPurchase: 3, SigBuyListed: 2, SigRequestResale: 2, SigWithdraw: 2, SigExitTicket: 3}
	c := &Call{Sig: sig}
	if k, fixed := want[sig]; fixed && n != k {
		return nil, fmt.Errorf("%w: %s takes %d words, got %d", ErrCalldata, sig, k, n)
	}
	switch sig {
	case SigBuyWithPermit:
		c.Tier, c.Qty, c.MaxUnit = w(0), w(1), w(2)
		c.Permit.Deadline = w(3)
		if v := w(4); !v.IsUint64() || v.Uint64() > 255 {
			return nil, fmt.Errorf("%w: v is not a uint8", ErrCalldata)
		}
		c.Permit.V = uint8(w(4).Uint64())
		copy(c.Permit.R[:], args[160:192])
		copy(c.Permit.S[:], args[192:224])
	case SigList, SigBuyListed:
		c.TokenID, c.Price = w(0), w(1)
	case SigRequestPurchase:
		copy(c.PaymentID[:], args[:32])
		c.Tier, c.Qty = w(1), w(2)
	case SigRequestResale:
		copy(c.PaymentID[:], args[:32])
		c.TokenID = w(1)
	case SigCancelListing, SigCheckIn:
		c.TokenID = w(0)
	case SigTransferFrom:
		var err1, err2 error
		c.From, err1 = addr(0)
		c.To, err2 = addr(1)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		c.TokenID = w(2)
	case SigWithdraw, SigExitTicket:
		i := 0
		if c.Sig == SigExitTicket {
			a, err := addr(0)
			if err != nil {
				return nil, err
			}
			c.Event, c.TokenID, i = a, w(1), 2
		}
		var err error
		if c.To, err = addr(i); err != nil {
			return nil, err
		}
		if c.Sig == SigWithdraw {
			c.Amount = w(1)
		}
	case SigCheckInBatch:
		if n < 2 || w(0).Cmp(big.NewInt(32)) != 0 || !w(1).IsUint64() || w(1).Uint64() != uint64(n-2) {
			return nil, fmt.Errorf("%w: checkInBatch array is not canonical", ErrCalldata)
		}
		for i := 2; i < n; i++ {
			c.TokenIDs = append(c.TokenIDs, w(i))
		}
	}
	return c, nil
}

// Raw signForward requests (not built here) still get their Stagepass calls named and
// their arguments listed in the generic summary.
func init() {
	for _, c := range []signing.Call{
		{Signature: SigList, Title: "List a ticket for resale", Labels: []string{"Token id", "Price (smallest unit)"}},
		{Signature: SigCancelListing, Title: "Withdraw a resale listing", Labels: []string{"Token id"}},
		{Signature: SigCheckIn, Title: "Check a ticket in", Labels: []string{"Token id"}},
		{Signature: "buyListed(uint256,uint256)", Title: "Buy a resale ticket", Labels: []string{"Token id", "Max price (smallest unit)"}},
	} {
		signing.RegisterCall(c)
	}
}
