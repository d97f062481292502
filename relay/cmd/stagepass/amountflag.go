package main

import (
	"flag"
	"fmt"
	"math/big"
	"strings"

	"github.com/stagepass/stagepass/relay/server"
)

// wholeTokens is a flag of a token amount in whole units ("1", "0.5"), kept exact: the relay
// scales it by the token's decimals once it has read them from the chain.
type wholeTokens struct{ r *big.Rat }

func (w *wholeTokens) String() string {
	if w == nil || w.r == nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimRight(w.r.FloatString(18), "0"), ".")
}

func (w *wholeTokens) Set(s string) error {
	s = strings.TrimSpace(s)
	r, ok := new(big.Rat).SetString(s)
	if !ok || strings.ContainsAny(s, "/eE") || r.Sign() < 0 {
		return fmt.Errorf("want an amount of whole tokens such as 1 or 0.5, got %q", s)
	}
	w.r = r
	return nil
}

// minGaslessDepositFlag adds --min-gasless-deposit to fs, 1 whole token by default.
func minGaslessDepositFlag(fs *flag.FlagSet, when string) *wholeTokens {
	w := &wholeTokens{r: new(big.Rat).Set(server.DefaultMinGaslessDeposit)}
	fs.Var(w, "min-gasless-deposit", when+"the least deposit the relay sends for a fan with their permit (sp_depositWithPermit), in whole units of the main chain's stablecoin; "+
		"it pays about 69,000 main-chain gas for each whatever the amount (0: no minimum; smaller deposits stay open to RootGateway.deposit with the owner's own gas)")
	return w
}
