package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/relay/oracle"
)

// runRewards is `stagepass rewards`: a validator's stake and unclaimed checkpoint rewards in
// StakeManager (found from RootGateway), and the reward pool; with --claim it claims them
// from the validator's own key, which pays the main-chain gas.
func runRewards(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("rewards", "Shows a validator's stake and unclaimed checkpoint rewards in StakeManager and the reward pool; "+
		"--claim pays the rewards to the validator (its key pays the gas).", stderr)
	mainRPC := fs.String("main-rpc", "", "the main chain's JSON-RPC endpoint (required)")
	root := fs.String("root-gateway", "", "address of RootGateway on the main chain (required)")
	address := fs.String("address", "", "the validator to show (default: the keystore's address)")
	var keyFile string
	fs.StringVar(&keyFile, "keystore", "", "keystore v3 JSON file of the validator's key (required with --claim)")
	passFile := fs.String("password-file", "", "file holding the keystore's password (default: $STAGEPASS_PASSWORD)")
	claim := fs.Bool("claim", false, "claim the unclaimed rewards")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *mainRPC == "" || *root == "":
		fs.Usage()
		return errors.New("missing --main-rpc or --root-gateway")
	case !common.IsHexAddress(*root):
		return fmt.Errorf("--root-gateway: not an address: %q", *root)
	case *address != "" && !common.IsHexAddress(*address):
		return fmt.Errorf("--address: not an address: %q", *address)
	case keyFile == "" && (*claim || *address == ""):
		fs.Usage()
		return errors.New("missing --keystore (or --address to only show a validator)")
	}
	client, chainID, err := dialChain(ctx, "--main-rpc", *mainRPC)
	if err != nil {
		return err
	}
	defer client.Close()
	var w *oracle.Wallet
	who := common.HexToAddress(*address)
	if keyFile != "" {
		key, err := readKeystore(keyFile, *passFile)
		if err != nil {
			return err
		}
		w = &oracle.Wallet{Client: client, ChainID: chainID, Key: key}
		if *address == "" {
			who = crypto.PubkeyToAddress(key.PublicKey)
		} else if who != w.Address() && *claim {
			return fmt.Errorf("--claim: the keystore holds %s, not %s: a validator claims its own rewards", w.Address().Hex(), who.Hex())
		}
	}
	stakeAddr, err := stakeManagerOf(ctx, client, common.HexToAddress(*root))
	if err != nil {
		return err
	}
	sm := mainchain.NewStakeManager()
	read := func() (mainchain.ValidatorsOutput, *big.Int, error) {
		out, err := client.CallContract(ctx, ethereum.CallMsg{To: &stakeAddr, Data: sm.PackValidators(who)}, nil)
		if err != nil {
			return mainchain.ValidatorsOutput{}, nil, fmt.Errorf("read StakeManager %s: %w", stakeAddr.Hex(), err)
		}
		v, err := sm.UnpackValidators(out)
		if err != nil {
			return v, nil, err
		}
		out, err = client.CallContract(ctx, ethereum.CallMsg{To: &stakeAddr, Data: sm.PackRewardPool()}, nil)
		if err != nil {
			return v, nil, fmt.Errorf("read StakeManager %s: %w", stakeAddr.Hex(), err)
		}
		pool, err := sm.UnpackRewardPool(out)
		return v, pool, err
	}
	v, pool, err := read()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "StakeManager %s on chain %s: reward pool %s base units\n", stakeAddr.Hex(), chainID, pool)
	fmt.Fprintf(stdout, "validator %s: stake %s, unclaimed rewards %s base units\n", who.Hex(), v.Stake, v.Reward)
	if !*claim {
		return nil
	}
	if v.Reward.Sign() == 0 {
		return fmt.Errorf("%s has no unclaimed rewards", who.Hex())
	}
	tx, err := w.Send(ctx, stakeAddr, sm.PackClaimRewards(), 0)
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	fmt.Fprintf(stdout, "claim sent: %s\n", tx.Hash().Hex())
	rcpt, err := waitMined(ctx, w, tx.Hash())
	if err != nil {
		return err
	}
	if rcpt.Status != types.ReceiptStatusSuccessful {
		return fmt.Errorf("claim %s reverted", tx.Hash().Hex())
	}
	fmt.Fprintf(stdout, "claimed %s base units in block %s\n", v.Reward, rcpt.BlockNumber)
	return nil
}

// stakeManagerOf reads StakeManager from RootGateway (RootGateway.CHECKPOINTS().STAKE()).
func stakeManagerOf(ctx context.Context, c *ethclient.Client, root common.Address) (common.Address, error) {
	rg, cm := mainchain.NewRootGateway(), mainchain.NewCheckpointManager()
	out, err := c.CallContract(ctx, ethereum.CallMsg{To: &root, Data: rg.PackCHECKPOINTS()}, nil)
	if err != nil {
		return common.Address{}, fmt.Errorf("read RootGateway %s (is it RootGateway?): %w", root.Hex(), err)
	}
	manager, err := rg.UnpackCHECKPOINTS(out)
	if err != nil {
		return common.Address{}, fmt.Errorf("read RootGateway %s: %w", root.Hex(), err)
	}
	if out, err = c.CallContract(ctx, ethereum.CallMsg{To: &manager, Data: cm.PackSTAKE()}, nil); err != nil {
		return common.Address{}, fmt.Errorf("read CheckpointManager %s: %w", manager.Hex(), err)
	}
	return cm.UnpackSTAKE(out)
}

// waitMined follows h through the wallet until it is mined, for at most two minutes.
func waitMined(ctx context.Context, w *oracle.Wallet, h common.Hash) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		r, err := w.Receipt(ctx, h)
		if r != nil || err != nil {
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s not mined: %w", h.Hex(), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
