package main

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/ethclient"
)

// dialChain connects to the EVM JSON-RPC endpoint `url` (given as `flagName`) and reads its
// chain id, which also checks that something answers there.
func dialChain(ctx context.Context, flagName, url string) (*ethclient.Client, *big.Int, error) {
	client, err := ethclient.DialContext(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: connect to %s: %w", flagName, url, err)
	}
	id, err := client.ChainID(ctx)
	if err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("%s: chain id from %s: %w", flagName, url, err)
	}
	return client, id, nil
}
