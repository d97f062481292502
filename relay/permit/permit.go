// Package permit reads what a wallet needs to sign an EIP-2612 permit for an ERC-20 token
// (sp_permitInfo): the token's EIP-712 domain, symbol, decimals, the owner's permit
// nonce and balance. Both builds of the relay (relay/server, relay/worker) answer with it.
package permit

import (
	"context"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/testusd"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// erc20 reads the few ERC-20 / EIP-2612 / EIP-5267 views a permit needs; TestUSD's binding
// has exactly those (any OpenZeppelin ERC20Permit answers them the same way).
var erc20 = testusd.NewTestUSD()

// Caller reads contract state (ethclient satisfies it).
type Caller interface {
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
}

// Read reads token's permit details for owner at the latest block. The caller decides
// which tokens it answers for (the relay: event currencies only).
func Read(ctx context.Context, c Caller, token, owner common.Address) (protocol.PermitInfo, error) {
	call := func(data []byte) ([]byte, error) {
		return c.CallContract(ctx, ethereum.CallMsg{To: &token, Data: data}, nil)
	}
	info := protocol.PermitInfo{Token: strings.ToLower(token.Hex()), Version: "1"}
	var err error
	var out []byte
	if out, err = call(erc20.PackName()); err == nil {
		info.Name, err = erc20.UnpackName(out)
	}
	if err == nil {
		if out, err = call(erc20.PackSymbol()); err == nil {
			info.Symbol, err = erc20.UnpackSymbol(out)
		}
	}
	if err == nil {
		if out, err = call(erc20.PackDecimals()); err == nil {
			info.Decimals, err = erc20.UnpackDecimals(out)
		}
	}
	if err == nil {
		var n *big.Int
		if out, err = call(erc20.PackNonces(owner)); err == nil {
			if n, err = erc20.UnpackNonces(out); err == nil {
				info.Nonce = n.String()
			}
		}
	}
	if err == nil {
		var n *big.Int
		if out, err = call(erc20.PackBalanceOf(owner)); err == nil {
			if n, err = erc20.UnpackBalanceOf(out); err == nil {
				info.Balance = n.String()
			}
		}
	}
	if err != nil {
		return protocol.PermitInfo{}, fmt.Errorf("read permit details of %s: %w", token.Hex(), err)
	}
	// EIP-5267: the token's own EIP-712 domain, where it publishes one.
	if out, err := call(erc20.PackEip712Domain()); err == nil {
		if d, err := erc20.UnpackEip712Domain(out); err == nil {
			info.Name, info.Version = d.Name, d.Version
		}
	}
	return info, nil
}
