package wallet

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Deposits from the main chain (issue 9): the account's main-chain stablecoin and the
// permit details (sp_mainPermitInfo), a deposit prepared as an EIP-2612 permit for
// RootGateway signed here on approval and sent with sp_depositWithPermit (the relay pays
// the main-chain gas), and the deposits' progress (sp_deposits, passed through undecoded).

var depositMethods = []string{"mainBalance", "prepareDeposit", "deposits"}

func init() { Methods = append(Methods, depositMethods...) }

func (s *Service) callDeposit(ctx context.Context, method string, params []byte) (any, error) {
	var p struct {
		Account ethcrypto.Address `json:"account"`
		Amount  Quantity          `json:"amount"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	switch method {
	case "deposits":
		var out json.RawMessage
		err := s.rpc(ctx, protocol.MethodDeposits, []any{p.Account.Hex()}, &out)
		return out, err
	case "mainBalance":
		var info protocol.MainPermitInfo
		err := s.rpc(ctx, protocol.MethodMainPermitInfo, []any{p.Account.Hex()}, &info)
		return info, err
	}
	if err := s.checkAccount(p.Account); err != nil {
		return nil, err
	}
	var info protocol.MainPermitInfo
	if err := s.rpc(ctx, protocol.MethodMainPermitInfo, []any{p.Account.Hex()}, &info); err != nil {
		return nil, fmt.Errorf("%w: %v", actions.ErrNoGateway, err)
	}
	a, err := actions.Deposit(p.Account, &info, p.Amount.big(), s.Now())
	if err != nil {
		return nil, err
	}
	return s.holdEntry(&pendingEntry{account: p.Account, summary: a.Summary, deposit: a})
}

// sendDeposit signs an approved deposit's permit and hands it to the relay.
func (s *Service) sendDeposit(ctx context.Context, a *actions.DepositAction) (protocol.DepositSent, error) {
	var p protocol.DepositPermit
	err := s.Vault.WithKey(a.Account, func(k *ethcrypto.PrivateKey) error {
		var err error
		p, err = a.Sign(k)
		return err
	})
	if err != nil {
		return protocol.DepositSent{}, err
	}
	var sent protocol.DepositSent
	err = s.rpc(ctx, protocol.MethodDepositWithPermit, []any{p}, &sent)
	return sent, err
}
