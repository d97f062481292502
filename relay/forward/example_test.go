package forward_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/relay/forward"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The relay wires a Forwarder to its node and hot wallet, pushes status changes to its
// subscribers, and turns Submit's errors into JSON-RPC errors.
func ExampleNew() {
	ctx := context.Background()
	client, err := ethclient.DialContext(ctx, "http://127.0.0.1:8545")
	if err != nil {
		log.Fatal(err)
	}
	hot, err := crypto.HexToECDSA("…the hot wallet's key, from a keystore…")
	if err != nil {
		log.Fatal(err)
	}
	f, err := forward.New(ctx, forward.Config{
		Client:    client,
		ChainID:   big.NewInt(1337),
		Forwarder: common.HexToAddress("0x…"),
		Factory:   common.HexToAddress("0x…"),
		Key:       hot,
		Path:      "data/outbox.db",
		Limits:    forward.Limits{Rate: 1, Burst: 10, MaxPending: 8},
		Logger:    slog.Default(),
		OnStatus:  func(s forward.Status) { fmt.Println(s.ID, s.State, s.Reason) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	var req protocol.ForwardRequest // from the wallet, with its signature
	var sig []byte
	r, err := f.Submit(ctx, req, sig)
	var revert *forward.RevertError
	switch {
	case errors.As(err, &revert):
		fmt.Println("would fail on chain:", revert.Reason()) // e.g. PriceOutOfRange(…)
	case errors.Is(err, forward.ErrRateLimited), errors.Is(err, forward.ErrNonce):
		fmt.Println("try again:", err)
	case err != nil:
		fmt.Println("refused:", err)
	default:
		fmt.Println("accepted", r.ID, r.Status)
	}
}
