package wallet

import (
	"encoding/json"
	"errors"

	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
)

// The bridge's stages pushed to the page: for each account the page shows
// (followAccounts), the wallet follows the relay's "bridge" topic and notifies the page
// ("bridge") with each push as the relay sends it (protocol.BridgeUpdate: the account's
// whole state first, again after each reconnect, then what changed). A relay without the
// topic (the Workers build, or no main chain) refuses it: the page is told once per
// (re)subscription ({"account", "refused": the relay's message}) and polls instead.

// bridgeRefused is the "bridge" notification of a relay that refused the topic.
type bridgeRefused struct {
	Account string `json:"account"`
	Refused string `json:"refused"`
}

// followBridge starts the bridge feed of account key (lower-case address) unless it runs.
func (s *Service) followBridge(c *relayclient.Client, key string) {
	s.on.mu.Lock()
	defer s.on.mu.Unlock()
	if s.on.bridges == nil {
		s.on.bridges = map[string]func(){}
	}
	if s.on.bridges[key] != nil {
		return
	}
	s.on.bridges[key] = c.Subscribe(&relayclient.Subscription{
		Topic:  protocol.TopicBridge,
		Params: func() any { return map[string]any{"account": key} },
		OnPush: func(raw json.RawMessage) { s.notify("bridge", raw) },
		OnError: func(err error) {
			var re *relayclient.RPCError
			if errors.As(err, &re) {
				s.notify("bridge", bridgeRefused{Account: key, Refused: re.Message})
			}
		},
	})
}

// stopBridges ends the bridge feeds of the accounts not in keep (nil: all), waiting for
// the relay to drop them.
func (s *Service) stopBridges(keep map[string]bool) {
	var stop []func()
	s.on.mu.Lock()
	for key, cancel := range s.on.bridges {
		if !keep[key] {
			stop = append(stop, cancel)
			delete(s.on.bridges, key)
		}
	}
	s.on.mu.Unlock()
	for _, cancel := range stop {
		cancel()
	}
}
