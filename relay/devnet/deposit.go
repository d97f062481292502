package devnet

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/keys"
)

// Deposit sends RootGateway.deposit(recipient, amount) on the main chain from development
// account `account` (whose TestUSD startMainchain approved to RootGateway), over the main
// chain's JSON-RPC at mainRPC (`stagepass dev --main-chain-rpc`), and waits until it is
// mined. The validators credit it on the sidechain once it has their confirmations. For
// tests and demos that give a fan bridged stablecoin.
func Deposit(ctx context.Context, mainRPC string, root common.Address, account uint32, recipient common.Address, amount *big.Int) error {
	master, err := keys.FromMnemonic(DevMnemonic, "")
	if err != nil {
		return err
	}
	defer master.Zero()
	sk, err := master.Account(account)
	if err != nil {
		return err
	}
	key, err := crypto.ToECDSA(sk.Bytes())
	sk.Zero()
	if err != nil {
		return err
	}
	c, err := ethclient.DialContext(ctx, mainRPC)
	if err != nil {
		return fmt.Errorf("main chain at %s: %w", mainRPC, err)
	}
	defer c.Close()
	w := &oracle.Wallet{Client: c, ChainID: MainChainID, Key: key}
	tx, err := w.Send(ctx, root, devchain.RootGW.PackDeposit(recipient, amount), 0)
	if err != nil {
		return fmt.Errorf("deposit: %w", err)
	}
	r, err := bind.WaitMined(ctx, c, tx.Hash())
	if err != nil {
		return fmt.Errorf("deposit %s: %w", tx.Hash(), err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		return fmt.Errorf("deposit %s reverted", tx.Hash())
	}
	return nil
}
