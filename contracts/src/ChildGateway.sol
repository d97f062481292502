// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {BitMaps} from "@openzeppelin/contracts/utils/structs/BitMaps.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {EventFactory} from "./EventFactory.sol";
import {EventTicket} from "./EventTicket.sol";
import {Withdrawal, WITHDRAW_TOKEN, WITHDRAW_TICKET, WITHDRAWAL_TREE_DEPTH, withdrawalLeaf} from "./SidechainTypes.sol";

/// @title ChildToken
/// @notice The main chain's stablecoin bridged to the sidechain: 6 decimals, EIP-2612 permit
/// (so ticket events take it like any stablecoin); only its ChildGateway mints and burns.
contract ChildToken is ERC20, ERC20Permit {
    error NotGateway(address caller);

    /// @notice The ChildGateway that deployed this token, the only minter and burner.
    address public immutable GATEWAY;

    constructor() ERC20("Stagepass Bridged USD", "spUSD") ERC20Permit("Stagepass Bridged USD") {
        GATEWAY = msg.sender;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        if (msg.sender != GATEWAY) revert NotGateway(msg.sender);
        _mint(to, amount);
    }

    function burn(address from, uint256 amount) external {
        if (msg.sender != GATEWAY) revert NotGateway(msg.sender);
        _burn(from, amount);
    }
}

/// @notice A deposit on RootGateway, as validators attest it to ChildGateway.
struct Deposit {
    uint256 depositId;
    address recipient;
    uint256 amount;
}

/// @title ChildGateway
/// @notice The sidechain end of the transfer gateway (claim 9).
///
/// Deposits: validators holding at least two thirds of the stake (as this gateway knows it)
/// sign `DepositBatch(Deposit[] deposits)` once each deposit has M main-chain confirmations;
/// anyone submits it (`mintDeposits`) and each deposit id mints ChildToken once, ever.
///
/// Withdrawals: `withdraw` burns ChildToken; `exitTicket` takes a ticket out once its event is
/// over. Each appends a leaf to the withdrawal tree, whose root (`withdrawalRoot`) the
/// validators put in the next checkpoint; RootGateway pays it against that checkpoint with
/// OpenZeppelin's MerkleProof. The tree is a depth-32 incremental Merkle tree kept as the
/// Ethereum deposit contract keeps its own (one stored node per level, one storage write per
/// leaf, the root computed when read), hashed with OpenZeppelin's commutativeKeccak256 and
/// empty leaves zero — the same tree OpenZeppelin's MerkleTree builds, whose push rewrites
/// a node on every level (about 300,000 gas per withdrawal at this depth, measured).
///
/// Validator set: the sidechain cannot read the main chain, so this gateway keeps its own
/// copy of StakeManager's set (addresses and stakes), starting from the one given at
/// deployment; a new copy is accepted only when signed by two thirds of the current copy's
/// power (`updateValidators`, with an epoch number against replay). Anyone can relay an
/// update; the gateway trusts no one but the validators' quorum, the same quorum whose
/// checkpoints the main chain accepts.
///
/// Tickets: a ticket is frozen on the sidechain once its event's resale closes (EventTicket
/// moves nothing after resaleClosesAt, nor a checked-in ticket ever), so it stays where it is
/// and this gateway records that it exited: one exit per ticket, by its holder, once the
/// event is over — EXIT_DELAY after the later of its start and its resale close.
///
/// Fans hold no sidechain gas: `withdraw` and `exitTicket` take their caller from the ERC-2771
/// forwarder the factory's events trust, so the relay pays for them like for any ticket action.
contract ChildGateway is EIP712, ERC2771Context {
    using BitMaps for BitMaps.BitMap;

    // ---------------------------------------------------------------- errors

    error InvalidValidatorSet(uint256 members, uint256 powers);
    error ValidatorsNotSorted(address previous, address next);
    error NotValidator(address signer);
    error DuplicateSigner(address signer);
    error SignersNotSorted(address previous, address next);
    error NotEnoughPower(uint256 signed, uint256 total);
    error EmptyBatch();
    error DepositAlreadyMinted(uint256 depositId);
    error ZeroAmount();
    error InvalidRecipient(address recipient);
    error NotGenuineEvent(address ticketEvent);
    error EventCancelled(address ticketEvent);
    error EventNotOver(address ticketEvent, uint256 overAt);
    error NotTicketHolder(address caller, address holder);
    error TicketAlreadyExited(address ticketEvent, uint256 tokenId);
    error WithdrawalTreeFull();

    // ---------------------------------------------------------------- events

    event ValidatorsUpdated(uint256 indexed epoch, address[] validators, uint256[] powers);
    event DepositMinted(uint256 indexed depositId, address indexed recipient, uint256 amount);
    /// A leaf appended to the withdrawal tree at `index`.
    event WithdrawalQueued(
        uint256 indexed index, uint8 kind, address indexed recipient, address asset, uint256 value, uint256 data, bytes32 leaf
    );

    // ---------------------------------------------------------------- state

    uint256 public constant MAX_VALIDATORS = 100;

    bytes32 internal constant DEPOSIT_TYPEHASH = keccak256("Deposit(uint256 depositId,address recipient,uint256 amount)");
    bytes32 internal constant BATCH_TYPEHASH =
        keccak256("DepositBatch(Deposit[] deposits)Deposit(uint256 depositId,address recipient,uint256 amount)");
    bytes32 internal constant SET_TYPEHASH =
        keccak256("ValidatorSet(address[] validators,uint256[] powers,uint256 epoch)");

    /// @notice The bridged stablecoin (deployed by this gateway).
    ChildToken public immutable TOKEN;
    /// @notice The EventFactory whose events' tickets may exit.
    EventFactory public immutable FACTORY;
    /// @notice Seconds after the later of an event's start and its resale close before its
    /// tickets may exit (room for late check-ins).
    uint64 public immutable EXIT_DELAY;

    /// @notice The current copy of the validator set; each update adds one.
    uint256 public epoch;
    uint256 public totalPower;
    address[] internal _validators;
    mapping(uint256 => mapping(address => uint256)) internal _power;

    BitMaps.BitMap internal _minted;
    /// @notice How many withdrawals have been queued (the next one's index).
    uint256 public withdrawalCount;
    /// The withdrawal tree's frontier: _branch[h] is the last complete left subtree of height h.
    bytes32[WITHDRAWAL_TREE_DEPTH] internal _branch;
    mapping(address => BitMaps.BitMap) internal _ticketExited;

    /// @param validators The first validator set, ascending (StakeManager's at deployment).
    /// @param powers Their stakes.
    constructor(address[] memory validators, uint256[] memory powers, EventFactory factory, uint64 exitDelay)
        EIP712("Stagepass ChildGateway", "1")
        ERC2771Context(factory.trustedForwarder())
    {
        TOKEN = new ChildToken();
        FACTORY = factory;
        EXIT_DELAY = exitDelay;
        _setValidators(validators, powers);
    }

    // ---------------------------------------------------------------- validators

    /// @notice Replaces the validator set with `validators` (ascending) and `powers`, on
    /// signatures by two thirds of the current set's power for the current epoch.
    /// @dev Anyone may submit. Reverts with the signature errors, InvalidValidatorSet or
    /// ValidatorsNotSorted.
    function updateValidators(address[] calldata validators, uint256[] calldata powers, bytes[] calldata signatures)
        external
    {
        _quorum(setDigest(validators, powers, epoch), signatures);
        ++epoch;
        _setValidators(validators, powers);
    }

    // ---------------------------------------------------------------- deposits

    /// @notice Mints each of `deposits` (RootGateway deposits the validators attest) to its
    /// recipient, once per deposit id, ever.
    /// @dev Anyone may submit. Reverts with EmptyBatch, DepositAlreadyMinted or the signature
    /// errors (NotValidator, DuplicateSigner, SignersNotSorted, NotEnoughPower).
    function mintDeposits(Deposit[] calldata deposits, bytes[] calldata signatures) external {
        if (deposits.length == 0) revert EmptyBatch();
        _quorum(depositDigest(deposits), signatures);
        for (uint256 i; i < deposits.length; ++i) {
            Deposit calldata d = deposits[i];
            if (_minted.get(d.depositId)) revert DepositAlreadyMinted(d.depositId);
            _minted.set(d.depositId);
            emit DepositMinted(d.depositId, d.recipient, d.amount);
            TOKEN.mint(d.recipient, d.amount);
        }
    }

    /// @notice Whether deposit `depositId` has been minted here.
    function depositMinted(uint256 depositId) external view returns (bool) {
        return _minted.get(depositId);
    }

    // ---------------------------------------------------------------- withdrawals

    /// @notice Burns `amount` of the caller's bridged stablecoin to be paid to `recipient` on
    /// the main chain once a checkpoint carries it; returns the withdrawal's index.
    /// @dev Reverts with ZeroAmount, InvalidRecipient or the token's balance error.
    function withdraw(address recipient, uint256 amount) external returns (uint256 index) {
        if (amount == 0) revert ZeroAmount();
        if (recipient == address(0)) revert InvalidRecipient(recipient);
        TOKEN.burn(_msgSender(), amount);
        return _queue(WITHDRAW_TOKEN, recipient, address(0), amount, 0);
    }

    /// @notice Takes the caller's ticket `tokenId` of `ticketEvent` out to `recipient` on the
    /// main chain, where RootGateway mints its mirror (event, tier, token id, checked-in flag)
    /// once a checkpoint carries it. Only once the event is over; once per ticket.
    /// @dev Reverts with InvalidRecipient, NotGenuineEvent, EventCancelled, EventNotOver,
    /// NotTicketHolder or TicketAlreadyExited.
    function exitTicket(address ticketEvent, uint256 tokenId, address recipient) external returns (uint256 index) {
        if (recipient == address(0)) revert InvalidRecipient(recipient);
        if (!FACTORY.isEvent(ticketEvent)) revert NotGenuineEvent(ticketEvent);
        EventTicket.Settings memory st = EventTicket(ticketEvent).settings();
        if (st.cancelled) revert EventCancelled(ticketEvent);
        uint256 overAt = (st.startsAt > st.resaleClosesAt ? st.startsAt : st.resaleClosesAt) + uint256(EXIT_DELAY);
        if (block.timestamp < overAt) revert EventNotOver(ticketEvent, overAt);
        EventTicket.Ticket memory t = EventTicket(ticketEvent).ticket(tokenId);
        address holder = _msgSender();
        if (t.owner != holder) revert NotTicketHolder(holder, t.owner);
        if (_ticketExited[ticketEvent].get(tokenId)) revert TicketAlreadyExited(ticketEvent, tokenId);
        _ticketExited[ticketEvent].set(tokenId);
        return _queue(WITHDRAW_TICKET, recipient, ticketEvent, tokenId, t.checkedIn ? 1 : 0);
    }

    /// @notice Whether ticket `tokenId` of `ticketEvent` has exited.
    function ticketExited(address ticketEvent, uint256 tokenId) external view returns (bool) {
        return _ticketExited[ticketEvent].get(tokenId);
    }

    /// @notice The withdrawal tree's root now: what the next checkpoint carries (validators
    /// read it at the checkpoint's end block).
    function withdrawalRoot() external view returns (bytes32 node) {
        uint256 size = withdrawalCount;
        bytes32 zero; // the root of an empty subtree of height h
        for (uint256 h; h < WITHDRAWAL_TREE_DEPTH; ++h) {
            node = size & 1 == 1 ? Hashes.commutativeKeccak256(_branch[h], node) : Hashes.commutativeKeccak256(node, zero);
            zero = Hashes.commutativeKeccak256(zero, zero);
            size >>= 1;
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice The current validator set copy, its powers and epoch.
    function validatorSet() external view returns (address[] memory validators, uint256[] memory powers, uint256 currentEpoch) {
        validators = _validators;
        powers = new uint256[](validators.length);
        for (uint256 i; i < validators.length; ++i) powers[i] = _power[epoch][validators[i]];
        return (validators, powers, epoch);
    }

    /// @notice The EIP-712 digest validators sign to attest `deposits`.
    function depositDigest(Deposit[] calldata deposits) public view returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](deposits.length);
        for (uint256 i; i < deposits.length; ++i) {
            hashes[i] = keccak256(abi.encode(DEPOSIT_TYPEHASH, deposits[i]));
        }
        return _hashTypedDataV4(keccak256(abi.encode(BATCH_TYPEHASH, keccak256(abi.encodePacked(hashes)))));
    }

    /// @notice The EIP-712 digest validators sign to replace the set with `validators` and
    /// `powers` at epoch `forEpoch`.
    function setDigest(address[] calldata validators, uint256[] calldata powers, uint256 forEpoch)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(SET_TYPEHASH, keccak256(abi.encodePacked(validators)), keccak256(abi.encodePacked(powers)), forEpoch)
            )
        );
    }

    // ---------------------------------------------------------------- internals

    function _queue(uint8 kind, address recipient, address asset, uint256 value, uint256 data)
        internal
        returns (uint256 index)
    {
        index = withdrawalCount;
        if (index >= (1 << WITHDRAWAL_TREE_DEPTH) - 1) revert WithdrawalTreeFull();
        bytes32 leaf = withdrawalLeaf(
            Withdrawal({kind: kind, index: index, recipient: recipient, asset: asset, value: value, data: data})
        );
        emit WithdrawalQueued(index, kind, recipient, asset, value, data, leaf);
        // Climb while the new node completes a right subtree; store it where it is a left one.
        uint256 size = index + 1;
        withdrawalCount = size;
        bytes32 node = leaf;
        for (uint256 h; h < WITHDRAWAL_TREE_DEPTH; ++h) {
            if (size & 1 == 1) {
                _branch[h] = node;
                return index;
            }
            node = Hashes.commutativeKeccak256(_branch[h], node);
            size >>= 1;
        }
    }

    /// @dev Reverts unless `signatures` over `digest`, ascending by signer, come from the
    /// current set with at least two thirds of its power.
    function _quorum(bytes32 digest, bytes[] calldata signatures) internal view {
        uint256 e = epoch;
        uint256 signed;
        address prev;
        for (uint256 i; i < signatures.length; ++i) {
            address signer = ECDSA.recoverCalldata(digest, signatures[i]);
            if (signer == prev) revert DuplicateSigner(signer);
            if (signer < prev) revert SignersNotSorted(prev, signer);
            uint256 p = _power[e][signer];
            if (p == 0) revert NotValidator(signer);
            signed += p;
            prev = signer;
        }
        uint256 total = totalPower;
        if (signed * 3 < total * 2) revert NotEnoughPower(signed, total);
    }

    function _setValidators(address[] memory validators, uint256[] memory powers) internal {
        uint256 n = validators.length;
        if (n == 0 || n > MAX_VALIDATORS || powers.length != n) revert InvalidValidatorSet(n, powers.length);
        uint256 e = epoch;
        uint256 total;
        address prev;
        for (uint256 i; i < n; ++i) {
            if (validators[i] <= prev) revert ValidatorsNotSorted(prev, validators[i]);
            if (powers[i] == 0) revert InvalidValidatorSet(n, powers.length);
            prev = validators[i];
            _power[e][validators[i]] = powers[i];
            total += powers[i];
        }
        _validators = validators;
        totalPower = total;
        emit ValidatorsUpdated(e, validators, powers);
    }
}
