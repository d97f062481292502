package wallet

import (
	"context"
	"strings"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/relayclient"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// The wallet's accounts as the fan app manages them: names the user gives them, removing an
// imported one, and which accounts' ticket feeds the wallet keeps (only those the page
// shows).

var accountMethods = []string{"renameAccount", "removeAccount", "followAccounts"}

func init() {
	Methods = append(Methods, accountMethods...)
	codes = append(codes, []struct {
		err  error
		code string
	}{{vault.ErrInvalidName, "INVALID_NAME"}, {vault.ErrNotImported, "NOT_IMPORTED"}}...)
}

// accountsView is what `accounts` answers: the HD accounts then the imported ones, which
// of them are imported, and the names given to them ({} when none).
type accountsView struct {
	accountsResult
	Imported []ethcrypto.Address          `json:"imported"`
	Names    map[ethcrypto.Address]string `json:"names"`
}

func (s *Service) accountsView(ctx context.Context) (any, error) {
	a, err := s.Vault.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	imp, err := s.Vault.ImportedAccounts(ctx)
	if err != nil {
		return nil, err
	}
	if imp == nil {
		imp = []ethcrypto.Address{}
	}
	names, err := s.Vault.Names(ctx)
	if names == nil {
		names = map[ethcrypto.Address]string{}
	}
	return accountsView{accountsResult{a, s.Vault.Unlocked()}, imp, names}, err
}

func (s *Service) callAccounts(ctx context.Context, method string, params []byte) (any, error) {
	var p struct {
		Account  ethcrypto.Address   `json:"account"`
		Name     string              `json:"name"`
		Password string              `json:"password"`
		Accounts []ethcrypto.Address `json:"accounts"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	switch method {
	case "renameAccount":
		if _, err := s.Vault.RenameAccount(ctx, p.Account, p.Name); err != nil {
			return nil, err
		}
		return s.accountsView(ctx)
	case "removeAccount":
		if err := s.Vault.RemoveAccount(ctx, p.Account, p.Password); err != nil {
			return nil, err
		}
		// Nothing of it stays behind: requests awaiting approval, its ticket and bridge feeds, its cached
		// ticket list (public data, but the fan asked the wallet to forget the account).
		s.mu.Lock()
		for id, e := range s.pending {
			if e.account == p.Account {
				delete(s.pending, id)
			}
		}
		s.mu.Unlock()
		key := strings.ToLower(p.Account.Hex())
		s.on.mu.Lock()
		tr, bridge := s.on.trackers[key], s.on.bridges[key]
		delete(s.on.trackers, key)
		delete(s.on.bridges, key)
		s.on.mu.Unlock()
		if tr != nil {
			tr.Stop()
		}
		if bridge != nil {
			bridge()
		}
		s.cache().Save(ctx, tickets.CacheKey(key), nil)
		return s.accountsView(ctx)
	case "followAccounts":
		return s.followOnly(ctx, p.Accounts)
	}
	return nil, ErrUnknownMethod
}

// followOnly keeps a ticket feed and a bridge feed (bridgefeed.go) for each of accounts (starting those not yet followed)
// and stops every other, waiting for the relay to drop them, so a feed started after this
// returns can never run beside an old one for the same account.
func (s *Service) followOnly(ctx context.Context, accounts []ethcrypto.Address) (any, error) {
	c, err := s.relay()
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	following := []string{} // as given, once each
	for _, a := range accounts {
		if key := strings.ToLower(a.Hex()); !keep[key] {
			keep[key] = true
			following = append(following, key)
		}
	}
	var stop []*tickets.Tracker
	s.on.mu.Lock()
	for key, tr := range s.on.trackers {
		if !keep[key] {
			stop = append(stop, tr)
			delete(s.on.trackers, key)
		}
	}
	s.on.mu.Unlock()
	for _, tr := range stop {
		tr.Stop()
	}
	s.stopBridges(keep)
	for _, key := range following {
		s.track(ctx, c, key)
		s.followBridge(c, key)
	}
	return map[string]any{"following": following}, nil
}

// track returns the one tracker of owner key (lower-case address), starting it if the
// wallet does not follow that account yet.
func (s *Service) track(ctx context.Context, c *relayclient.Client, key string) *tickets.Tracker {
	s.on.mu.Lock()
	defer s.on.mu.Unlock()
	tr := s.on.trackers[key]
	if tr == nil {
		tr = tickets.Open(ctx, c, s.cache(), key, func() { s.notifyTickets(key) })
		s.on.trackers[key] = tr
		tr.Start()
	}
	return tr
}
