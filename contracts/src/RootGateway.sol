// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {CheckpointManager} from "./CheckpointManager.sol";
import {Withdrawal, WITHDRAW_TOKEN, WITHDRAW_TICKET, withdrawalLeaf} from "./SidechainTypes.sol";

/// @title TicketMirror
/// @notice Main-chain mirrors of sidechain tickets that exited after their event was over
/// (souvenirs when checked in). Token id = `uint160(event) << 96 | sidechain token id`, so
/// each sidechain ticket has one mirror id; the sidechain token id is `tier << 32 | serial`.
/// Only RootGateway mints.
contract TicketMirror is ERC721 {
    error NotGateway(address caller);

    /// @notice The RootGateway that deployed this mirror, the only minter.
    address public immutable GATEWAY;
    /// @notice Whether the ticket had been checked in when it exited.
    mapping(uint256 => bool) public checkedIn;

    constructor() ERC721("Stagepass Ticket Mirror", "SPTM") {
        GATEWAY = msg.sender;
    }

    /// @notice Mints the mirror of ticket `tokenId` of sidechain event `ticketEvent` to `to`.
    function mint(address to, address ticketEvent, uint256 tokenId, bool wasCheckedIn) external returns (uint256 id) {
        if (msg.sender != GATEWAY) revert NotGateway(msg.sender);
        id = mirrorId(ticketEvent, tokenId);
        if (wasCheckedIn) checkedIn[id] = true;
        _mint(to, id);
    }

    /// @notice The mirror token id of ticket `tokenId` of event `ticketEvent`.
    function mirrorId(address ticketEvent, uint256 tokenId) public pure returns (uint256) {
        return (uint256(uint160(ticketEvent)) << 96) | uint96(tokenId);
    }

    /// @notice What a mirror keeps of its ticket: the sidechain event, token id, tier and
    /// whether it was checked in.
    /// @dev Reverts with ERC721NonexistentToken.
    function souvenir(uint256 id)
        external
        view
        returns (address ticketEvent, uint256 tokenId, uint256 tier, bool wasCheckedIn)
    {
        _requireOwned(id);
        tokenId = uint96(id);
        return (address(uint160(id >> 96)), tokenId, tokenId >> 32, checkedIn[id]);
    }
}

/// @title RootGateway
/// @notice The main-chain end of the transfer gateway (claim 9). Deposits lock the main
/// chain's stablecoin here and emit `Deposited` with a sequential deposit id; validators
/// attest it to ChildGateway, which mints it on the sidechain once per id. Exits pay what
/// ChildGateway queued for withdrawal — stablecoin back from the locked deposits, or a
/// ticket's mirror on TicketMirror — once each, against a Merkle proof of the withdrawal's
/// leaf in the withdrawal root of a checkpoint CheckpointManager accepted.
contract RootGateway is ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using BitMaps for BitMaps.BitMap;

    error ZeroDeposit();
    error InvalidRecipient(address recipient);
    error InvalidProof(uint256 checkpoint, uint256 index);
    error AlreadyExited(uint256 index);
    error UnknownWithdrawalKind(uint8 kind);
    error PermitNotUsable(address owner, uint256 allowance, uint256 amount);

    event Deposited(uint256 indexed depositId, address indexed from, address indexed recipient, uint256 amount);
    event Exited(uint256 indexed index, uint8 kind, address indexed recipient, address asset, uint256 value, uint256 checkpoint);

    /// @notice The stablecoin bridged.
    IERC20 public immutable TOKEN;
    CheckpointManager public immutable CHECKPOINTS;
    /// @notice Where exited tickets are mirrored (deployed by this gateway).
    TicketMirror public immutable MIRROR;

    /// @notice Deposits so far; the next deposit's id.
    uint256 public depositCount;
    BitMaps.BitMap internal _exited;

    constructor(IERC20 token, CheckpointManager checkpoints) {
        TOKEN = token;
        CHECKPOINTS = checkpoints;
        MIRROR = new TicketMirror();
    }

    /// @notice Locks `amount` of the stablecoin (approved first) for `recipient` on the
    /// sidechain; returns the deposit id. The amount credited is what this gateway received.
    /// @dev Reverts with ZeroDeposit or InvalidRecipient.
    function deposit(address recipient, uint256 amount) external nonReentrant returns (uint256 depositId) {
        if (recipient == address(0)) revert InvalidRecipient(recipient);
        uint256 before = TOKEN.balanceOf(address(this));
        TOKEN.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = TOKEN.balanceOf(address(this)) - before;
        if (received == 0) revert ZeroDeposit();
        depositId = depositCount++;
        emit Deposited(depositId, msg.sender, recipient, received);
    }

    /// @notice Locks `amount` of `owner`'s stablecoin, authorized by `owner`'s EIP-2612
    /// permit for this gateway (value `amount`, `deadline`, signature `v`, `r`, `s`), for
    /// `owner` itself on the sidechain; returns the deposit id. Anyone may submit (the relay
    /// does, paying the main-chain gas), so a fan needs no main-chain coin to deposit.
    /// @dev The recipient is `owner`, never an argument: the permit signs only the owner,
    /// this gateway, the amount and the deadline, not a recipient, so a submitter free to
    /// name one could redirect the deposit to itself. A fan's key is the same on both
    /// chains, hence so is its address. A permit used first by someone else (front-run,
    /// see OpenZeppelin's ERC20Permit notes) does not make this fail while the allowance
    /// it granted is still there; otherwise reverts with PermitNotUsable. Hence an allowance
    /// the owner gave this gateway otherwise (approve) may be deposited this way by anyone,
    /// which is harmless only because it can go nowhere but to the owner's own address. Also
    /// reverts with InvalidRecipient (owner zero) or ZeroDeposit.
    function depositWithPermit(address owner, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
        returns (uint256 depositId)
    {
        if (owner == address(0)) revert InvalidRecipient(owner);
        if (amount == 0) revert ZeroDeposit();
        try IERC20Permit(address(TOKEN)).permit(owner, address(this), amount, deadline, v, r, s) {} catch {}
        uint256 allowed = TOKEN.allowance(owner, address(this));
        if (allowed < amount) revert PermitNotUsable(owner, allowed, amount);
        uint256 before = TOKEN.balanceOf(address(this));
        TOKEN.safeTransferFrom(owner, address(this), amount);
        uint256 received = TOKEN.balanceOf(address(this)) - before;
        if (received == 0) revert ZeroDeposit();
        depositId = depositCount++;
        emit Deposited(depositId, owner, owner, received);
    }

    /// @notice Pays withdrawal `w` — stablecoin or a ticket mirror to `w.recipient` — given
    /// `proof` that its leaf is in the withdrawal root of checkpoint `checkpoint`. Anyone may
    /// submit; each withdrawal index pays once.
    /// @dev Reverts with CheckpointManager's UnknownCheckpoint, InvalidProof, AlreadyExited or
    /// UnknownWithdrawalKind.
    function exit(uint256 checkpoint, Withdrawal calldata w, bytes32[] calldata proof) external nonReentrant {
        bytes32 root = CHECKPOINTS.withdrawalRoot(checkpoint);
        if (!MerkleProof.verifyCalldata(proof, root, withdrawalLeaf(w))) revert InvalidProof(checkpoint, w.index);
        if (_exited.get(w.index)) revert AlreadyExited(w.index);
        _exited.set(w.index);
        emit Exited(w.index, w.kind, w.recipient, w.asset, w.value, checkpoint);
        if (w.kind == WITHDRAW_TOKEN) {
            TOKEN.safeTransfer(w.recipient, w.value);
        } else if (w.kind == WITHDRAW_TICKET) {
            MIRROR.mint(w.recipient, w.asset, w.value, w.data != 0);
        } else {
            revert UnknownWithdrawalKind(w.kind);
        }
    }

    /// @notice Whether withdrawal `index` has been paid.
    function exited(uint256 index) external view returns (bool) {
        return _exited.get(index);
    }
}
