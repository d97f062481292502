// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {CardPurchase, Category, ICategoryRegistry, Role, Split} from "./EventTypes.sol";

interface IEventFactory {
    function isEvent(address) external view returns (bool);
}

interface ISplitEvent {
    function splits() external view returns (Split[] memory);
}

interface ICardEvent {
    function fulfilCard(CardPurchase[] calldata purchases) external returns (uint256[] memory firstIds);
    function reverseCard(uint256 firstId, uint256 qty) external;
}

/// @title OracleHub
/// @notice The decentralized oracle network's voice on chain (claims 2, 4, 6, 14): a set of n
/// oracle addresses and a threshold k, and the EIP-712 reports that k distinct members sign.
/// Events register each card purchase request here (`register`, keyed by its payment id);
/// reports say that card payments were captured (the event mints the tickets) or were
/// refunded or charged back (the event burns or marks them). Every payment id is usable once,
/// forever: one request may claim it, and after its first report it can never mint again.
///
/// The oracle set is issuer-independent and has no admin: it is changed only by a report
/// signed by k members of the current set (`changeOracles`). The deployer's one power is to
/// bind the hub to its EventFactory once, right after deployment (`setFactory`).
///
/// Signatures: each 65 bytes (r, s, v), given in ascending order of their signers' addresses,
/// so duplicates and unsorted lists are rejected in one pass. Every report is bound to the
/// chain id and this hub's address (the EIP-712 domain, "Stagepass OracleHub", "1") and to
/// its request ids and payment ids (the signed struct).
///
/// Attestations (claims 5, 17-19): the same k-of-n quorum attests buyer categories — bot or
/// scalper for everyone, fan or superfan of one artist — each with an expiry, which events
/// read through ICategoryRegistry.categoryOf for their quotas and presales; and issuers'
/// control of a web domain. A newer attestation replaces an older one, never the reverse.
contract OracleHub is EIP712, ReentrancyGuardTransient, ICategoryRegistry {
    // ---------------------------------------------------------------- errors

    error NotDeployer(address caller);
    error FactoryAlreadySet(address factory);
    error NotGenuineEvent(address ticketEvent);
    error InvalidOracleSet(uint256 members, uint256 threshold);
    error OraclesNotSorted(address previous, address next);
    error NotEnoughSignatures(uint256 given, uint256 threshold);
    error NotOracle(address signer);
    error DuplicateSigner(address signer);
    error SignersNotSorted(address previous, address next);
    error EmptyReport();
    error PaymentAlreadyUsed(bytes32 paymentId, PaymentStatus status);
    error UnknownRequest(bytes32 requestId);
    error PaymentAlreadyReversed(bytes32 paymentId, PaymentStatus status);
    error InvalidReversalKind(uint8 kind);
    error InvalidCategory(uint8 category);
    error AttestationExpired(uint64 expiry);
    error StaleAttestation(uint64 issuedAt, uint64 latest);

    // ---------------------------------------------------------------- events

    event FactorySet(address indexed factory);
    event OraclesChanged(uint256 indexed epoch, address[] members, uint256 threshold);
    /// One per report accepted: `digest` is the EIP-712 digest the oracles signed.
    event ReportAccepted(bytes32 indexed digest, uint8 kind, uint256 items);
    /// A payment reversed: `status` is Refunded or ChargedBack; `ticketEvent` is zero if no
    /// request had claimed the payment.
    event PaymentReversed(bytes32 indexed paymentId, address indexed ticketEvent, PaymentStatus status);
    /// A buyer's category for one artist (address(0): for every artist) until `expiry`.
    event CategoryAttested(address indexed buyer, address indexed artist, uint8 category, uint64 issuedAt, uint64 expiry);
    event IssuerVerified(address indexed issuer, string domain, uint64 issuedAt, uint64 expiry);
    event EventArtistSet(address indexed ticketEvent, address indexed artist);

    // ---------------------------------------------------------------- types and state

    /// @notice What became of a payment id. Only a Requested payment can mint, once.
    enum PaymentStatus {
        None,
        Requested, // claimed by one purchase request, awaiting the oracles
        Capturing, // only while its report is being applied
        Minted,
        Failed, // captured, but a rule refused the mint: the payment is owed a refund
        Refunded,
        ChargedBack
    }

    /// @notice A payment's record, one storage word: the event, the status, and `data`, which
    /// is the low 88 bits of the request id while Requested, and once Minted the first token
    /// id (bits 0..47) and the quantity (bits 48..63).
    struct Payment {
        address ticketEvent;
        PaymentStatus status;
        uint88 data;
    }

    /// Report kinds, as ReportAccepted names them.
    uint8 public constant KIND_CAPTURED = 0;
    uint8 public constant KIND_REFUNDED = 1;
    uint8 public constant KIND_CHARGED_BACK = 2;
    uint8 public constant KIND_ORACLES = 3;
    uint8 public constant KIND_CATEGORY = 4;
    uint8 public constant KIND_ISSUER = 5;

    uint256 public constant MAX_ORACLES = 32;

    bytes32 internal constant PURCHASE_TYPEHASH = keccak256(
        "CardPurchase(bytes32 requestId,bytes32 paymentId,address buyer,uint256 tier,uint256 quantity,uint256 amount)"
    );
    bytes32 internal constant CAPTURED_TYPEHASH = keccak256(
        "PaymentsCaptured(address ticketEvent,CardPurchase[] purchases)"
        "CardPurchase(bytes32 requestId,bytes32 paymentId,address buyer,uint256 tier,uint256 quantity,uint256 amount)"
    );
    bytes32 internal constant REVERSED_TYPEHASH = keccak256("PaymentsReversed(uint8 kind,bytes32[] paymentIds)");
    bytes32 internal constant CATEGORY_TYPEHASH = keccak256(
        "CategoryAttestation(address buyer,address artist,uint8 category,uint64 issuedAt,uint64 expiry)"
    );
    bytes32 internal constant ISSUER_TYPEHASH =
        keccak256("IssuerAttestation(address issuer,string domain,uint64 issuedAt,uint64 expiry)");
    bytes32 internal constant ORACLES_TYPEHASH =
        keccak256("OracleSetChange(address[] members,uint256 threshold,uint256 epoch)");

    address internal immutable _deployer;

    /// @notice The EventFactory whose events this hub serves (isEvent); set once.
    address public factory;
    /// @notice Signatures a report needs: k.
    uint256 public threshold;
    /// @notice How many times the set has changed; a set-change report names the epoch it
    /// applies to, so it cannot be replayed.
    uint256 public epoch;
    address[] internal _members;
    /// epoch + 1 for members of the current set (so a removed member is no longer one).
    mapping(address => uint256) internal _memberEpoch;
    /// @notice Every payment id ever reported, and what became of it.
    mapping(bytes32 => Payment) public payments;
    /// buyer → artist (address(0): any artist) → category | expiry << 8 | issuedAt << 72.
    mapping(address => mapping(address => uint256)) internal _categories;
    /// @notice The artist whose fans an event's presale and quotas look for (registerEvent).
    mapping(address => address) public eventArtist;
    struct IssuerRecord {
        string domain;
        uint64 issuedAt;
        uint64 expiry;
    }
    mapping(address => IssuerRecord) internal _issuers;

    /// @param members The first oracle set, addresses in ascending order.
    /// @param k The threshold: more than half of the members, at most all of them.
    constructor(address[] memory members, uint256 k) EIP712("Stagepass OracleHub", "1") {
        _deployer = msg.sender;
        _setOracles(members, k);
    }

    /// @notice Binds the hub to the EventFactory whose events it serves. Once.
    /// @dev The deployer only, once (the factory needs the hub's address at its own deployment).
    function setFactory(address factory_) external {
        if (msg.sender != _deployer) revert NotDeployer(msg.sender);
        if (factory != address(0)) revert FactoryAlreadySet(factory);
        factory = factory_;
        emit FactorySet(factory_);
    }

    // ---------------------------------------------------------------- requests and reports

    /// @notice Claims `paymentId` for the purchase request `requestId` of the calling event
    /// (EventTicket.requestPurchase calls it): from here on no other request can use it.
    /// @dev Genuine events of the factory only. Reverts with NotGenuineEvent or
    /// PaymentAlreadyUsed.
    function register(bytes32 paymentId, bytes32 requestId) external {
        address f = factory;
        if (f == address(0) || !IEventFactory(f).isEvent(msg.sender)) revert NotGenuineEvent(msg.sender);
        PaymentStatus st = payments[paymentId].status;
        if (st != PaymentStatus.None) revert PaymentAlreadyUsed(paymentId, st);
        payments[paymentId] = Payment({ticketEvent: msg.sender, status: PaymentStatus.Requested, data: uint88(uint256(requestId))});
    }

    /// @notice Applies k oracles' report that the payments of `purchases`, all for
    /// `ticketEvent`, were captured: each purchase must be the request its payment id was
    /// registered for; each payment id is marked used, then the event mints each
    /// purchase or, if a rule refuses it at mint time, records it failed (status Failed, the
    /// event's CardPurchaseFailed says why) so the payment is refunded. One report may cover
    /// many purchases (onsale rushes).
    /// @dev Anyone may submit (the relay's aggregator does). Reverts with NotEnoughSignatures,
    /// NotOracle, DuplicateSigner, SignersNotSorted, EmptyReport, PaymentAlreadyUsed,
    /// UnknownRequest, or the event's FulfilmentAborted.
    function fulfil(address ticketEvent, CardPurchase[] calldata purchases, bytes[] calldata signatures)
        external
        nonReentrant
    {
        uint256 n = purchases.length;
        if (n == 0) revert EmptyReport();
        bytes32[] memory hashes = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            hashes[i] = keccak256(abi.encode(PURCHASE_TYPEHASH, purchases[i]));
        }
        bytes32 digest = _verify(
            keccak256(abi.encode(CAPTURED_TYPEHASH, ticketEvent, keccak256(abi.encodePacked(hashes)))), signatures
        );

        // Effects: every payment id is used from here on, whatever the event does. The event
        // is genuine: it registered the request (register checked it with the factory).
        for (uint256 i; i < n; ++i) {
            CardPurchase calldata p = purchases[i];
            Payment storage rec = payments[p.paymentId];
            PaymentStatus st = rec.status;
            if (st != PaymentStatus.Requested) {
                if (st == PaymentStatus.None) revert UnknownRequest(p.requestId);
                revert PaymentAlreadyUsed(p.paymentId, st);
            }
            bytes32 rid = keccak256(abi.encode(ticketEvent, p.paymentId, p.buyer, p.tier, p.quantity, p.amount));
            if (rid != p.requestId || rec.ticketEvent != ticketEvent || rec.data != uint88(uint256(rid))) {
                revert UnknownRequest(p.requestId);
            }
            rec.status = PaymentStatus.Capturing;
        }
        emit ReportAccepted(digest, KIND_CAPTURED, n);

        // Interaction with a genuine event, then the outcome of each payment.
        uint256[] memory firstIds = ICardEvent(ticketEvent).fulfilCard(purchases);
        for (uint256 i; i < n; ++i) {
            bytes32 pid = purchases[i].paymentId;
            if (firstIds[i] != 0) {
                uint256 qty = purchases[i].quantity;
                payments[pid] = Payment({
                    ticketEvent: ticketEvent,
                    status: PaymentStatus.Minted,
                    data: uint88(firstIds[i] | ((qty == 0 ? 1 : qty) << 48)) // a resale: one ticket
                });
            } else {
                payments[pid].status = PaymentStatus.Failed;
            }
        }
    }

    /// @notice Applies k oracles' report that the payments `paymentIds` were refunded
    /// (`kind` KIND_REFUNDED) or charged back (KIND_CHARGED_BACK). A minted payment's
    /// tickets are burned by their event, or marked if checked in or moved on; a failed one is
    /// settled; one requested or never seen is closed, so it can never mint.
    /// @dev Anyone may submit. Reverts with InvalidReversalKind, the signature errors,
    /// EmptyReport or PaymentAlreadyReversed.
    function reverse(uint8 kind, bytes32[] calldata paymentIds, bytes[] calldata signatures) external nonReentrant {
        if (kind != KIND_REFUNDED && kind != KIND_CHARGED_BACK) revert InvalidReversalKind(kind);
        uint256 n = paymentIds.length;
        if (n == 0) revert EmptyReport();
        bytes32 digest =
            _verify(keccak256(abi.encode(REVERSED_TYPEHASH, kind, keccak256(abi.encodePacked(paymentIds)))), signatures);
        emit ReportAccepted(digest, kind, n);
        PaymentStatus to = kind == KIND_REFUNDED ? PaymentStatus.Refunded : PaymentStatus.ChargedBack;
        for (uint256 i; i < n; ++i) {
            bytes32 pid = paymentIds[i];
            Payment memory p = payments[pid];
            if (p.status >= PaymentStatus.Refunded || p.status == PaymentStatus.Capturing) {
                revert PaymentAlreadyReversed(pid, p.status);
            }
            payments[pid].status = to;
            emit PaymentReversed(pid, p.ticketEvent, to);
            if (p.status == PaymentStatus.Minted) {
                // The event is genuine: it was checked when the payment was captured.
                ICardEvent(p.ticketEvent).reverseCard(uint48(p.data), uint16(p.data >> 48));
            }
        }
    }

    /// @notice Replaces the oracle set with `members` (ascending) and threshold `k`, on a
    /// report signed by k members of the current set for the current epoch.
    /// @dev Anyone may submit. Reverts with the signature errors, InvalidOracleSet or
    /// OraclesNotSorted.
    function changeOracles(address[] calldata members, uint256 k, bytes[] calldata signatures) external {
        uint256 e = epoch;
        bytes32 digest =
            _verify(keccak256(abi.encode(ORACLES_TYPEHASH, keccak256(abi.encodePacked(members)), k, e)), signatures);
        emit ReportAccepted(digest, KIND_ORACLES, members.length);
        epoch = e + 1;
        _setOracles(members, k);
    }

    // ---------------------------------------------------------------- attestations

    /// @notice Records k oracles' attestation that `buyer` is in `category` (Category numbers)
    /// for `artist` — address(0) for a bot or scalper, whatever the artist — until `expiry`.
    /// Category UNCLASSIFIED clears an earlier attestation.
    /// @dev Anyone may submit. Reverts with InvalidCategory, AttestationExpired (expiry not in
    /// the future, or issuedAt in it), StaleAttestation (not newer than the recorded one) and
    /// the signature errors.
    function attestCategory(
        address buyer,
        address artist,
        uint8 category,
        uint64 issuedAt,
        uint64 expiry,
        bytes[] calldata signatures
    ) external {
        if (category >= Category.COUNT) revert InvalidCategory(category);
        if (expiry <= block.timestamp || issuedAt > block.timestamp) revert AttestationExpired(expiry);
        uint64 latest = uint64(_categories[buyer][artist] >> 72);
        if (issuedAt <= latest) revert StaleAttestation(issuedAt, latest);
        bytes32 digest = _verify(keccak256(abi.encode(CATEGORY_TYPEHASH, buyer, artist, category, issuedAt, expiry)), signatures);
        emit ReportAccepted(digest, KIND_CATEGORY, 1);
        _categories[buyer][artist] = uint256(category) | (uint256(expiry) << 8) | (uint256(issuedAt) << 72);
        emit CategoryAttested(buyer, artist, category, issuedAt, expiry);
    }

    /// @notice Records k oracles' attestation that `issuer` controls the web domain `domain`
    /// (each oracle read https://domain/.well-known/stagepass.json naming the address).
    /// @dev Anyone may submit. Reverts like attestCategory.
    function attestIssuer(address issuer, string calldata domain, uint64 issuedAt, uint64 expiry, bytes[] calldata signatures)
        external
    {
        if (expiry <= block.timestamp || issuedAt > block.timestamp) revert AttestationExpired(expiry);
        uint64 latest = _issuers[issuer].issuedAt;
        if (issuedAt <= latest) revert StaleAttestation(issuedAt, latest);
        bytes32 digest =
            _verify(keccak256(abi.encode(ISSUER_TYPEHASH, issuer, keccak256(bytes(domain)), issuedAt, expiry)), signatures);
        emit ReportAccepted(digest, KIND_ISSUER, 1);
        _issuers[issuer] = IssuerRecord({domain: domain, issuedAt: issuedAt, expiry: expiry});
        emit IssuerVerified(issuer, domain, issuedAt, expiry);
    }

    /// @notice Records the artist of a genuine event: its first revenue-split party with the
    /// artist role, or else its originator. Anyone, once per event (later calls change nothing).
    /// @dev Reverts with NotGenuineEvent.
    function registerEvent(address ticketEvent) external returns (address artist) {
        artist = eventArtist[ticketEvent];
        if (artist != address(0)) return artist;
        address f = factory;
        if (f == address(0) || !IEventFactory(f).isEvent(ticketEvent)) revert NotGenuineEvent(ticketEvent);
        Split[] memory parts = ISplitEvent(ticketEvent).splits();
        artist = parts[0].account;
        for (uint256 i; i < parts.length; ++i) {
            if (parts[i].role == Role.ARTIST) {
                artist = parts[i].account;
                break;
            }
        }
        eventArtist[ticketEvent] = artist;
        emit EventArtistSet(ticketEvent, artist);
    }

    /// @notice The category of `buyer` for the calling event (ICategoryRegistry): an
    /// unexpired bot or scalper attestation first, then fan or superfan of the event's artist,
    /// else UNCLASSIFIED.
    function categoryOf(address buyer) external view returns (uint8) {
        (uint8 c, ) = categoryFor(buyer, address(0));
        if (c == Category.BOT || c == Category.SCALPER) return c;
        address artist = eventArtist[msg.sender];
        if (artist == address(0)) return Category.UNCLASSIFIED;
        (c, ) = categoryFor(buyer, artist);
        return c == Category.FAN || c == Category.SUPERFAN ? c : Category.UNCLASSIFIED;
    }

    /// @notice `buyer`'s unexpired attested category for `artist` and its expiry.
    function categoryFor(address buyer, address artist) public view returns (uint8 category, uint64 expiry) {
        uint256 w = _categories[buyer][artist];
        expiry = uint64(w >> 8);
        if (expiry <= block.timestamp) return (Category.UNCLASSIFIED, 0);
        return (uint8(w), expiry);
    }

    /// @notice The web domain `issuer` is verified to control, or "" if none or expired.
    function issuerDomain(address issuer) external view returns (string memory domain, uint64 expiry) {
        IssuerRecord memory r = _issuers[issuer];
        if (r.expiry <= block.timestamp) return ("", 0);
        return (r.domain, r.expiry);
    }

    // ---------------------------------------------------------------- views

    /// @notice The current oracle set, its threshold and epoch.
    function oracles() external view returns (address[] memory members, uint256 k, uint256 currentEpoch) {
        return (_members, threshold, epoch);
    }

    /// @notice Whether `account` is in the current oracle set.
    function isOracle(address account) public view returns (bool) {
        return _memberEpoch[account] == epoch + 1;
    }

    /// @notice A payment's event, status and, once minted, its tickets.
    function payment(bytes32 paymentId)
        external
        view
        returns (address ticketEvent, PaymentStatus status, uint256 firstTokenId, uint256 quantity)
    {
        Payment memory p = payments[paymentId];
        if (p.status >= PaymentStatus.Minted) (firstTokenId, quantity) = (uint48(p.data), uint16(p.data >> 48));
        return (p.ticketEvent, p.status, firstTokenId, quantity);
    }

    /// @notice The EIP-712 digest of a capture report, what each oracle signs.
    function capturedDigest(address ticketEvent, CardPurchase[] calldata purchases) external view returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](purchases.length);
        for (uint256 i; i < purchases.length; ++i) {
            hashes[i] = keccak256(abi.encode(PURCHASE_TYPEHASH, purchases[i]));
        }
        return _hashTypedDataV4(keccak256(abi.encode(CAPTURED_TYPEHASH, ticketEvent, keccak256(abi.encodePacked(hashes)))));
    }

    // ---------------------------------------------------------------- internals

    /// @dev Checks that k or more members signed `structHash` under this hub's domain, in
    /// ascending order of signer; returns the digest.
    function _verify(bytes32 structHash, bytes[] calldata signatures) internal view returns (bytes32 digest) {
        digest = _hashTypedDataV4(structHash);
        uint256 k = threshold;
        if (signatures.length < k) revert NotEnoughSignatures(signatures.length, k);
        uint256 current = epoch + 1;
        address prev;
        for (uint256 i; i < signatures.length; ++i) {
            address signer = ECDSA.recoverCalldata(digest, signatures[i]);
            if (_memberEpoch[signer] != current) revert NotOracle(signer);
            if (signer == prev) revert DuplicateSigner(signer);
            if (signer < prev) revert SignersNotSorted(prev, signer);
            prev = signer;
        }
    }

    function _setOracles(address[] memory members, uint256 k) internal {
        uint256 n = members.length;
        // A majority threshold: two disjoint quorums cannot both sign.
        if (n == 0 || n > MAX_ORACLES || k == 0 || k > n || 2 * k <= n) revert InvalidOracleSet(n, k);
        uint256 tag = epoch + 1;
        address prev;
        for (uint256 i; i < n; ++i) {
            if (members[i] <= prev) revert OraclesNotSorted(prev, members[i]);
            prev = members[i];
            _memberEpoch[members[i]] = tag;
        }
        _members = members;
        threshold = k;
        emit OraclesChanged(epoch, members, k);
    }
}
