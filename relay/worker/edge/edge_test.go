package edge

import (
	"context"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/devchain/gethtest"
)

// A worker configured for another chain than its node's refuses to report healthy or to
// send anything, before it touches the outbox. (The rest of the package runs under wrangler
// dev in relay/worker's tests.)
func TestWrongChain(t *testing.T) {
	c, err := ethclient.Dial(gethtest.StartGeth(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	unreachable := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Fatal("the outbox was called")
		return nil, nil
	})}
	r, err := New(Config{
		Chain: c, ChainID: big.NewInt(1), Forwarder: common.Address{1}, Factory: common.Address{2}, Key: key,
		Store: &HTTPStore{Client: unreachable, Base: "https://outbox"}, Fanout: &HTTPPublisher{Client: unreachable, Base: "https://fanout"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Health(ctx); err == nil || !strings.Contains(err.Error(), "CHAIN_ID is 1") {
		t.Fatalf("Health: %v", err)
	}
	if err := r.Pump(ctx, time.Now().Add(time.Second), time.Second); err == nil || !strings.Contains(err.Error(), "CHAIN_ID is 1") {
		t.Fatalf("Pump: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
