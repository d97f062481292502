package devchain

import (
	"math/big"
	"testing"
)

func TestSmokeBuy(t *testing.T) {
	c, err := New(Options{Accounts: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	issuer, artist, venue, fan := c.Accounts[0], c.Accounts[1], c.Accounts[2], c.Accounts[3]
	ev, err := c.CreateEvent(issuer, c.DefaultConfig(issuer.Address, artist.Address, venue.Address))
	if err != nil {
		t.Fatal(err)
	}
	c.FundUSD(ev, USDC(1000), fan)
	r, err := c.Transact(fan, ev, Ticket.PackBuy(big.NewInt(0), big.NewInt(1), USDC(50)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("buy gas %d", r.GasUsed)
	if got := c.USDBalance(artist.Address); got.Cmp(USDC(10)) != 0 {
		t.Fatalf("artist got %s", got)
	}
}
