// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {EventTicket} from "./EventTicket.sol";
import {
    EventConfig, TierConfig, Rules, Discount, Split, Category, MAX_TIERS, MAX_SPLITS, MAX_DISCOUNTS
} from "./EventTypes.sol";

/// @title EventFactory
/// @notice Anyone may become an issuer: createEvent deploys the event's EventTicket contract,
/// an ERC-1167 clone of one implementation, configured with the issuer's rules and splits.
/// @dev The factory validates the configuration (EventTicket.initialize only stores it), which
/// keeps the per-event contract under the 24,576-byte code limit. Every event trusts the
/// forwarder and the OracleHub given here, through the implementation's immutables.
contract EventFactory is ERC2771Context {
    /// @notice The configuration breaks a rule; `reason` names it.
    error InvalidConfig(string reason);

    uint256 internal constant BPS = 10_000;

    /// @notice The EventTicket every event clones.
    address public immutable implementation;

    /// @notice The OracleHub whose verified reports mint and reverse card purchases in every
    /// event this factory creates.
    address public immutable oracleHub;

    /// @notice Whether an address is an event this factory created (for contracts and
    /// clients that must trust only genuine Stagepass events). The list of events is in the
    /// EventCreated logs.
    mapping(address => bool) public isEvent;

    /// @notice How many events exist.
    uint256 public eventCount;

    event EventCreated(
        address indexed eventAddress, address indexed issuer, uint256 indexed index, string name, string venue, uint40 startsAt
    );

    /// @param trustedForwarder The ERC-2771 forwarder both the factory and the events trust.
    /// @param hub The OracleHub the events accept card fulfilments and reversals from.
    constructor(address trustedForwarder, address hub) ERC2771Context(trustedForwarder) {
        oracleHub = hub;
        implementation = address(new EventTicket(trustedForwarder, hub));
    }

    /// @notice Creates an event with `cfg`; the caller (or the forwarded signer) is its issuer.
    /// @dev Anyone. Reverts with InvalidConfig when the configuration breaks a rule.
    /// @return eventAddress The new event's contract.
    function createEvent(EventConfig calldata cfg) external returns (address eventAddress) {
        address issuer = _msgSender();
        _validate(cfg);
        eventAddress = Clones.clone(implementation);
        uint256 index = eventCount++;
        isEvent[eventAddress] = true;
        EventTicket(eventAddress).initialize(issuer, cfg);
        emit EventCreated(eventAddress, issuer, index, cfg.name, cfg.venue, cfg.startsAt);
    }

    /// @dev The rules a configuration must meet; EventTicket.initialize relies on them.
    function _validate(EventConfig calldata cfg) internal pure {
        if (bytes(cfg.name).length == 0) revert InvalidConfig("name");
        if (cfg.doorsOpenAt > cfg.startsAt) revert InvalidConfig("doors open after start");
        Rules calldata r = cfg.rules;
        if (r.resaleClosesAt == 0 || r.resaleClosesAt > cfg.startsAt) revert InvalidConfig("resaleClosesAt");
        if (r.maxPerBuyer == 0) revert InvalidConfig("maxPerBuyer");
        if (r.sellerMarkupShareBps > BPS) revert InvalidConfig("sellerMarkupShareBps");

        uint256 nTiers = cfg.tiers.length;
        if (nTiers == 0 || nTiers > MAX_TIERS) revert InvalidConfig("tiers");
        uint256 total;
        for (uint256 i; i < nTiers; ++i) {
            TierConfig calldata t = cfg.tiers[i];
            if (t.supply == 0) revert InvalidConfig("tier supply");
            total += t.supply;
        }
        if (total > (1 << 24) - 1) revert InvalidConfig("total supply");

        uint256 nSplits = cfg.splits.length;
        if (nSplits == 0 || nSplits > MAX_SPLITS) revert InvalidConfig("splits");
        uint256 bpsSum;
        for (uint256 i; i < nSplits; ++i) {
            Split calldata s = cfg.splits[i];
            if (s.account == address(0)) revert InvalidConfig("split account");
            bpsSum += s.bps;
        }
        if (bpsSum != BPS) revert InvalidConfig("split bps must sum to 10000");

        uint256 nDiscounts = r.discounts.length;
        if (nDiscounts > MAX_DISCOUNTS) revert InvalidConfig("discounts");
        uint256 lastFrom;
        for (uint256 i; i < nDiscounts; ++i) {
            Discount calldata d = r.discounts[i];
            if (d.maxDiscountBps > BPS) revert InvalidConfig("discount bps");
            if (d.from == 0 && d.maxDiscountBps == 0) revert InvalidConfig("empty discount");
            if (i > 0 && d.from <= lastFrom) revert InvalidConfig("discounts must ascend");
            lastFrom = d.from;
        }
        for (uint256 c; c < Category.COUNT; ++c) {
            if (r.categoryQuotaBps[c] > BPS) revert InvalidConfig("category quota");
        }
        if (r.superfanPresaleEndsAt > r.presaleEndsAt || r.presaleEndsAt >= r.resaleClosesAt) {
            revert InvalidConfig("presale windows");
        }
    }
}
