package edge

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/stagepass/stagepass/contracts/devchain/gethtest"
	"github.com/stagepass/stagepass/relay/rpcserver"
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

// unreachableDB fails the test if the index's database is touched.
type unreachableDB struct{ t *testing.T }

func (d unreachableDB) Query(context.Context, any, string, ...any) error {
	d.t.Fatal("the index was queried")
	return nil
}

func (d unreachableDB) Batch(context.Context, []Stmt) error {
	d.t.Fatal("the index was written")
	return nil
}

// Subscriptions to the tickets and event topics are refused, before the index is read,
// with the native relay's errors when their params are wrong.
func TestSubscribeParams(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{
		Chain: &ethclient.Client{}, ChainID: big.NewInt(1), Forwarder: common.Address{1}, Factory: common.Address{2}, Key: key,
		Store: &HTTPStore{}, Fanout: &HTTPPublisher{}, DB: unreachableDB{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ topic, params, want string }{
		{"tickets", ``, "tickets: params object required"},
		{"tickets", `null`, "tickets: params object required"},
		{"tickets", `{}`, "tickets: owner is required"},
		{"tickets", `{"owner":"0x12"}`, "invalid params for tickets"},
		{"tickets", `{"owner":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","event":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}`, `unknown field "event"`},
		{"event", `{"owner":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}`, `unknown field "owner"`},
		{"event", `{"event":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","from":{"block":"x"}}`, "invalid params for event"},
		{"payment", `{"id":"pi_1"}`, `unknown topic "payment"`},
	} {
		_, err := r.Subscribe(context.Background(), c.topic, json.RawMessage(c.params))
		var re *rpcserver.Error
		if !errors.As(err, &re) || re.Code != rpcserver.CodeInvalidParams || !strings.Contains(re.Message, c.want) {
			t.Errorf("%s %s: %v, want -32602 %q", c.topic, c.params, err, c.want)
		}
	}
}
