// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC2771Forwarder} from "@openzeppelin/contracts/metatx/ERC2771Forwarder.sol";

/// @title StagepassForwarder
/// @notice OpenZeppelin's ERC-2771 forwarder under the EIP-712 domain
/// ("Stagepass Forwarder", "1"): the relay submits fans' signed requests and pays the gas.
contract StagepassForwarder is ERC2771Forwarder {
    constructor() ERC2771Forwarder("Stagepass Forwarder") {}
}
