package main

import (
	"fmt"
	"math/big"
	"time"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
)

// measureBridge records the main-chain and sidechain contracts (issue 9): a checkpoint
// submitted with 4, 10 and 21 validators of equal stake (signed by the fewest that hold two
// thirds: 3, 7 and 14), a deposit (and one by permit, sent by another account), its mint on the sidechain (3 of 4 signatures), a
// withdrawal and its exit, and a ticket's exit on both chains. Each is the steady state: a
// checkpoint, a deposit, a withdrawal and an exit have already happened.
func measureBridge(record func(string, uint64)) error {
	main, err := devchain.New(devchain.Options{Seed: "gasreport/main", ChainID: big.NewInt(1337)})
	if err != nil {
		return err
	}
	defer main.Close()
	side, err := devchain.New(devchain.Options{Seed: "gasreport/side", ChainID: big.NewInt(31337)})
	if err != nil {
		return err
	}
	defer side.Close()

	var b *devchain.Bridge
	for _, n := range []int{4, 10, 21} {
		if b, err = devchain.NewBridge(main, side, devchain.BridgeOptions{Validators: n, ExitDelay: 3600}); err != nil {
			return err
		}
		signers := b.Validators[:(2*n+2)/3]
		var gas uint64
		for range 2 {
			side.Commit()
			if gas, err = submitCheckpoint(b, signers); err != nil {
				return fmt.Errorf("checkpoint_submit_%dv: %w", n, err)
			}
		}
		record(fmt.Sprintf("checkpoint_submit_%dv", n), gas)
	}

	// The last bridge has 21 validators; deposits and exits need a checkpoint, not a set
	// this large: use a 4-validator bridge.
	if b, err = devchain.NewBridge(main, side, devchain.BridgeOptions{Validators: 4, ExitDelay: 3600}); err != nil {
		return err
	}
	q := b.Validators[:3]
	fan, sideFan := main.Accounts[0], side.Accounts[4]
	main.FundUSD(b.Root, devchain.USDC(1000), fan)
	var deposits []sidechain.Deposit
	for i := range 2 {
		r, err := main.Transact(fan, b.Root, devchain.RootGW.PackDeposit(sideFan.Address, devchain.USDC(100)), nil)
		if err != nil {
			return fmt.Errorf("gateway_deposit: %w", err)
		}
		if i == 1 {
			record("gateway_deposit", r.GasUsed)
		}
		for _, l := range r.Logs {
			if ev, err := devchain.RootGW.UnpackDepositedEvent(l); err == nil {
				deposits = append(deposits, sidechain.Deposit{DepositId: ev.DepositId, Recipient: ev.Recipient, Amount: ev.Amount})
			}
		}
	}
	// The same deposit by the owner's permit, sent by another account (the relay).
	owner := main.Accounts[1]
	main.MustTransact(owner, main.USD, devchain.USD.PackMint(owner.Address, devchain.USDC(1000)), nil)
	for i := range 2 {
		deadline := new(big.Int).SetUint64(main.Now() + 3600)
		v, rs, ss := main.SignPermit(owner, b.Root, devchain.USDC(100), deadline)
		r, err := main.Transact(fan, b.Root, devchain.RootGW.PackDepositWithPermit(owner.Address, devchain.USDC(100), deadline, v, rs, ss), nil)
		if err != nil {
			return fmt.Errorf("gateway_deposit_permit: %w", err)
		}
		if i == 1 {
			record("gateway_deposit_permit", r.GasUsed)
		}
	}
	for i, d := range deposits {
		r, err := side.Transact(side.Deployer, b.Child, b.MintDepositsCall([]sidechain.Deposit{d}, q...), nil)
		if err != nil {
			return fmt.Errorf("gateway_mint_deposit: %w", err)
		}
		if i == 1 {
			record("gateway_mint_deposit", r.GasUsed)
		}
	}

	// A ticket bought with the bridged stablecoin; the event's start passes.
	issuer, artist, venue := side.Accounts[0], side.Accounts[1], side.Accounts[2]
	cfg := side.DefaultConfig(issuer.Address, artist.Address, venue.Address)
	cfg.Currency = b.ChildToken
	ev, err := side.CreateEvent(issuer, cfg)
	if err != nil {
		return err
	}
	side.MustTransact(sideFan, b.ChildToken, childtoken.NewChildToken().PackApprove(ev, devchain.USDC(100)), nil)
	id, err := firstToken(side, sideFan, ev)
	if err != nil {
		return err
	}
	second, err := firstToken(side, sideFan, ev)
	if err != nil {
		return err
	}

	tree := merkle.New(merkle.WithdrawalDepth)
	var ws []merkle.Withdrawal
	queue := func(name string, data []byte, keep bool) error {
		r, err := side.Transact(sideFan, b.Child, data, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		w, err := devchain.QueuedWithdrawal(r.Logs)
		if err != nil {
			return err
		}
		root, err := b.WithdrawalRoot()
		if err != nil {
			return err
		}
		tree.Push(w.Leaf())
		if tree.Root() != root {
			return fmt.Errorf("%s: Go withdrawal root differs from ChildGateway's", name)
		}
		ws = append(ws, w)
		if keep {
			record(name, r.GasUsed)
		}
		return nil
	}
	for i := range 2 {
		if err := queue("gateway_withdraw", devchain.ChildGW.PackWithdraw(fan.Address, devchain.USDC(10)), i == 1); err != nil {
			return err
		}
	}
	side.Warp(8 * 24 * time.Hour)
	for i, t := range []*big.Int{id, second} {
		if err := queue("ticket_exit_side", devchain.ChildGW.PackExitTicket(ev, t, fan.Address), i == 1); err != nil {
			return err
		}
	}
	side.Commit()
	if _, err := submitCheckpoint(b, q); err != nil {
		return err
	}
	exit := func(name string, w merkle.Withdrawal, keep bool) error {
		data, err := devchain.ExitCall(0, w, tree)
		if err != nil {
			return err
		}
		r, err := main.Transact(main.Deployer, b.Root, data, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if keep {
			record(name, r.GasUsed)
		}
		return nil
	}
	for i, w := range ws {
		name := "gateway_exit"
		if w.Kind == merkle.KindTicket {
			name = "ticket_exit_main"
		}
		if err := exit(name, w, i%2 == 1); err != nil {
			return err
		}
	}
	return nil
}

func submitCheckpoint(b *devchain.Bridge, signers []*devchain.Account) (uint64, error) {
	cp, err := b.NextCheckpoint()
	if err != nil {
		return 0, err
	}
	r, err := b.Main.Transact(b.Main.Deployer, b.Checkpoints, b.SubmitCheckpointCall(cp, signers...), nil)
	if err != nil {
		return 0, err
	}
	return r.GasUsed, nil
}
