package actions

import (
	"fmt"
	"math/big"
	"time"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

// A deposit from the main chain (issue 9): the account signs an EIP-2612 permit of the
// main chain's stablecoin for RootGateway, and the relay sends
// RootGateway.depositWithPermit, which credits the deposit to the permit's owner — this
// account's address on the sidechain — after the validators' M confirmations. No
// transaction is signed: the permit is the whole authorization, and it names no recipient.

// DepositAction is a main-chain deposit awaiting approval.
type DepositAction struct {
	Account ethcrypto.Address
	Summary signing.Summary
	amount  *big.Int
	permit  *eip712.TypedData
}

// Deposit prepares bringing amount (base units) of the main chain's stablecoin to this
// chain, with info from sp_mainPermitInfo for the account; the permit is valid for an hour.
func Deposit(account ethcrypto.Address, info *protocol.MainPermitInfo, amount *big.Int, now time.Time) (*DepositAction, error) {
	gw, err := ethcrypto.ParseAddress(info.Gateway)
	if err != nil || gw.IsZero() || info.ChainID == 0 {
		return nil, fmt.Errorf("%w: no main-chain gateway", ErrNoGateway)
	}
	tok, err := ethcrypto.ParseAddress(info.Token.Token)
	if err != nil || tok.IsZero() {
		return nil, fmt.Errorf("%w: main-chain token %q", ErrBadArgs, info.Token.Token)
	}
	m := MoneyOf(&protocol.EventInfo{}, &info.Token)
	bal, err := parseAmount("main-chain balance", info.Token.Balance)
	if err != nil {
		return nil, err
	}
	nonce, err := parseAmount("permit nonce", info.Token.Nonce)
	if err != nil {
		return nil, err
	}
	least := new(big.Int)
	if info.MinAmount != "" {
		if least, err = parseAmount("minimum deposit", info.MinAmount); err != nil {
			return nil, err
		}
	}
	switch {
	case amount == nil || amount.Sign() <= 0:
		return nil, fmt.Errorf("%w: bring a positive amount of %s", ErrBadArgs, m.Symbol)
	case amount.Cmp(least) < 0:
		return nil, fmt.Errorf("%w: Stagepass brings at least %s over for you; %s is less", ErrBelowMinimum, m.Format(least), m.Format(amount))
	case amount.Cmp(bal) > 0:
		return nil, fmt.Errorf("%w: %s asked, %s held on the main chain", ErrInsufficientBalance, m.Format(amount), m.Format(bal))
	}
	deadline := now.Add(validFor)
	s := signing.Summary{Kind: "typedData", Account: account.Hex(),
		Title: fmt.Sprintf("Bring %s from the main chain to Stagepass", m.Format(amount)),
		Lines: []signing.Line{
			{Label: "Amount", Value: m.Format(amount)},
			{Label: "Main-chain balance after", Value: m.Format(new(big.Int).Sub(bal, amount))},
			{Label: "Credited to", Value: account.Hex() + " here, the same address"},
			{Label: "When", Value: fmt.Sprintf("after %d main-chain confirmations", info.Confirmations)},
			{Label: "How", Value: fmt.Sprintf("a permit letting the gateway %s on the main chain (id %d) take exactly this amount", gw.Hex(), info.ChainID)},
			{Label: "Gas", Value: "paid by Stagepass"},
			{Label: "Valid until", Value: deadline.UTC().Format("2006-01-02 15:04:05 UTC")},
		}}
	return &DepositAction{Account: account, Summary: s, amount: new(big.Int).Set(amount),
		permit: PermitTypedData(info.ChainID, &info.Token, tok, account, gw, amount, nonce, big.NewInt(deadline.Unix()))}, nil
}

// Sign signs the permit with the account's key and returns what sp_depositWithPermit takes.
func (a *DepositAction) Sign(k Signer) (protocol.DepositPermit, error) {
	d, err := a.permit.Digest()
	if err != nil {
		return protocol.DepositPermit{}, err
	}
	sig, err := k.Sign(d[:])
	if err != nil {
		return protocol.DepositPermit{}, fmt.Errorf("actions: sign permit: %w", err)
	}
	deadline, err := eip712.Int(a.permit.Message["deadline"])
	if err != nil {
		return protocol.DepositPermit{}, err
	}
	return protocol.DepositPermit{Owner: a.Account.Hex(), Amount: a.amount.String(), Deadline: deadline.Uint64(),
		V: sig[64] + 27, R: fmt.Sprintf("0x%x", sig[:32]), S: fmt.Sprintf("0x%x", sig[32:64])}, nil
}
