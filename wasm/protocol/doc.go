// Package protocol holds the formats that cross the wallet/relay boundary:
// the ERC-2771 forward request and its EIP-712 domain, and the door pass.
// Both the wasm wallet and the relay import it, so nothing is defined twice;
// it must stay free of syscall/js.
package protocol
