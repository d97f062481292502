package server

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/relay/forward/rules"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// Self-custody claims on the main chain: a withdrawal's recipient submits RootGateway.exit
// (with sp_withdrawalProof's proof) from their own account and pays its gas. The wallet
// reads what signing needs with sp_mainTxParams and sends the signed transaction through
// sp_sendRawTransaction, which passes main-chain transactions to RootGateway only.

// registerMainClaim puts sp_mainTxParams on the JSON-RPC server.
func (r *Relay) registerMainClaim(s *rpcserver.Server) {
	s.Register(protocol.MethodMainTxParams, r.mainTxParams)
}

// balanceReader is the main chain's native balances (ethclient's BalanceAt).
type balanceReader interface {
	BalanceAt(ctx context.Context, account common.Address, block *big.Int) (*big.Int, error)
}

func noMainChain() error {
	return rpcserver.InvalidParams("this relay follows no main chain: it sends no main-chain transactions")
}

// mainTxParams is sp_mainTxParams [account].
func (r *Relay) mainTxParams(ctx context.Context, req *rpcserver.Request) (any, error) {
	var account common.Address
	if err := positional(req, addressParam(&account, "account")); err != nil {
		return nil, err
	}
	if r.vagg == nil {
		return nil, noMainChain()
	}
	v := r.cfg.Validators
	bal, ok := v.Main.(balanceReader)
	if !ok {
		return nil, fmt.Errorf("main chain: the connection cannot read balances")
	}
	nonce, err := v.Main.PendingNonceAt(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("main chain: nonce of %s: %w", account.Hex(), err)
	}
	balance, err := bal.BalanceAt(ctx, account, nil)
	if err != nil {
		return nil, fmt.Errorf("main chain: balance of %s: %w", account.Hex(), err)
	}
	head, err := v.Main.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("main chain: head: %w", err)
	}
	tip, err := v.Main.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, fmt.Errorf("main chain: suggest tip: %w", err)
	}
	baseFee := new(big.Int)
	if head.BaseFee != nil {
		baseFee = head.BaseFee
	}
	return protocol.MainTxParams{
		ChainID: v.MainChainID.Uint64(), Account: strings.ToLower(account.Hex()), Nonce: nonce,
		Balance: balance.String(), BaseFee: baseFee.String(), Tip: tip.String(),
		Gateway: strings.ToLower(r.vagg.Contracts().Root.Hex()), ManualExits: v.ManualExits,
	}, nil
}

// sendMainTransaction is sp_sendRawTransaction for a transaction signed for the main chain:
// only to RootGateway (a claim, or a deposit with the sender's own gas), and only once a
// call of it on the main chain's head succeeds, so a claim that would revert (already
// exited, a stale proof) is refused before its sender pays for it.
func (r *Relay) sendMainTransaction(ctx context.Context, tx *types.Transaction) (any, error) {
	v := r.cfg.Validators
	from, err := types.Sender(types.LatestSignerForChainID(v.MainChainID), tx)
	if err != nil {
		return nil, rpcserver.InvalidParams("bad signature: %v", err)
	}
	root := r.vagg.Contracts().Root
	if to := tx.To(); to == nil || *to != root {
		return nil, rpcserver.InvalidParams("on the main chain (%s) the relay only sends transactions to RootGateway %s", v.MainChainID, root.Hex())
	}
	msg := ethereum.CallMsg{From: from, To: &root, Gas: tx.Gas(), Value: tx.Value(), Data: tx.Data()}
	if _, err := v.Main.CallContract(ctx, msg, nil); err != nil {
		re, reverted := rules.CallFailure(err)
		if !reverted {
			return nil, fmt.Errorf("main chain: check the transaction: %w", err)
		}
		return nil, rpcserver.InvalidParams("RootGateway would revert it, so it was not sent: %s", rootReason(re))
	}
	if err := v.Main.SendTransaction(ctx, tx); err != nil {
		return nil, rpcserver.InvalidParams("the main chain's node refused the transaction: %v", err)
	}
	r.cfg.Logger.Info("main-chain transaction sent for its signer", "from", from, "tx", tx.Hash())
	return tx.Hash().Hex(), nil
}

// rootErrors are RootGateway's custom errors by selector.
var rootErrors = sync.OnceValue(func() map[[4]byte]abi.Error {
	parsed, err := mainchain.RootGatewayMetaData.ParseABI()
	if err != nil {
		panic(fmt.Sprintf("parse RootGateway ABI: %v", err))
	}
	out := map[[4]byte]abi.Error{}
	for _, e := range parsed.Errors {
		out[[4]byte(e.ID[:4])] = e
	}
	return out
})

// rootReason renders a RootGateway revert for people: "AlreadyExited(index=3)".
func rootReason(re *rules.RevertError) string {
	if re.Name == "" && len(re.Data) >= 4 {
		if e, ok := rootErrors()[[4]byte(re.Data[:4])]; ok {
			args, err := e.Inputs.Unpack(re.Data[4:])
			if err == nil {
				parts := make([]string, len(args))
				for i, a := range args {
					parts[i] = fmt.Sprintf("%s=%v", e.Inputs[i].Name, a)
				}
				return e.Name + "(" + strings.Join(parts, ", ") + ")"
			}
		}
	}
	return re.Reason()
}
