package rules

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestTables parses what the lazily built tables are made of, so a binding that drifted
// from the allowlist fails here rather than on a live request.
func TestTables(t *testing.T) {
	if n := len(eventSelectors()); n != 20 {
		t.Fatalf("%d event selectors", n)
	}
	if n := len(factorySelectors()); n != 1 {
		t.Fatalf("%d factory selectors", n)
	}
	if n := len(gatewaySelectors()); n != 2 {
		t.Fatalf("%d gateway selectors", n)
	}
	if len(knownErrors()) == 0 {
		t.Fatal("no known errors")
	}
}

func TestCheck(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	from, factory, event, gateway := crypto.PubkeyToAddress(key.PublicKey), common.Address{0xfa}, common.Address{0xee}, common.Address{0x9a}
	targets := Targets{Factory: factory, Gateway: gateway}
	domain := protocol.ForwarderDomain(1337, ethcrypto.Address{0xf0})
	buy := events.NewEventTicket().PackBuy(big.NewInt(0), big.NewInt(1), big.NewInt(50))
	sign := func(r *protocol.ForwardRequest) []byte {
		d, err := r.Digest(domain)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := crypto.Sign(d[:], key)
		if err != nil {
			t.Fatal(err)
		}
		return sig // v is 0 or 1: Check normalises it
	}
	req := func(to common.Address, data []byte) *protocol.ForwardRequest {
		return &protocol.ForwardRequest{From: ethcrypto.Address(from), To: ethcrypto.Address(to), Value: new(big.Int),
			Gas: big.NewInt(500_000), Nonce: new(big.Int), Deadline: 1 << 40, Data: data}
	}
	good := req(event, buy)
	id, sig, err := Check(good, sign(good), domain, targets, 16<<10, 2_000_000)
	if err != nil || sig[64] < 27 {
		t.Fatalf("good request: %v (v=%d)", err, sig[64])
	}
	if want, _ := good.Digest(domain); id != common.Hash(want) {
		t.Fatalf("id %s, want the digest", id)
	}
	valued := req(event, buy)
	valued.Value = big.NewInt(1)
	fac, err := events.EventFactoryMetaData.ParseABI()
	if err != nil {
		t.Fatal(err)
	}
	createOnEvent := req(event, append(fac.Methods["createEvent"].ID, make([]byte, 32)...))
	buyOnFactory := req(factory, buy)
	buyOnGateway := req(gateway, buy)
	withdraw := req(gateway, sidechain.NewChildGateway().PackWithdraw(from, big.NewInt(5)))
	withdrawOnEvent := req(event, withdraw.Data)
	if _, _, err := Check(withdraw, sign(withdraw), domain, targets, 16<<10, 2_000_000); err != nil {
		t.Fatalf("withdraw on the gateway: %v", err)
	}
	if _, _, err := Check(withdraw, sign(withdraw), domain, Targets{Factory: factory}, 16<<10, 2_000_000); !errors.Is(err, ErrSelector) {
		t.Fatalf("withdraw with no gateway configured: %v", err)
	}
	greedy := req(event, buy)
	greedy.Gas = big.NewInt(3_000_000)
	for name, c := range map[string]struct {
		r    *protocol.ForwardRequest
		sig  []byte
		want error
	}{
		"value":             {valued, sign(valued), ErrValue},
		"factory selector":  {createOnEvent, sign(createOnEvent), ErrSelector},
		"event selector":    {buyOnFactory, sign(buyOnFactory), ErrSelector},
		"buy on gateway":    {buyOnGateway, sign(buyOnGateway), ErrSelector},
		"withdraw on event": {withdrawOnEvent, sign(withdrawOnEvent), ErrSelector},
		"gas":               {greedy, sign(greedy), ErrGasLimit},
		"short signature":   {good, sign(good)[:64], ErrSignature},
		"other signer":      {good, sign(greedy), ErrSignature},
		"no selector":       {req(event, []byte{1}), nil, ErrInvalidRequest},
	} {
		if _, _, err := Check(c.r, c.sig, domain, targets, 16<<10, 2_000_000); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	now := time.Unix(1_800_000_000, 0)
	if err := CheckDeadline(uint64(now.Add(30*time.Second).Unix()), now, time.Minute); !errors.Is(err, ErrDeadline) {
		t.Fatalf("deadline in 30 s: %v", err)
	}
	if err := CheckDeadline(uint64(now.Add(2*time.Minute).Unix()), now, time.Minute); err != nil {
		t.Fatalf("deadline in 2 min: %v", err)
	}
}

func TestClassify(t *testing.T) {
	for msg, want := range map[string]Outcome{
		"already known": Delivered, "nonce too low": NonceUsed, "replacement transaction underpriced": Underpriced,
		"intrinsic gas too low": Rejected, "connection refused": Retry,
	} {
		if got := Classify(errors.New(msg)); got != want {
			t.Errorf("%q: %v, want %v", msg, got, want)
		}
	}
	if Classify(nil) != Delivered {
		t.Error("nil error")
	}
}

func TestRPCError(t *testing.T) {
	for err, code := range map[error]int{
		&NonceError{Got: big.NewInt(0), Want: big.NewInt(1)}: rpcserver.CodeInvalidParams,
		&RevertError{Name: "SoldOut"}:                        rpcserver.CodeInvalidParams,
		ErrTooManyPending:                                    rpcserver.CodeLimitExceeded,
		ErrUnknownRequest:                                    rpcserver.CodeInvalidParams,
	} {
		var re *rpcserver.Error
		if !errors.As(RPCError(err), &re) || re.Code != code || !strings.Contains(re.Message, err.Error()) {
			t.Errorf("%v: %v, want code %d", err, RPCError(err), code)
		}
	}
	other := errors.New("node unreachable")
	if RPCError(other) != other {
		t.Error("an error that is no refusal must pass through")
	}
}
