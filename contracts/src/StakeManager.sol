// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Checkpoint} from "./SidechainTypes.sol";

/// @title StakeManager
/// @notice The sidechain's validators on the main chain (claims 11, 13): each stakes the main
/// chain's stablecoin to join; its signing power is its stake. A validator leaves in two
/// steps: `leave` starts the unbonding delay, during which it keeps its power and can still
/// be slashed; after the delay anyone may `unbond` it, which removes its power and pays its
/// stake back. Evidence that a validator signed two different checkpoints for the same block
/// range slashes its whole stake: SLASH_REPORTER_BPS of it pays whoever submitted the
/// evidence, and the rest stays locked here for good.
///
/// Checkpoints are signed under this contract's EIP-712 domain ("Stagepass Validators", "1",
/// main chain id, this address); `checkpointQuorum` checks that signatures cover at least
/// two thirds of the total stake, signers ascending (so no one counts twice).
///
/// Rewards: anyone funds a reward pool in the stablecoin (`fundRewards`). Each checkpoint
/// the CheckpointManager accepts pays 1/REWARD_DIVISOR of the pool to the validators that
/// signed it, each in proportion to its stake out of the total stake: the share of those
/// who did not sign stays in the pool, so signing is what earns. A validator claims its
/// rewards at any time (`claimRewards`), and `unbond` pays them with the stake; slashing
/// returns them to the pool.
contract StakeManager is EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    // ---------------------------------------------------------------- errors

    error StakeTooLow(uint256 amount, uint256 minimum);
    error AlreadyValidator(address validator);
    error NotValidator(address account);
    error TooManyValidators(uint256 max);
    error AlreadyLeaving(address validator, uint64 unbondsAt);
    error NotLeaving(address validator);
    error StillBonded(address validator, uint64 unbondsAt);
    error NotEnoughStake(uint256 signed, uint256 total);
    error DuplicateSigner(address signer);
    error SignersNotSorted(address previous, address next);
    error NotEquivocation();
    error NotDeployer(address caller);
    error CheckpointsAlreadySet(address checkpoints);
    error NotCheckpoints(address caller);
    error NothingToClaim(address validator);

    // ---------------------------------------------------------------- events

    event Joined(address indexed validator, uint256 stake);
    event Leaving(address indexed validator, uint64 unbondsAt);
    event Unbonded(address indexed validator, uint256 stake);
    /// `stake` was taken; `reward` of it paid `reporter`, the rest locked.
    event Slashed(address indexed validator, uint256 stake, address indexed reporter, uint256 reward);
    event CheckpointsSet(address checkpoints);
    event RewardsFunded(address indexed from, uint256 amount);
    /// `paid` went from the pool to the signers of the checkpoint with EIP-712 digest `digest`.
    event CheckpointRewarded(bytes32 indexed digest, uint256 paid);
    event RewardsClaimed(address indexed validator, uint256 amount);

    // ---------------------------------------------------------------- state

    /// @notice A validator: its stake (its signing power), when its unbonding ends (0 while
    /// not leaving), its position in the list plus one, and its unclaimed rewards. One
    /// storage word: `checkpointQuorum` reads it for the stake, so crediting a signer's reward in the
    /// same loop is one warm write.
    struct Validator {
        uint96 stake;
        uint64 unbondsAt;
        uint8 slot;
        uint88 reward;
    }

    uint256 public constant MAX_VALIDATORS = 100;
    /// @notice The share of a slashed stake, in basis points, paid to the reporter of the
    /// evidence (so that watching for equivocation pays for its gas).
    uint256 public constant SLASH_REPORTER_BPS = 1000;
    /// @notice Each accepted checkpoint pays its signers at most 1/REWARD_DIVISOR of the pool.
    uint256 public constant REWARD_DIVISOR = 1000;

    bytes32 internal constant CHECKPOINT_TYPEHASH =
        keccak256("Checkpoint(uint256 startBlock,uint256 endBlock,bytes32 blockRoot,bytes32 withdrawalRoot)");

    /// @notice The token staked: the main chain's stablecoin.
    IERC20 public immutable TOKEN;
    /// @notice The least stake a validator joins with.
    uint256 public immutable MIN_STAKE;
    /// @notice Seconds between `leave` and `unbond`.
    uint64 public immutable UNBONDING_DELAY;

    /// @notice The sum of every validator's stake: the whole signing power.
    uint256 public totalStake;
    /// @notice Stake taken by slashing, locked here for good.
    uint256 public slashedStake;
    /// @notice The reward pool: funded, not yet paid to a checkpoint's signers.
    uint256 public rewardPool;
    /// @notice The CheckpointManager whose accepted checkpoints pay rewards (set once).
    address public checkpoints;
    mapping(address => Validator) public validators;
    address[] internal _list;
    address private immutable _deployer;

    constructor(IERC20 token, uint256 minStake, uint64 unbondingDelay) EIP712("Stagepass Validators", "1") {
        TOKEN = token;
        MIN_STAKE = minStake;
        UNBONDING_DELAY = unbondingDelay;
        _deployer = msg.sender;
    }

    /// @notice Names the CheckpointManager whose checkpoints pay rewards; once, by the
    /// deployer (the CheckpointManager is deployed with this contract's address).
    /// @dev Reverts with NotDeployer or CheckpointsAlreadySet.
    function setCheckpoints(address checkpoints_) external {
        if (msg.sender != _deployer) revert NotDeployer(msg.sender);
        if (checkpoints != address(0)) revert CheckpointsAlreadySet(checkpoints);
        checkpoints = checkpoints_;
        emit CheckpointsSet(checkpoints_);
    }

    // ---------------------------------------------------------------- membership

    /// @notice Joins the validator set with `amount` of the stablecoin (approved first).
    /// @dev Reverts with StakeTooLow, AlreadyValidator or TooManyValidators. The stake counted
    /// is what this contract received.
    function join(uint256 amount) external nonReentrant {
        if (amount < MIN_STAKE || amount > type(uint96).max) revert StakeTooLow(amount, MIN_STAKE);
        if (validators[msg.sender].stake != 0) revert AlreadyValidator(msg.sender);
        if (_list.length >= MAX_VALIDATORS) revert TooManyValidators(MAX_VALIDATORS);
        uint256 before = TOKEN.balanceOf(address(this));
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = TOKEN.balanceOf(address(this)) - before;
        if (received < MIN_STAKE) revert StakeTooLow(received, MIN_STAKE);
        _list.push(msg.sender);
        validators[msg.sender] = Validator({stake: uint96(received), unbondsAt: 0, slot: uint8(_list.length), reward: 0});
        totalStake += received;
        emit Joined(msg.sender, received);
    }

    /// @notice Starts leaving: after UNBONDING_DELAY the caller can be unbonded. Until then it
    /// keeps its signing power and can be slashed.
    /// @dev Reverts with NotValidator or AlreadyLeaving.
    function leave() external {
        Validator storage v = validators[msg.sender];
        if (v.stake == 0) revert NotValidator(msg.sender);
        if (v.unbondsAt != 0) revert AlreadyLeaving(msg.sender, v.unbondsAt);
        uint64 at = uint64(block.timestamp) + UNBONDING_DELAY;
        v.unbondsAt = at;
        emit Leaving(msg.sender, at);
    }

    /// @notice Ends `validator`'s unbonding: its power goes and its stake, with its unclaimed
    /// rewards, is paid back to it. Anyone may call once the delay is over.
    /// @dev Reverts with NotValidator, NotLeaving or StillBonded.
    function unbond(address validator) external nonReentrant {
        Validator memory v = validators[validator];
        if (v.stake == 0) revert NotValidator(validator);
        if (v.unbondsAt == 0) revert NotLeaving(validator);
        if (block.timestamp < v.unbondsAt) revert StillBonded(validator, v.unbondsAt);
        _remove(validator, v);
        emit Unbonded(validator, v.stake);
        if (v.reward != 0) emit RewardsClaimed(validator, v.reward);
        TOKEN.safeTransfer(validator, uint256(v.stake) + v.reward);
    }

    /// @notice Slashes the validator that signed both `a` and `b`: two checkpoints for the
    /// same block range with different roots. Its whole stake is taken and it leaves the set;
    /// SLASH_REPORTER_BPS of the stake pays the caller, the rest stays locked here.
    /// @dev Anyone may submit. Reverts with NotEquivocation (different ranges or the same
    /// roots, or two different signers) or NotValidator (already gone or slashed).
    function slash(Checkpoint calldata a, bytes calldata sigA, Checkpoint calldata b, bytes calldata sigB)
        external
        nonReentrant
    {
        if (
            a.startBlock != b.startBlock || a.endBlock != b.endBlock
                || (a.blockRoot == b.blockRoot && a.withdrawalRoot == b.withdrawalRoot)
        ) revert NotEquivocation();
        address signer = ECDSA.recoverCalldata(checkpointDigest(a), sigA);
        if (ECDSA.recoverCalldata(checkpointDigest(b), sigB) != signer) revert NotEquivocation();
        Validator memory v = validators[signer];
        if (v.stake == 0) revert NotValidator(signer);
        uint256 reward = uint256(v.stake) * SLASH_REPORTER_BPS / 10_000;
        _remove(signer, v);
        slashedStake += v.stake - reward;
        rewardPool += v.reward;
        emit Slashed(signer, v.stake, msg.sender, reward);
        TOKEN.safeTransfer(msg.sender, reward);
    }

    // ---------------------------------------------------------------- rewards

    /// @notice Adds `amount` of the stablecoin (approved first) to the reward pool.
    /// @dev The amount counted is what this contract received.
    function fundRewards(uint256 amount) external nonReentrant {
        uint256 before = TOKEN.balanceOf(address(this));
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = TOKEN.balanceOf(address(this)) - before;
        rewardPool += received;
        emit RewardsFunded(msg.sender, received);
    }

    /// @notice Pays the caller its unclaimed rewards.
    /// @dev Reverts with NothingToClaim.
    function claimRewards() external nonReentrant {
        Validator storage v = validators[msg.sender];
        uint256 amount = v.reward;
        if (amount == 0) revert NothingToClaim(msg.sender);
        v.reward = 0;
        emit RewardsClaimed(msg.sender, amount);
        TOKEN.safeTransfer(msg.sender, amount);
    }

    /// @notice Checks that `signatures` over `digest`, in ascending order of signer, come from
    /// validators holding at least two thirds of the total stake, and returns the stake that
    /// signed; for the CheckpointManager accepting that checkpoint, so it also pays the
    /// signers: each gets pool / REWARD_DIVISOR × its stake / the total stake.
    /// @dev CheckpointManager only. Reverts with NotCheckpoints, NotValidator,
    /// DuplicateSigner, SignersNotSorted or NotEnoughStake. A reward that
    /// would not fit a validator's balance is left in the pool, never a reason to refuse.
    function checkpointQuorum(bytes32 digest, bytes[] calldata signatures) external returns (uint256 signed) {
        if (msg.sender != checkpoints) revert NotCheckpoints(msg.sender);
        uint256 total = totalStake;
        uint256 payout = rewardPool / REWARD_DIVISOR;
        uint256 paid;
        address prev;
        for (uint256 i; i < signatures.length; ++i) {
            address signer = ECDSA.recoverCalldata(digest, signatures[i]);
            if (signer == prev) revert DuplicateSigner(signer);
            if (signer < prev) revert SignersNotSorted(prev, signer);
            Validator storage v = validators[signer];
            uint256 power = v.stake;
            if (power == 0) revert NotValidator(signer);
            signed += power;
            prev = signer;
            if (payout != 0) {
                uint256 share = payout * power / total;
                uint256 next = v.reward + share;
                if (next <= type(uint88).max) {
                    v.reward = uint88(next);
                    paid += share;
                }
            }
        }
        if (total == 0 || signed * 3 < total * 2) revert NotEnoughStake(signed, total);
        if (paid != 0) {
            rewardPool -= paid;
            emit CheckpointRewarded(digest, paid);
        }
    }

    // ---------------------------------------------------------------- signatures

    /// @notice The EIP-712 digest of checkpoint `cp`: what each validator signs.
    function checkpointDigest(Checkpoint calldata cp) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(CHECKPOINT_TYPEHASH, cp.startBlock, cp.endBlock, cp.blockRoot, cp.withdrawalRoot))
        );
    }

    // ---------------------------------------------------------------- views

    /// @notice The validators (in joining order, with swaps on removal) and their stakes:
    /// what ChildGateway's validator set mirrors.
    function validatorSet() external view returns (address[] memory members, uint256[] memory stakes) {
        members = _list;
        stakes = new uint256[](members.length);
        for (uint256 i; i < members.length; ++i) stakes[i] = validators[members[i]].stake;
    }

    // ---------------------------------------------------------------- internals

    function _remove(address validator, Validator memory v) internal {
        uint256 i = v.slot - 1;
        address last = _list[_list.length - 1];
        _list[i] = last;
        validators[last].slot = uint8(i + 1);
        _list.pop();
        delete validators[validator];
        totalStake -= v.stake;
    }
}
