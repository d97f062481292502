package permit

import (
	"context"
	"testing"

	"github.com/stagepass/stagepass/contracts/devchain"
)

// TestRead reads TestUSD on a simulated chain: its EIP-712 domain, symbol, decimals, and an
// owner's nonce and balance (which moves when the owner is paid).
func TestRead(t *testing.T) {
	c, err := devchain.New(devchain.Options{Accounts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fan := c.Accounts[1]
	before, err := Read(context.Background(), c.Client, c.USD, fan.Address)
	if err != nil {
		t.Fatal(err)
	}
	c.FundUSD(c.Accounts[0].Address, devchain.USDC(12), fan)
	info, err := Read(context.Background(), c.Client, c.USD, fan.Address)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "Test USD" || info.Version != "1" || info.Decimals != 6 || info.Nonce != "0" ||
		info.Balance != c.USDBalance(fan.Address).String() || info.Balance == before.Balance {
		t.Fatalf("permit info %+v (before %+v)", info, before)
	}
}
