package wallet

import (
	"context"
	"fmt"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Self-custody claims (a withdrawal or a ticket's exit paid on the main chain with the
// fan's own gas): the withdrawal and its proof (sp_withdrawals, sp_withdrawalProof), the
// main chain's state for the account (sp_mainTxParams), and on approval an EIP-1559
// transaction for the main chain signed here and sent with sp_sendRawTransaction.

var claimMethods = []string{"mainTxParams", "prepareClaimWithdrawal"}

func init() { Methods = append(Methods, claimMethods...) }

func (s *Service) callClaim(ctx context.Context, method string, params []byte) (any, error) {
	var p struct {
		Account ethcrypto.Address `json:"account"`
		Index   *Quantity         `json:"index"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if method == "mainTxParams" {
		var mp protocol.MainTxParams
		err := s.rpc(ctx, protocol.MethodMainTxParams, []any{p.Account.Hex()}, &mp)
		return mp, err
	}
	if p.Index == nil {
		return nil, fmt.Errorf("%w: index is required", ErrBadParams)
	}
	index, err := p.Index.uint64()
	if err != nil {
		return nil, err
	}
	if err := s.checkAccount(p.Account); err != nil {
		return nil, err
	}
	var ws []protocol.Withdrawal
	if err := s.rpc(ctx, protocol.MethodWithdrawals, []any{p.Account.Hex()}, &ws); err != nil {
		return nil, err
	}
	var w *protocol.Withdrawal
	for i := range ws {
		if ws[i].Index == index {
			w = &ws[i]
		}
	}
	if w == nil {
		return nil, fmt.Errorf("%w: withdrawal %d is not paid to %s; its recipient claims it", actions.ErrNotAllowed, index, p.Account.Hex())
	}
	var proof protocol.WithdrawalProof
	if w.Stage == protocol.WithdrawalCheckpointed {
		if err := s.rpc(ctx, protocol.MethodWithdrawalProof, []any{index}, &proof); err != nil {
			return nil, err
		}
	}
	var mp protocol.MainTxParams
	if err := s.rpc(ctx, protocol.MethodMainTxParams, []any{p.Account.Hex()}, &mp); err != nil {
		return nil, err
	}
	var tok *protocol.PermitInfo
	if w.Kind == "token" {
		ci, err := s.chainInfo(ctx)
		if err != nil {
			return nil, err
		}
		tok = new(protocol.PermitInfo)
		if err := s.rpc(ctx, protocol.MethodPermitInfo, []any{ci.BridgedCurrency, p.Account.Hex()}, tok); err != nil {
			return nil, err
		}
	}
	a, err := actions.Claim(p.Account, &mp, w, &proof, tok)
	if err != nil {
		return nil, err
	}
	return s.holdEntry(&pendingEntry{account: p.Account, summary: a.Summary, claim: a})
}

// sendClaim signs an approved claim and sends it to the main chain through the relay.
func (s *Service) sendClaim(ctx context.Context, a *actions.ClaimAction) (any, error) {
	var raw string
	err := s.Vault.WithKey(a.Account, func(k *ethcrypto.PrivateKey) error {
		res, err := a.Sign(k)
		raw = res.Raw
		return err
	})
	if err != nil {
		return nil, err
	}
	var hash string
	if err := s.rpc(ctx, protocol.MethodSendRawTransaction, []any{raw}, &hash); err != nil {
		return nil, err
	}
	return map[string]any{"claim": map[string]string{"txHash": hash}}, nil
}
