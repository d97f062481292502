// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice An ERC-20 for tests that behaves as badly as an issuer's chosen currency might:
/// it can take a fee on every transfer, call back into a target during transfers
/// (reentrancy), and refuse transfers to chosen recipients.
contract HostileToken is ERC20 {
    uint256 public feeBps;
    address public hookTarget;
    bytes public hookData;
    bool public hookSucceeded;
    bytes public hookResult;
    mapping(address => bool) public blocked;
    bool private _inHook;

    constructor() ERC20("Hostile", "HOST") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setFee(uint256 bps) external {
        feeBps = bps;
    }

    function setHook(address target, bytes calldata data) external {
        hookTarget = target;
        hookData = data;
    }

    function setBlocked(address account, bool isBlocked) external {
        blocked[account] = isBlocked;
    }

    function _update(address from, address to, uint256 value) internal override {
        require(!blocked[to], "recipient blocked");
        uint256 fee = from != address(0) && to != address(0) ? (value * feeBps) / 10_000 : 0;
        if (fee != 0) super._update(from, address(0), fee);
        super._update(from, to, value - fee);
        if (hookTarget != address(0) && !_inHook) {
            _inHook = true;
            (hookSucceeded, hookResult) = hookTarget.call(hookData);
            _inHook = false;
        }
    }
}
