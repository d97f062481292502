// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice A checkpoint of the sidechain: blocks `startBlock`..`endBlock` (inclusive), the
/// Merkle root over their block hashes, and ChildGateway's withdrawal root as of `endBlock`.
/// Validators sign it (EIP-712, StakeManager's domain) as
/// `Checkpoint(uint256 startBlock,uint256 endBlock,bytes32 blockRoot,bytes32 withdrawalRoot)`.
struct Checkpoint {
    uint256 startBlock;
    uint256 endBlock;
    bytes32 blockRoot;
    bytes32 withdrawalRoot;
}

/// @notice One leaf of ChildGateway's withdrawal tree, exited on the main chain by RootGateway.
/// kind WITHDRAW_TOKEN: `value` bridged stablecoin units to `recipient` (asset 0, data 0).
/// kind WITHDRAW_TICKET: the ticket `value` (token id) of event `asset`, `data` 1 if it was
/// checked in, mirrored to `recipient`. `index` is the leaf's position in the tree.
struct Withdrawal {
    uint8 kind;
    uint256 index;
    address recipient;
    address asset;
    uint256 value;
    uint256 data;
}

uint8 constant WITHDRAW_TOKEN = 1;
uint8 constant WITHDRAW_TICKET = 2;
// Depth of the withdrawal tree: 2^32 withdrawals.
uint8 constant WITHDRAWAL_TREE_DEPTH = 32;

/// @notice The withdrawal tree's leaf: double-hashed ABI encoding, as OpenZeppelin's
/// StandardMerkleTree builds leaves, so a leaf can never be read as an inner node:
/// `keccak256(bytes.concat(keccak256(abi.encode(kind, index, recipient, asset, value, data))))`.
function withdrawalLeaf(Withdrawal memory w) pure returns (bytes32) {
    return keccak256(bytes.concat(keccak256(abi.encode(w.kind, w.index, w.recipient, w.asset, w.value, w.data))));
}
