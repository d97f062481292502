// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {ERC2771Context} from "@openzeppelin/contracts/metatx/ERC2771Context.sol";
import {EventTicket} from "./EventTicket.sol";
import {EventConfig} from "./EventTypes.sol";

/// @title EventFactory
/// @notice Anyone may become an issuer: createEvent deploys the event's EventTicket contract,
/// an ERC-1167 clone of one implementation, configured with the issuer's rules and splits.
contract EventFactory is ERC2771Context {
    /// @notice The EventTicket every event clones.
    address public immutable implementation;

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
    constructor(address trustedForwarder) ERC2771Context(trustedForwarder) {
        implementation = address(new EventTicket(trustedForwarder));
    }

    /// @notice Creates an event with `cfg`; the caller (or the forwarded signer) is its issuer.
    /// @dev Anyone. Reverts with EventTicket.InvalidConfig when the configuration breaks a rule.
    /// @return eventAddress The new event's contract.
    function createEvent(EventConfig calldata cfg) external returns (address eventAddress) {
        address issuer = _msgSender();
        eventAddress = Clones.clone(implementation);
        uint256 index = eventCount++;
        isEvent[eventAddress] = true;
        EventTicket(eventAddress).initialize(issuer, cfg);
        emit EventCreated(eventAddress, issuer, index, cfg.name, cfg.venue, cfg.startsAt);
    }
}
