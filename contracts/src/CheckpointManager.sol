// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Checkpoint} from "./SidechainTypes.sol";
import {StakeManager} from "./StakeManager.sol";

/// @title CheckpointManager
/// @notice The sidechain's history on the main chain (claims 11, 13): a chain of checkpoints,
/// each covering the next range of sidechain blocks, accepted only with the signatures of
/// validators holding at least two thirds of StakeManager's total stake. Ranges are
/// contiguous: each starts right after the previous one ends (no gap, no overlap), the first
/// at FIRST_BLOCK. Anyone may submit (the validators' aggregator does). Each checkpoint carries
/// ChildGateway's withdrawal root, against which RootGateway pays exits.
contract CheckpointManager {
    error CheckpointGap(uint256 expectedStart, uint256 startBlock);
    error CheckpointOverlap(uint256 expectedStart, uint256 startBlock);
    error InvalidRange(uint256 startBlock, uint256 endBlock);
    error UnknownCheckpoint(uint256 number);

    /// `digest` is the EIP-712 digest the validators signed; `signedStake` the stake behind it.
    event CheckpointSubmitted(
        uint256 indexed number,
        uint256 startBlock,
        uint256 endBlock,
        bytes32 blockRoot,
        bytes32 withdrawalRoot,
        bytes32 digest,
        uint256 signedStake
    );

    /// @notice A stored checkpoint and the main-chain time it was accepted.
    struct Stored {
        uint64 startBlock;
        uint64 endBlock;
        uint64 submittedAt;
        bytes32 blockRoot;
        bytes32 withdrawalRoot;
    }

    StakeManager public immutable STAKE;
    /// @notice The sidechain block the first checkpoint starts at.
    uint256 public immutable FIRST_BLOCK;

    /// @notice The block the next checkpoint must start at.
    uint256 public nextStartBlock;
    Stored[] internal _checkpoints;

    constructor(StakeManager stake, uint256 firstBlock) {
        STAKE = stake;
        FIRST_BLOCK = firstBlock;
        nextStartBlock = firstBlock;
    }

    /// @notice Accepts checkpoint `cp`, signed by validators holding ≥ 2/3 of the stake, in
    /// ascending order of signer, and has StakeManager pay its signers their reward; returns
    /// its number (from 0).
    /// @dev Reverts with CheckpointGap, CheckpointOverlap, InvalidRange, or StakeManager's
    /// NotValidator, DuplicateSigner, SignersNotSorted, NotEnoughStake.
    function submit(Checkpoint calldata cp, bytes[] calldata signatures) external returns (uint256 number) {
        uint256 expected = nextStartBlock;
        if (cp.startBlock > expected) revert CheckpointGap(expected, cp.startBlock);
        if (cp.startBlock < expected) revert CheckpointOverlap(expected, cp.startBlock);
        if (cp.endBlock < cp.startBlock || cp.endBlock >= type(uint64).max) revert InvalidRange(cp.startBlock, cp.endBlock);
        bytes32 digest = STAKE.checkpointDigest(cp);
        uint256 signed = STAKE.checkpointQuorum(digest, signatures);
        number = _checkpoints.length;
        _checkpoints.push(
            Stored({
                startBlock: uint64(cp.startBlock),
                endBlock: uint64(cp.endBlock),
                submittedAt: uint64(block.timestamp),
                blockRoot: cp.blockRoot,
                withdrawalRoot: cp.withdrawalRoot
            })
        );
        nextStartBlock = cp.endBlock + 1;
        emit CheckpointSubmitted(number, cp.startBlock, cp.endBlock, cp.blockRoot, cp.withdrawalRoot, digest, signed);
    }

    /// @notice How many checkpoints there are.
    function count() external view returns (uint256) {
        return _checkpoints.length;
    }

    /// @notice Checkpoint `number`.
    /// @dev Reverts with UnknownCheckpoint.
    function checkpoint(uint256 number) external view returns (Stored memory) {
        if (number >= _checkpoints.length) revert UnknownCheckpoint(number);
        return _checkpoints[number];
    }

    /// @notice The withdrawal root checkpoint `number` carries.
    /// @dev Reverts with UnknownCheckpoint.
    function withdrawalRoot(uint256 number) external view returns (bytes32) {
        if (number >= _checkpoints.length) revert UnknownCheckpoint(number);
        return _checkpoints[number].withdrawalRoot;
    }
}
