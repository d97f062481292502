// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice A contract account that refuses native coin, and can act on an event contract:
/// used to test pull payments.
contract RejectingReceiver {
    function exec(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory out) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(out, 32), mload(out))
            }
        }
        return out;
    }

    receive() external payable {
        revert("no native coin");
    }
}
