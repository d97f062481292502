//go:build !js

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/relay/validator"
	"github.com/stagepass/stagepass/relay/worker/edge"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// until polls cond every 200 ms for up to a minute.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWorkerWithdrawals: the development chains with the bridge served over HTTP, the native
// relay with the validators' aggregator (ManualExits: it pays no exit) and the worker with
// CHILD_GATEWAY, MAIN_RPC and ROOT_GATEWAY. A fan credited by a deposit withdraws spUSD with
// a signed request relayed by the worker; the worker's sp_withdrawals follows it queued →
// checkpointed → exited and answers as the native relay at each stage, its proof is the
// native one and RootGateway.exit accepts it on chain (the recipient is paid), and the exit
// transaction shows. sp_chainInfo's bridge fields and sp_permitInfo of the bridged
// stablecoin are the native relay's; bad params get the native errors, and
// sp_depositWithPermit a clear refusal.
func TestWorkerWithdrawals(t *testing.T) {
	bin := wranglerPath(t)
	sideRPC, mainRPC := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	chain, err := devnet.Start(devnet.Config{BlockTime: 200 * time.Millisecond, MainChain: true, RPC: sideRPC, MainRPC: mainRPC})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(chain.Close)

	// The native relay: the validators' aggregator (checkpoints, deposits) and the reference
	// answers. It forwards nothing here; its hot wallet is not the worker's.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	native, err := server.Start(context.Background(), server.Config{
		Listener: ln, DataDir: t.TempDir(), Client: chain.Client, ChainID: chain.ChainID,
		Forwarder: chain.Forwarder, Factory: chain.Factory, USD: chain.USD, Relayer: devchain.NewAccount("native relayer", 0).Key,
		Validators: &server.ValidatorConfig{Main: chain.Main.Client, MainChainID: chain.Main.ChainID, Root: chain.Bridge.Root,
			Child: chain.Bridge.Child, Submitter: chain.Submitter, ManualExits: true, DepositConfirmations: 2, MainStartBlock: chain.MainStart},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = native.Shutdown(ctx)
	})
	ref := &wrangler{url: "http://" + native.Addr(), logs: &syncbuf.Buffer{}}
	validators := func() context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if _, err := chain.StartValidators(ctx, func(int) validator.Relay { return native.Validators() },
			validator.NodeConfig{Every: 4, Confirmations: 2, Poll: 50 * time.Millisecond}, nil); err != nil {
			t.Fatal(err)
		}
		return cancel
	}

	// The worker's hot wallet is development account 0 (devnet's Relayer, funded).
	w, _, _ := startWrangler(t, bin, buildWorker(t), t.TempDir(), map[string]string{
		"RPC_URL": "http://" + sideRPC, "CHAIN_ID": chain.ChainID.String(), "FORWARDER": chain.Forwarder.Hex(), "FACTORY": chain.Factory.Hex(),
		"RELAYER_KEY": hex.EncodeToString(crypto.FromECDSA(chain.Relayer)), "CHILD_GATEWAY": chain.Bridge.Child.Hex(),
		"MAIN_RPC": "http://" + mainRPC, "ROOT_GATEWAY": chain.Bridge.Root.Hex(), "MAIN_START_BLOCK": fmt.Sprint(chain.MainStart),
		"DEPOSIT_CONFIRMATIONS": "2",
	})

	// Both answer a call alike: the same result, or the same error.
	same := func(method string, params ...any) json.RawMessage {
		t.Helper()
		got, gerr := w.call(t, method, params...)
		want, werr := ref.call(t, method, params...)
		if !reflect.DeepEqual(gerr, werr) || (gerr == nil && !jsonEqual(t, got, want)) {
			t.Fatalf("%s %v:\nworker %s %+v\nnative %s %+v", method, params, got, gerr, want, werr)
		}
		return got
	}
	stage := func(to common.Address, stage string) protocol.Withdrawal {
		t.Helper()
		var ws []protocol.Withdrawal
		until(t, "withdrawal "+stage, func() bool {
			res, rerr := w.call(t, protocol.MethodWithdrawals, to.Hex())
			if rerr != nil {
				t.Fatalf("sp_withdrawals: %+v\n%s", rerr, w.logs)
			}
			if err := json.Unmarshal(res, &ws); err != nil {
				t.Fatal(err)
			}
			return len(ws) == 1 && ws[0].Stage == stage
		})
		// The native tracker reads every second: it gets there too, and then both agree.
		until(t, "the native relay's withdrawal "+stage, func() bool {
			res, _ := ref.call(t, protocol.MethodWithdrawals, to.Hex())
			return strings.Contains(string(res), `"stage":"`+stage+`"`)
		})
		same(protocol.MethodWithdrawals, to.Hex())
		return ws[0]
	}

	var info protocol.ChainInfo
	if err := json.Unmarshal(w.mustCall(t, protocol.MethodChainInfo), &info); err != nil {
		t.Fatal(err)
	}
	var want protocol.ChainInfo
	if err := json.Unmarshal(ref.mustCall(t, protocol.MethodChainInfo), &want); err != nil {
		t.Fatal(err)
	}
	if info.Gateway == "" || info.Gateway != want.Gateway || info.BridgedCurrency != want.BridgedCurrency ||
		info.MainChainID != want.MainChainID || info.ExitDelay != want.ExitDelay {
		t.Fatalf("chain info: worker %+v, native %+v", info, want)
	}

	fan := devchain.NewAccount("worker bridge fan", 0) // no coin on either chain
	recipient := chain.Main.Accounts[5]                // holds main-chain coin for its own exit
	chain.Main.MustTransact(chain.Main.Accounts[3], chain.Bridge.Root, devchain.RootGW.PackDeposit(fan.Address, devchain.USDC(10)), nil)
	stopValidators := validators()
	token := childtoken.NewChildToken()
	until(t, "the deposit credited on the sidechain", func() bool {
		out, _ := chain.Call(chain.Bridge.ChildToken, token.PackBalanceOf(fan.Address))
		b, err := token.UnpackBalanceOf(out)
		return err == nil && b.Sign() > 0
	})
	stopValidators() // no checkpoint while the withdrawal is only queued
	same(protocol.MethodPermitInfo, chain.Bridge.ChildToken.Hex(), fan.Address.Hex())
	// sp_deposits: the native answer but for the confirmations, counted to each one's head.
	var deps, nativeDeps []protocol.Deposit
	until(t, "the native relay's deposit credited", func() bool {
		res, _ := ref.call(t, protocol.MethodDeposits, fan.Address.Hex())
		return json.Unmarshal(res, &nativeDeps) == nil && len(nativeDeps) == 1 && nativeDeps[0].Stage == protocol.DepositCredited
	})
	if err := json.Unmarshal(w.mustCall(t, protocol.MethodDeposits, fan.Address.Hex()), &deps); err != nil || len(deps) != 1 {
		t.Fatalf("sp_deposits: %+v %v", deps, err)
	}
	if deps[0].Confirmations < 2 {
		t.Fatalf("deposit %+v", deps[0])
	}
	deps[0].Confirmations, nativeDeps[0].Confirmations = 0, 0
	if deps[0] != nativeDeps[0] {
		t.Fatalf("sp_deposits: worker %+v, native %+v", deps[0], nativeDeps[0])
	}
	same(protocol.MethodDeposits, "0x12")

	// The fan withdraws through the worker.
	req, sig := chain.SignForward(fan, chain.Bridge.Child, devchain.ChildGW.PackWithdraw(recipient.Address, devchain.USDC(4)), 400_000, chain.Now()+3600)
	res, rerr := w.call(t, protocol.MethodSendForward, submission(req, sig))
	if rerr != nil {
		t.Fatalf("sp_sendForward: %+v", rerr)
	}
	var st protocol.RequestStatus
	if err := json.Unmarshal(res, &st); err != nil {
		t.Fatal(err)
	}
	until(t, "the withdrawal mined", func() bool {
		st = w.status(t, st.ID)
		if st.State == protocol.RequestFailed {
			t.Fatalf("withdrawal failed: %s", st.Reason)
		}
		return st.State == protocol.RequestMined
	})
	q := stage(recipient.Address, protocol.WithdrawalQueued)
	if q.Kind != "token" || q.Value != "4000000" || q.TxHash != st.TxHash || q.Checkpoint != nil {
		t.Fatalf("queued: %+v (request %+v)", q, st)
	}
	same(protocol.MethodWithdrawalProof, 0) // "withdrawal 0 is not in a checkpoint yet"

	validators()
	c := stage(recipient.Address, protocol.WithdrawalCheckpointed)
	var proof protocol.WithdrawalProof
	if err := json.Unmarshal(same(protocol.MethodWithdrawalProof, "0"), &proof); err != nil {
		t.Fatal(err)
	}
	if proof.Checkpoint != *c.Checkpoint || len(proof.Proof) != merkle.WithdrawalDepth {
		t.Fatalf("proof %+v for %+v", proof, c)
	}

	// The worker's proof, as served, is what RootGateway.exit accepts.
	siblings := make([][32]byte, len(proof.Proof))
	for i, h := range proof.Proof {
		siblings[i] = common.HexToHash(h)
	}
	value, _ := new(big.Int).SetString(proof.Value, 10)
	data, _ := new(big.Int).SetString(proof.Data, 10)
	mw := merkle.Withdrawal{Kind: proof.Kind, Index: proof.Index, Recipient: common.HexToAddress(proof.Recipient),
		Asset: common.HexToAddress(proof.Asset), Value: value, Data: data}
	before := chain.Main.USDBalance(recipient.Address)
	rcpt, err := chain.Main.Transact(recipient, chain.Bridge.Root,
		devchain.RootGW.PackExit(new(big.Int).SetUint64(proof.Checkpoint), devchain.MainWithdrawal(mw), siblings), nil)
	if err != nil {
		t.Fatalf("exit with the worker's proof: %v", err)
	}
	if got := new(big.Int).Sub(chain.Main.USDBalance(recipient.Address), before); got.Cmp(devchain.USDC(4)) != 0 {
		t.Fatalf("paid %v", got)
	}
	x := stage(recipient.Address, protocol.WithdrawalExited)
	if x.ExitTx != rcpt.TxHash.Hex() || *x.Checkpoint != proof.Checkpoint {
		t.Fatalf("exited %+v, exit transaction %s", x, rcpt.TxHash.Hex())
	}

	// Bad params: the native relay's errors.
	same(protocol.MethodWithdrawalProof, 99) // no withdrawal 99 (ChildGateway has queued 1)
	same(protocol.MethodWithdrawalProof, "x")
	same(protocol.MethodWithdrawalProof, -1)
	same(protocol.MethodWithdrawals, "0x12")
	same(protocol.MethodWithdrawals, fan.Address.Hex()) // none: []
	for _, method := range []string{protocol.MethodDepositWithPermit, protocol.MethodMainPermitInfo} {
		if _, rerr := w.call(t, method, map[string]any{}); rerr == nil || rerr.Code != -32601 || !strings.Contains(rerr.Message, "no main-chain wallet") {
			t.Fatalf("%s: %+v", method, rerr)
		}
	}
}

// The worker's default deposit confirmations are the validators'.
func TestDefaultConfirmations(t *testing.T) {
	if edge.DefaultConfirmations != validator.DefaultConfirmations {
		t.Fatalf("edge %d, validators %d", edge.DefaultConfirmations, validator.DefaultConfirmations)
	}
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// mustCall is a call that must succeed.
func (w *wrangler) mustCall(t testing.TB, method string, params ...any) json.RawMessage {
	t.Helper()
	res, rerr := w.call(t, method, params...)
	if rerr != nil {
		t.Fatalf("%s: %+v", method, rerr)
	}
	return res
}

// replaceAfterFork replaces the block of transaction `orig` (and those after it): the
// chain goes back to its parent, `from` sends another transaction (to, data) under the same
// nonce with twice the fees, so the original cannot be mined again, and three blocks are
// sealed on the new branch.
func replaceAfterFork(t *testing.T, c *devchain.Chain, from *devchain.Account, orig common.Hash, to common.Address, data []byte) {
	t.Helper()
	ctx := context.Background()
	tx, _, err := c.Client.TransactionByHash(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	rcpt, err := c.Client.TransactionReceipt(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := c.Client.HeaderByNumber(ctx, new(big.Int).Sub(rcpt.BlockNumber, big.NewInt(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	two := big.NewInt(2)
	repl, err := types.SignNewTx(from.Key, types.LatestSignerForChainID(c.ChainID), &types.DynamicFeeTx{
		ChainID: c.ChainID, Nonce: tx.Nonce(), GasTipCap: new(big.Int).Mul(tx.GasTipCap(), two), GasFeeCap: new(big.Int).Mul(tx.GasFeeCap(), two),
		Gas: tx.Gas(), To: &to, Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The pool moves to the new head on its own time: until then the nonce looks used.
	until(t, "the pool on the new branch", func() bool {
		err := c.Client.SendTransaction(ctx, repl)
		if err != nil && !strings.Contains(err.Error(), "nonce too low") {
			t.Fatal(err)
		}
		return err == nil
	})
	for range 3 {
		c.Commit()
	}
	if r, err := c.Client.TransactionReceipt(ctx, repl.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("the replacement: %+v %v", r, err)
	}
}

// counted is a JSON-RPC endpoint forwarding to url that counts the requests in n.
func counted(t *testing.T, url string, n *atomic.Int64) string {
	t.Helper()
	target, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestWorkerBridgeReorg: the bridge's chains are go-ethereum's simulated chains (served
// through JSON-RPC proxies, so that the test can replace blocks; blocks sealed by the test).
// A withdrawal the worker showed queued is replaced on the sidechain by another of another
// amount under the same index: the worker shows the new one (its stored leaf dropped, not
// kept beside the new one). An exit the worker showed is replaced on the main chain by a
// plain transfer: the withdrawal is checkpointed again, with no exit transaction.
func TestWorkerBridgeReorg(t *testing.T) {
	bin := wranglerPath(t)
	b := devchain.NewTestBridge(t, t.Name(), 1338, 1337, devchain.BridgeOptions{})
	main, side := b.Main, b.Side
	// The fan holds 100 spUSD: a deposit on the main chain, minted with the validators' signatures.
	fan, recipient := side.Accounts[0], main.Accounts[1]
	main.FundUSD(b.Root, devchain.USDC(100), main.Accounts[0])
	main.MustTransact(main.Accounts[0], b.Root, devchain.RootGW.PackDeposit(fan.Address, devchain.USDC(100)), nil)
	side.MustTransact(side.Deployer, b.Child, b.MintDepositsCall([]sidechain.Deposit{
		{DepositId: new(big.Int), Recipient: fan.Address, Amount: devchain.USDC(100)}}, b.Validators...), nil)

	dev, err := keys.DevAccount(0)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64 // the JSON-RPC requests the worker makes of both chains
	w, _, _ := startWrangler(t, bin, buildWorker(t), t.TempDir(), map[string]string{
		"RPC_URL": counted(t, serveChain(t, side), &calls), "CHAIN_ID": side.ChainID.String(), "FORWARDER": side.Forwarder.Hex(), "FACTORY": side.Factory.Hex(),
		"RELAYER_KEY": hex.EncodeToString(dev.Bytes()), "CHILD_GATEWAY": b.Child.Hex(),
		"MAIN_RPC": counted(t, serveChain(t, main), &calls), "ROOT_GATEWAY": b.Root.Hex(),
	})
	one := func() protocol.Withdrawal {
		t.Helper()
		var ws []protocol.Withdrawal
		if err := json.Unmarshal(w.mustCall(t, protocol.MethodWithdrawals, recipient.Address.Hex()), &ws); err != nil || len(ws) != 1 {
			t.Fatalf("withdrawals %+v %v\n%s", ws, err, w.logs)
		}
		return ws[0]
	}

	r := side.MustTransact(fan, b.Child, devchain.ChildGW.PackWithdraw(recipient.Address, devchain.USDC(5)), nil)
	if q := one(); q.Value != "5000000" || q.TxHash != r.TxHash.Hex() || q.Stage != protocol.WithdrawalQueued {
		t.Fatalf("queued: %+v", q)
	}
	// A read's own pass, in chain requests: with no new block on either chain (the last
	// blocks' headers, the heads, RootGateway's CheckpointManager and its count), and with
	// one on each (also the new blocks' headers and a log query per chain).
	calls.Store(0)
	one()
	idle := calls.Swap(0)
	side.Commit()
	main.Commit()
	one()
	fresh := calls.Load()
	t.Logf("chain requests of a read's bridge pass: %d with no new block, %d with one new block on each chain", idle, fresh)
	if idle > 6 || fresh > 10 {
		t.Fatalf("a read's pass made %d chain requests (no new block), %d (one on each chain)", idle, fresh)
	}
	replaceAfterFork(t, side, fan, r.TxHash, b.Child, devchain.ChildGW.PackWithdraw(recipient.Address, devchain.USDC(3)))
	q := one()
	if q.Index != 0 || q.Value != "3000000" || q.TxHash == r.TxHash.Hex() || q.Stage != protocol.WithdrawalQueued {
		t.Fatalf("after the sidechain's reorganisation: %+v", q)
	}

	// A checkpoint carries it; the recipient exits with the worker's proof.
	cp, err := b.NextCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	main.MustTransact(main.Deployer, b.Checkpoints, b.SubmitCheckpointCall(cp, b.Validators...), nil)
	if c := one(); c.Stage != protocol.WithdrawalCheckpointed || c.Checkpoint == nil {
		t.Fatalf("checkpointed: %+v", c)
	}
	var proof protocol.WithdrawalProof
	if err := json.Unmarshal(w.mustCall(t, protocol.MethodWithdrawalProof, 0), &proof); err != nil {
		t.Fatal(err)
	}
	siblings := make([][32]byte, len(proof.Proof))
	for i, h := range proof.Proof {
		siblings[i] = common.HexToHash(h)
	}
	value, _ := new(big.Int).SetString(proof.Value, 10)
	mw := merkle.Withdrawal{Kind: proof.Kind, Index: proof.Index, Recipient: recipient.Address, Asset: common.HexToAddress(proof.Asset), Value: value, Data: new(big.Int)}
	exit := main.MustTransact(recipient, b.Root, devchain.RootGW.PackExit(new(big.Int).SetUint64(proof.Checkpoint), devchain.MainWithdrawal(mw), siblings), nil)
	if x := one(); x.Stage != protocol.WithdrawalExited || x.ExitTx != exit.TxHash.Hex() {
		t.Fatalf("exited: %+v", x)
	}
	replaceAfterFork(t, main, recipient, exit.TxHash, recipient.Address, nil)
	if c := one(); c.Stage != protocol.WithdrawalCheckpointed || c.ExitTx != "" || c.Checkpoint == nil || *c.Checkpoint != proof.Checkpoint {
		t.Fatalf("after the main chain's reorganisation: %+v", c)
	}
}
