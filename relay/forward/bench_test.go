package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// stubChain answers the forwarder's questions instantly: every address is an event, every
// call succeeds, and a sent transaction is mined at once (moving the signer's forwarder
// nonce). It isolates the relay's own work — signature check, outbox write and fsync, and
// the sender's signing and bookkeeping — from a chain's.
type stubChain struct {
	mu       sync.Mutex
	nonces   map[common.Address]uint64
	hot      uint64
	receipts map[common.Hash]*types.Receipt
}

var stubChainID = big.NewInt(1337)

func newStub() *stubChain {
	return &stubChain{nonces: make(map[common.Address]uint64), receipts: make(map[common.Hash]*types.Receipt)}
}

func (s *stubChain) ChainID(context.Context) (*big.Int, error) { return stubChainID, nil }

func (s *stubChain) HeaderByNumber(context.Context, *big.Int) (*types.Header, error) {
	return &types.Header{Number: big.NewInt(1), BaseFee: big.NewInt(params.GWei)}, nil
}

func (s *stubChain) CallContract(_ context.Context, msg ethereum.CallMsg, _ *big.Int) ([]byte, error) {
	fwd, fac := fwdABI.GetABI(), factoryABI.GetABI()
	switch sel := string(msg.Data[:4]); sel {
	case string(fwd.Methods["nonces"].ID):
		args, err := fwd.Methods["nonces"].Inputs.Unpack(msg.Data[4:])
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		n := s.nonces[args[0].(common.Address)]
		s.mu.Unlock()
		return fwd.Methods["nonces"].Outputs.Pack(new(big.Int).SetUint64(n))
	case string(fac.Methods["isEvent"].ID):
		return fac.Methods["isEvent"].Outputs.Pack(true)
	}
	return nil, nil
}

func (s *stubChain) NonceAt(context.Context, common.Address, *big.Int) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hot, nil
}

func (s *stubChain) PendingNonceAt(ctx context.Context, a common.Address) (uint64, error) {
	return s.NonceAt(ctx, a, nil)
}

func (s *stubChain) SuggestGasTipCap(context.Context) (*big.Int, error) {
	return big.NewInt(params.GWei), nil
}

func (s *stubChain) SendTransaction(_ context.Context, tx *types.Transaction) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tx.Nonce() < s.hot {
		return errors.New("nonce too low")
	}
	if tx.Nonce() > s.hot {
		return errors.New("stub: nonce gap")
	}
	if tx.To() != nil && *tx.To() != (common.Address{}) && len(tx.Data()) > 4 {
		args, err := fwdABI.GetABI().Methods["execute"].Inputs.Unpack(tx.Data()[4:])
		if err != nil {
			return err
		}
		req := *abi.ConvertType(args[0], new(forwarder.ERC2771ForwarderForwardRequestData)).(*forwarder.ERC2771ForwarderForwardRequestData)
		s.nonces[req.From]++
	}
	s.hot++
	s.receipts[tx.Hash()] = &types.Receipt{Status: types.ReceiptStatusSuccessful, TxHash: tx.Hash(), BlockNumber: big.NewInt(int64(s.hot))}
	return nil
}

func (s *stubChain) TransactionReceipt(_ context.Context, h common.Hash) (*types.Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.receipts[h]; r != nil {
		return r, nil
	}
	return nil, ethereum.NotFound
}

func (s *stubChain) FilterLogs(context.Context, ethereum.FilterQuery) ([]types.Log, error) {
	return nil, nil
}

type signedRequest struct {
	req protocol.ForwardRequest
	sig []byte
}

// signRequests makes n requests from n fresh signers: setApprovalForAll on `event`, a
// call any account can make, so on a real chain each passes the would-succeed check too.
func signRequests(tb testing.TB, n int, chainID *big.Int, fwd, event common.Address, deadline uint64) []signedRequest {
	out := make([]signedRequest, n)
	domain := protocol.ForwarderDomain(chainID.Uint64(), ethcrypto.Address(fwd))
	data := devchain.Ticket.PackSetApprovalForAll(common.Address{0xbe, 0xef}, true)
	for i := range out {
		key, err := crypto.GenerateKey()
		if err != nil {
			tb.Fatal(err)
		}
		req := protocol.ForwardRequest{
			From: ethcrypto.Address(crypto.PubkeyToAddress(key.PublicKey)), To: ethcrypto.Address(event),
			Value: new(big.Int), Gas: big.NewInt(100_000), Nonce: new(big.Int), Deadline: deadline, Data: data,
		}
		digest, err := req.Digest(domain)
		if err != nil {
			tb.Fatal(err)
		}
		sig, err := crypto.Sign(digest[:], key)
		if err != nil {
			tb.Fatal(err)
		}
		sig[64] += 27
		out[i] = signedRequest{req, sig}
	}
	return out
}

// submitAll submits the requests from `clients` goroutines and reports requests per
// second. Each request is acknowledged only after its outbox write is fsynced.
func submitAll(b *testing.B, f *Forwarder, reqs []signedRequest, clients int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(reqs)) {
					return
				}
				if _, err := f.Submit(context.Background(), reqs[i].req, reqs[i].sig); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

func benchConfig(b *testing.B, client Client, chainID *big.Int, fwd, factory common.Address) Config {
	key, _ := crypto.GenerateKey()
	return Config{
		Client: client, ChainID: chainID, Forwarder: fwd, Factory: factory, Key: key,
		Path:         filepath.Join(b.TempDir(), "outbox.db"),
		Limits:       Limits{Rate: 1e9, Burst: 1 << 30, MaxPending: 1 << 30, MaxInFlight: 256},
		PollInterval: 50 * time.Millisecond,
		DrainTimeout: time.Millisecond,
		Logger:       slog.New(slog.DiscardHandler),
	}
}

// BenchmarkSubmit is the intake rate: signature check, nonce and rate bookkeeping, and the
// fsynced outbox write (group-committed across concurrent Submits), with the sender
// signing and recording transactions for the accepted requests at the same time. The
// chain is a stub that answers at once.
func BenchmarkSubmit(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			stub := newStub()
			event, fwd := common.Address{0xe1}, common.Address{0xf1}
			reqs := signRequests(b, b.N, stubChainID, fwd, event, uint64(time.Now().Unix())+3600)
			f, err := New(context.Background(), benchConfig(b, stub, stubChainID, fwd, common.Address{0xfa}))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			submitAll(b, f, reqs, clients)
		})
	}
}

// BenchmarkSubmitSimulatedChain is the same against the in-process simulated chain, so
// each request also pays for the two eth_calls of the nonce and would-succeed checks.
func BenchmarkSubmitSimulatedChain(b *testing.B) {
	c, err := devchain.New(devchain.Options{Accounts: 1, Seed: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ev, err := c.CreateEvent(c.Accounts[0], c.DefaultConfig(c.Accounts[0].Address, c.Accounts[0].Address, c.Accounts[0].Address))
	if err != nil {
		b.Fatal(err)
	}
	reqs := signRequests(b, b.N, c.ChainID, c.Forwarder, ev, max(c.Now(), uint64(time.Now().Unix()))+3600)
	cfg := benchConfig(b, c.Client, c.ChainID, c.Forwarder, c.Factory)
	cfg.hooks.holdSender = true // the hot wallet here has no coin; measure intake only
	f, err := New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	submitAll(b, f, reqs, 32)
}
