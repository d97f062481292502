//go:build !js

package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/devnet"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/relay/validator"
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
	if _, rerr := w.call(t, protocol.MethodDepositWithPermit, map[string]any{}); rerr == nil || rerr.Code != -32601 ||
		!strings.Contains(rerr.Message, "no main-chain wallet") {
		t.Fatalf("sp_depositWithPermit: %+v", rerr)
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
